#!/usr/bin/env python3
"""Workload 1 against the bare axum ceiling: where the difference goes.

Runs workload 1 of bench/run (`tools/call` of the built-in `echo`, 64
connections, `wrk`) against one `mcpgate serve`, in a Streamable HTTP
session and statelessly (2026-07-28), and against the bare axum ceiling
(`bench/ceiling`). First `--reps` plain runs of each, rotating, for the CPU
time per request (no profiler attached); then one more run of each under
`perf record --call-graph dwarf`, whose samples are sorted into the parts
of a request listed in `PARTS` (the first part a sample's call stack
matches). Prints a Markdown table: each part's share of the server's
samples and, from the plain runs' median CPU per request, its cost in
microseconds (an estimate: the share times the median).

  bench/profile_w1.py --bins DIR [--reps 3] [--seconds 10] [--keep DIR]

DIR holds the release binaries `mcpgate`, `mcpgate-bench-loadgen` and
`mcpgate-bench-ceiling`. Needs `perf` (Debian's linux-perf) and `wrk`.
`--keep DIR` keeps the `perf` data files there. docs/benchmarks.md
("Workload 1 against the ceiling: where the difference goes") quotes it.
"""
import argparse
import collections
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h  # noqa: E402


def calls(pattern):
    """A rule: some frame of the stack matches `pattern`."""
    rx = re.compile(pattern)
    return lambda thread, stack: any(rx.search(sym) for sym, _ in stack)


def in_kernel(thread, stack):
    return any("kallsyms" in dso for _, dso in stack)


# The parts of a request, in the order they are tried; a sample counts for
# the first that matches. The kernel's parts come before the user-space
# ones that called them (a `writev` from hyper counts as the kernel's).
PARTS = [
    ("audit log: SQLite's INSERT and commit (sqlx's worker thread)",
     lambda thread, stack: thread.startswith("sqlx-sqlite")),
    ("kernel: writing the response (TCP send, loopback delivery to the client, waking it)",
     calls(r"^(__GI___writev|do_writev)$")),
    ("kernel: reading the request (TCP receive)",
     calls(r"^(__libc_recv|__GI___recv|tcp_recvmsg)$")),
    ("kernel: waiting and waking (epoll, futex, scheduler)", in_kernel),
    ("audit log: the writer task (batching, sqlx)",
     calls(r"audit::run|sqlite::writer|sqlx_core|flume")),
    ("JSON-RPC parse of the request (`mcp::parse`)", calls(r"mcp::parse::client_message")),
    ("the tool call: handler, policy, audit record, the tool",
     calls(r"ServerHandler>::call_tool")),
    ("the answer: result serialised, response built (`inline::reply`)",
     calls(r"inline::reply")),
    ("rmcp's request dispatch (`handle_request`, the request context)",
     calls(r"rmcp::handler::server|RequestContext")),
    ("reading the request body", calls(r"message::read_body")),
    ("session or stateless checks (lookup, owner, headers, scope, context)",
     calls(r"mcp::inline|mcp::sessions|param_headers|scope_gate|stateless")),
    ("the gate: Host/Origin, the bearer check", calls(r"mcp::gate|auth::|bearer")),
    ("HTTP: hyper (parse, encode), axum routing, middleware, tower-http",
     calls(r"hyper::|axum::|tower_http::|tower::|matchit|httparse|mcpgate::http")),
    ("tokio's scheduler", calls(r"tokio::")),
]
OTHER = "other"


def samples(script_output):
    """(thread name, [(symbol, dso)]) per sample of `perf script -F comm,ip,sym,dso`."""
    thread, stack = None, []
    for line in script_output.splitlines():
        if not line.strip():
            if thread is not None:
                yield thread, stack
            thread, stack = None, []
        elif line[0] not in " \t":
            if thread is not None:
                yield thread, stack
            thread, stack = line.split()[0], []
        else:
            m = re.match(r"\s*[0-9a-f]+\s+(.*?)\s*(?:\(([^()]*)\))?\s*$", line)
            if m:
                stack.append((m.group(1), m.group(2) or ""))
    if thread is not None:
        yield thread, stack


def shares(perf_data):
    out = subprocess.run(["perf", "script", "-i", str(perf_data), "-F", "comm,ip,sym,dso"],
                         capture_output=True, text=True, errors="replace", check=True).stdout
    counts, n = collections.Counter(), 0
    for thread, stack in samples(out):
        n += 1
        part = next((name for name, rule in PARTS if rule(thread, stack)), OTHER)
        counts[part] += 1
    return {name: counts[name] / n for name in [p for p, _ in PARTS] + [OTHER]}, n


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bins", required=True, type=Path)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--keep", type=Path)
    a = p.parse_args()
    if shutil.which("perf") is None:
        sys.exit("profile_w1: needs perf (apt-get install linux-perf)")
    bins = a.bins.resolve()
    work = Path(tempfile.mkdtemp(prefix="profw1-"))
    keep = a.keep.resolve() if a.keep else work
    keep.mkdir(parents=True, exist_ok=True)
    servers, targets = [], []
    try:
        cport = h.free_port()
        ceiling = h.Server("ceiling", [str(bins / "mcpgate-bench-ceiling"), str(cport)], cport)
        servers.append(ceiling.start(work))
        db = work / "mcpgate.db"
        password = h.new_password()
        h.add_user(bins, db, "bench", password)
        port = h.free_port()
        srv = h.Server("mcpgate", h.mcpgate_cmd(bins, port, db), port, cwd=work,
                       ready_path="/healthz")
        servers.append(srv.start(work))
        setup = h.loadgen(bins, "setup", "--base", f"http://localhost:{port}", "--user",
                          "bench", "--password", password, "--grants", 1,
                          "--out", work / "tokens.json")
        ct = h.Target("ceiling (bare axum)", cport, session=False)
        ct.pid = ceiling.proc.pid
        targets.append(ct)
        for label, stateless in (("mcpgate, session", False),
                                 ("mcpgate, stateless 2026-07-28", True)):
            t = h.Target(label, port, "/v1/ai/mcp", token=setup["access_token"],
                         stateless=stateless)
            t.pid = srv.proc.pid
            t.open_session()
            targets.append(t)
        for t in targets:
            t.check()
            h.wrk(t, 2)  # warm-up
        plain = h.alternate(targets, a.reps, lambda t: h.wrk(t, a.seconds))
        profiles = {}
        for i, t in enumerate(targets):
            data = keep / f"w1-{i}.perf.data"
            perf = subprocess.Popen(
                ["perf", "record", "-F", "999", "-g", "--call-graph", "dwarf,16384",
                 "-o", str(data), "-p", str(t.pid), "--", "sleep", str(a.seconds)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            h.wrk(t, a.seconds)
            perf.wait()
            profiles[t.label] = shares(data)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)

    cpu = {t.label: statistics.median(r["cpu_us_per_req"] for r in plain[t.label])
           for t in targets}
    labels = [t.label for t in targets]
    print("| Workload 1 | " + " | ".join(labels) + " |")
    print("|---|" + "---:|" * len(labels))
    print("| Requests/s (plain runs) | " + " | ".join(
        h.spread([r["rps"] for r in plain[lb]], lambda v: f"{v:,.0f}") for lb in labels) + " |")
    print("| CPU per request (plain runs) | " + " | ".join(
        h.spread([r["cpu_us_per_req"] for r in plain[lb]], lambda v: f"{v:.1f} µs")
        for lb in labels) + " |")
    print("| Samples under `perf` | " + " | ".join(f"{profiles[lb][1]:,}" for lb in labels)
          + " |")
    for name in [p for p, _ in PARTS] + [OTHER]:
        cells = []
        for lb in labels:
            share = profiles[lb][0][name]
            cells.append("—" if share == 0 else f"{100 * share:.1f} % ({share * cpu[lb]:.1f} µs)")
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
