"""The benchmark report: what bench/harness.py measured, as Markdown tables
(docs/benchmarks.md) and as a machine-readable JSON file
(bench/results/<date>-<commit>.json, compared with bench/compare).

Every figure is the median over the repetitions, with its spread (the
lowest and highest repetition) next to it. A ratio between two targets is
taken per repetition (the targets alternate within each repetition, so each
pair ran under the same conditions), and its median and spread reported: on
a shared, noisy machine a ratio moves much less than the figures it divides.

Standard library only.
"""

import platform
import statistics
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONNECTIONS = 64

# The goals of docs/benchmarks.md ("Goals"); the report says which this run
# met.
GOAL_IDLE_STREAMABLE = 16 * 1024
GOAL_IDLE_SSE = 8 * 1024
GOAL_CEILING = 0.7
GOAL_STATELESS = 1.0
GOAL_REFRESH_SQLITE = 5000
GOAL_REFRESH_POSTGRES = 3000
GOAL_SUPERGATEWAY = 10
GOAL_STARTUP_MS = 100


# ------------------------------------------------------------------ figures


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def spread(values):
    """(lowest, median, highest) of a non-empty list."""
    values = list(values)
    return (min(values), statistics.median(values), max(values))


def runs_spread(runs, key):
    return spread(r[key] for r in runs)


def ratio_spread(a_runs, b_runs, key="rps"):
    """Spread of a ÷ b, repetition by repetition."""
    return spread(a[key] / b[key] for a, b in zip(a_runs, b_runs) if b[key])


def fmt_rate(x):
    return f"{x:,.0f}"


def fmt_us(x):
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def with_range(s, fmt):
    """`median (low–high)`; just the median when there was one repetition."""
    lo, mid, hi = s
    if lo == hi:
        return fmt(mid)
    return f"{fmt(mid)} ({fmt(lo)}–{fmt(hi)})"


def fmt_ratio(s):
    return with_range(s, lambda x: f"{x:.2f}×")


# ------------------------------------------------------------------ machine


def machine(bins, cpu, mem, cores):
    """What a reader needs to compare this run with another: the machine,
    the commit, whether the tree was clean, and how busy the machine was."""
    def git(*args):
        try:
            return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True,
                                  text=True).stdout.strip()
        except OSError:
            return ""
    status = git("status", "--porcelain", "--untracked-files=no")
    return {
        "cpu": cpu, "cores": cores, "mem_bytes": mem,
        "kernel": f"{platform.system()} {platform.release()}",
        "commit": git("rev-parse", "HEAD") or "unknown",
        "clean": status == "",
        "binaries": str(bins),
        "load_before": load_average(),
    }


def load_average():
    """The 1, 5 and 15 minute load averages (/proc/loadavg)."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


# ------------------------------------------------------------------ tables


def rate_table(results, base):
    rows = ["| Target | Requests/s | p50 (µs) | p99 (µs) | CPU per request (µs) | "
            f"{base} ÷ target |",
            "|---|---:|---:|---:|---:|---:|"]
    for label, runs in results.items():
        rows.append(
            f"| {label} | {with_range(runs_spread(runs, 'rps'), fmt_rate)} | "
            f"{fmt_us(median(runs, 'p50_us'))} | {fmt_us(median(runs, 'p99_us'))} | "
            f"{fmt_us(median(runs, 'cpu_us_per_req'))} | "
            f"{'—' if label == base else fmt_ratio(ratio_spread(results[base], runs))} |")
    return "\n".join(rows)


def goal(ok, text):
    return f"| {text} | {'met' if ok else '**missed**'} |"


def header(ctx):
    m = ctx["machine"]
    load = m["load_before"]
    out = [f"Run of {ctx['date']} on {m['cores']} cores ({m['cpu']}), "
           f"{m['mem_bytes'] / 2**30:.0f} GiB RAM, {m['kernel']}; "
           f"{ctx['reps']} repetitions of {ctx['seconds']} s per target and workload, "
           f"medians shown with the lowest and highest repetition in brackets; "
           f"{ctx['pinning']}.",
           "",
           f"Commit `{m['commit'][:12]}`{'' if m['clean'] else ' with uncommitted changes'}; "
           f"load average before the run: "
           + (", ".join(f"{x:.2f}" for x in load) + " (1, 5, 15 min)" if load else "unknown")
           + ".",
           ""]
    cal = ctx.get("calibration")
    if cal:
        out += [f"Calibration (the bare axum ceiling alone, before the workloads): "
                f"{with_range(runs_spread(cal, 'rps'), fmt_rate)} requests/s. Runs on other "
                f"days compare as ratios to it (`bench/compare A.json B.json`).", ""]
    out += ["Command: `" + ctx["command"] + "`", "",
            "Versions: " + "; ".join(f"{k} {v}" for k, v in ctx["versions"].items()) + ".",
            ""]
    return out


def report(ctx, r):
    w1, w2, w3, w4, w5 = r["w1"], r["w2"], r["w3"], r["w4"], r["w5"]
    out = header(ctx)
    out.append(f"### 1. Authenticated `tools/call` over Streamable HTTP, {CONNECTIONS} connections")
    out.append("")
    out.append(rate_table(w1, "mcpgate"))
    out.append("")
    out.append("Response content types: " + ", ".join(
        f"{k} `{v}`" for k, v in r["content_types"].items()) + ".")
    out.append("")
    out.append("### 2. Cost of the bearer check (mcpgate, in process)")
    out.append("")
    out.append("| Path | µs per request |")
    out.append("|---|---:|")
    out.append(f"| Cached token (every request after the first within 10 s) | "
               f"{with_range(runs_spread(w2, 'cached_us'), lambda x: f'{x:.2f}')} |")
    out.append(f"| First use of a token (SQLite lookup of the token and its user) | "
               f"{with_range(runs_spread(w2, 'lookup_us'), lambda x: f'{x:.1f}')} |")
    out.append("")
    out.append(f"### 3. Token endpoint: `refresh_token` grants with rotation, "
               f"{CONNECTIONS} connections")
    out.append("")
    out.append("| Store | Grants/s | p50 (µs) | p99 (µs) | CPU per grant (µs) |")
    out.append("|---|---:|---:|---:|---:|")
    for label, runs in w3.items():
        out.append(f"| {label} | {with_range(runs_spread(runs, 'rps'), fmt_rate)} | "
                   f"{fmt_us(median(runs, 'p50_us'))} | {fmt_us(median(runs, 'p99_us'))} | "
                   f"{fmt_us(median(runs, 'cpu_us_per_req'))} |")
    out.append("")
    if ctx.get("postgres"):
        pg = ctx["postgres"]
        out.append(f"PostgreSQL {pg['server_version']} on this machine, fsync {pg['fsync']}, "
                   f"synchronous_commit {pg['synchronous_commit']}.")
        out.append("")
    out.append(f"### 4. Gateway: `tools/call` to a stdio upstream, {CONNECTIONS} connections")
    out.append("")
    out.append(rate_table(w4, "mcpgate → stdio"))
    out.append("")
    out.append("### 5. Scale")
    out.append("")
    out.append("| Idle sessions | Count | Server RSS | Bytes per session |")
    out.append("|---|---:|---:|---:|")
    for kind, res in w5["idle"].items():
        for p in res["points"]:
            out.append(f"| {kind} | {p['sessions']:,} | {p['rss_bytes'] / 2**20:.1f} MiB | "
                       f"{p['bytes_per_session']:,.0f} |")
    out.append("")
    out.append("| Start-up | Time to first served request | Idle RSS |")
    out.append("|---|---:|---:|")
    for label, runs in w5["startup"].items():
        out.append(f"| {label} | {with_range(runs_spread(runs, 'startup_ms'), lambda x: f'{x:.1f}')}"
                   f" ms | {median(runs, 'idle_rss_bytes') / 2**20:.1f} MiB |")
    out.append("")
    if not ctx["smoke"]:
        out += goals(r)
    return "\n".join(out)


def goals(r):
    w1, w3, w4, w5 = r["w1"], r["w3"], r["w4"], r["w5"]
    m = w1["mcpgate"]
    out = ["### Goals", "", "| Goal | This run (median, range) |", "|---|---|"]
    c = ratio_spread(m, w1["ceiling (bare axum)"])
    out.append(goal(c[1] >= GOAL_CEILING,
                    f"W1 session `tools/call` ≥ {GOAL_CEILING}× the bare axum ceiling: "
                    f"{fmt_ratio(c)}"))
    st = ratio_spread(w1["mcpgate, stateless 2026-07-28"], m)
    out.append(goal(st[1] >= GOAL_STATELESS,
                    f"W1 stateless 2026-07-28 ÷ session path ≥ {GOAL_STATELESS}×: {fmt_ratio(st)}"))
    for peer in ("TypeScript SDK", "FastMCP"):
        if peer in w1:
            out.append(f"| W1 mcpgate ÷ {peer}: {fmt_ratio(ratio_spread(m, w1[peer]))} | — |")
    for label, goal_rps in (("SQLite", GOAL_REFRESH_SQLITE), ("PostgreSQL", GOAL_REFRESH_POSTGRES)):
        if label in w3:
            s = runs_spread(w3[label], "rps")
            out.append(goal(s[1] >= goal_rps, f"W3 ≥ {goal_rps:,} refresh grants/s on {label}: "
                            f"{with_range(s, fmt_rate)}"))
    if "supergateway" in w4:
        g = ratio_spread(w4["mcpgate → stdio"], w4["supergateway"])
        out.append(goal(g[1] >= GOAL_SUPERGATEWAY,
                        f"W4 gateway ≥ {GOAL_SUPERGATEWAY}× supergateway: {fmt_ratio(g)}"))
    for kind, limit in (("Streamable HTTP GET stream", GOAL_IDLE_STREAMABLE),
                        ("Streamable HTTP GET stream, HTTP/2", GOAL_IDLE_STREAMABLE),
                        ("legacy SSE stream", GOAL_IDLE_SSE),
                        ("legacy SSE stream, HTTP/2", GOAL_IDLE_SSE)):
        if kind in w5["idle"]:
            worst = max(p["bytes_per_session"] for p in w5["idle"][kind]["points"])
            out.append(goal(worst <= limit, f"W5 idle {kind} ≤ {limit // 1024} KiB: "
                            f"at most {worst / 1024:.1f} KiB"))
    s = runs_spread(w5["startup"]["existing database"], "startup_ms")
    out.append(goal(s[1] < GOAL_STARTUP_MS, f"Start-up < {GOAL_STARTUP_MS} ms: "
                    f"{with_range(s, lambda x: f'{x:.1f}')} ms"))
    out.append("")
    return out


# ------------------------------------------------------------------ JSON


def result_path(ctx, directory):
    """bench/results/<date>-<commit>.json"""
    day = ctx["date"].split(" ")[0]
    return Path(directory) / f"{day}-{ctx['machine']['commit'][:12]}.json"


def figures(data):
    """Every figure of a run as {name: (median, low, high)}: what
    bench/compare lines up between two runs."""
    r = data["results"]
    out = {}

    def add(name, runs, key):
        if runs:
            lo, mid, hi = runs_spread(runs, key)
            out[name] = (mid, lo, hi)
    cal = data["context"].get("calibration")
    add("calibration: bare axum ceiling, requests/s", cal, "rps")
    for w, unit in (("w1", "requests/s"), ("w4", "requests/s")):
        for label, runs in r.get(w, {}).items():
            add(f"{w.upper()} {label}, {unit}", runs, "rps")
            add(f"{w.upper()} {label}, CPU µs per request", runs, "cpu_us_per_req")
    for label, runs in r.get("w3", {}).items():
        add(f"W3 refresh grants, {label}, grants/s", runs, "rps")
    add("W2 cached bearer check, µs", r.get("w2"), "cached_us")
    add("W2 first use of a token, µs", r.get("w2"), "lookup_us")
    for kind, res in r.get("w5", {}).get("idle", {}).items():
        for p in res["points"]:
            v = p["bytes_per_session"]
            out[f"W5 idle {kind}, {p['sessions']:,} sessions, bytes each"] = (v, v, v)
    for label, runs in r.get("w5", {}).get("startup", {}).items():
        add(f"W5 start-up, {label}, ms", runs, "startup_ms")
    return out
