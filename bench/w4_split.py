#!/usr/bin/env python3
"""Workload 4, its CPU split: where a gateway call's CPU time goes.

Runs workload 4 of bench/run (`tools/call` of the stdio upstream's `echo`,
64 connections, `wrk`) against one `mcpgate serve` with
`mcpgate-fixture-upstream` as its stdio upstream (authenticated), and
against supergateway with the same upstream when bench/run has installed
it (bench/node_modules), `--reps` times, alternating; it reads the CPU
time of each server's own process and of its upstream child apart
(`/proc/<pid>/stat`). Beside them, workload 1 (mcpgate's built-in `echo`)
on the same mcpgate: the part of a gateway call that any call costs.

The goal "W4 >= 10x supergateway" asks mcpgate and the upstream together
to spend at most a tenth of the CPU per call supergateway and the same
upstream spend (each is bound by CPU on the one core the servers share);
this script says how much of each total is the upstream's own, which no
gateway can save.

  bench/w4_split.py --bins DIR [DIR ...] [--reps 5] [--seconds 10]

DIR holds the release binaries `mcpgate`, `mcpgate-bench-loadgen` and
`mcpgate-fixture-upstream`. Given two or more builds, each runs as a
server of its own (the first build's upstream binary for all), side by
side in the same rotation, and the ratios of each later build's workload 4
to the first's are printed per repetition. Prints a Markdown table.
(`bench/run` installs supergateway; `cd bench && npm ci` does too.)
"""
import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h  # noqa: E402


def own_cpu(pid):
    """User + system CPU seconds of this process alone."""
    f = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def children(pid):
    return [p for p in h.process_tree(pid) if p != pid]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bins", required=True, type=Path, nargs="+")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--seconds", type=int, default=10)
    a = p.parse_args()
    builds = [b.resolve() for b in a.bins]
    work = Path(tempfile.mkdtemp(prefix="w4split-"))
    upstream = builds[0] / "mcpgate-fixture-upstream"
    servers = []
    # name -> (label, target, server)
    runs = {}
    try:
        for i, bins in enumerate(builds):
            d = work / f"build{i}"
            d.mkdir()
            tag = f" ({bins.name})" if len(builds) > 1 else ""
            db = d / "mcpgate.db"
            password = h.new_password()
            (d / "mcpgate.toml").write_text(f'[[upstream]]\nname = "up"\ncommand = "{upstream}"\n')
            h.add_user(bins, db, "bench", password)
            port = h.free_port()
            srv = h.Server(f"mcpgate{tag}", h.mcpgate_cmd(bins, port, db, d / "mcpgate.toml"),
                           port, cwd=d, ready_path="/healthz").start(work)
            servers.append(srv)
            setup = h.loadgen(bins, "setup", "--base", f"http://localhost:{port}", "--user",
                              "bench", "--password", password, "--grants", 1,
                              "--out", d / "tokens.json")
            token = setup["access_token"]
            runs[f"gateway{i}"] = (f"4: `up_echo` through mcpgate{tag}",
                                   h.Target(f"mcpgate{tag} → stdio", port, "/v1/ai/mcp",
                                            tool="up_echo", token=token), srv)
            runs[f"builtin{i}"] = (f"1: mcpgate's built-in `echo`{tag}",
                                   h.Target(f"mcpgate{tag} echo", port, "/v1/ai/mcp",
                                            tool="echo", token=token), srv)
        sg = h.BENCH / "node_modules" / "supergateway" / "dist" / "index.js"
        if sg.exists():
            sport = h.free_port()
            ssrv = h.Server("supergateway", [
                "node", str(sg), "--stdio", str(upstream), "--outputTransport",
                "streamableHttp", "--stateful", "--port", str(sport), "--streamableHttpPath",
                "/mcp", "--logLevel", "none"], sport).start(work)
            servers.append(ssrv)
            runs["supergateway"] = ("4: `echo` through supergateway",
                                    h.Target("supergateway", sport), ssrv)
        else:
            h.log(f"no {sg} (bench/run installs it): supergateway left out")
        for _, t, server in runs.values():
            t.pid = server.proc.pid
            t.open_session()
            t.check()
            h.wrk(t, 2)  # warm-up
        rows = {name: [] for name in runs}
        for rep in range(a.reps):
            for name, (label, t, server) in runs.items():
                # The upstream and whatever runs it (supergateway starts it
                # through a shell): every descendant of the server.
                kids = children(server.proc.pid)
                builtin = name.startswith("builtin")
                if not builtin and not kids:
                    raise h.BenchError(f"{t.label}: no upstream process")
                ups = kids if not builtin else []
                g0, u0 = own_cpu(server.proc.pid), sum(own_cpu(k) for k in ups)
                r = h.wrk(t, a.seconds)
                g1, u1 = own_cpu(server.proc.pid), sum(own_cpu(k) for k in ups)
                n = r["requests"]
                row = {"rps": r["rps"], "p99_us": r["p99_us"],
                       "server_us": (g1 - g0) * 1e6 / n, "upstream_us": (u1 - u0) * 1e6 / n}
                rows[name].append(row)
                h.log(f"rep {rep + 1} {t.label}: {r['rps']:,.0f}/s, server "
                      f"{row['server_us']:.0f} µs, upstream {row['upstream_us']:.0f} µs per call")
    finally:
        for srv in servers:
            srv.stop()
        shutil.rmtree(work, ignore_errors=True)

    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {h.cpu_model()}, "
          f"{h.cores()} cores; {a.reps} repetitions of {a.seconds} s, the targets alternating; "
          f"medians (lowest–highest).")
    print()
    print("| Workload | Requests/s | The server's own CPU per call | The upstream's CPU per call |")
    print("|---|---:|---:|---:|")
    for name, (label, _, _) in runs.items():
        rs = rows[name]
        print(f"| {label} | {h.spread([r['rps'] for r in rs], lambda v: f'{v:,.0f}')} | "
              f"{h.spread([r['server_us'] for r in rs], lambda v: f'{v:.0f} µs')} | "
              f"{h.spread([r['upstream_us'] for r in rs], lambda v: f'{v:.0f} µs')} |")
    print()
    for i, bins in enumerate(builds):
        tag = f" ({bins.name})" if len(builds) > 1 else ""
        if "supergateway" in rows:
            ratios = [g["rps"] / s["rps"]
                      for g, s in zip(rows[f"gateway{i}"], rows["supergateway"])]
            print(f"- mcpgate{tag} → stdio ÷ supergateway, requests/s per repetition: "
                  f"{h.spread(ratios, lambda v: f'{v:.2f}×')} (goal ≥ 10×).")
        if i > 0:
            ratios = [b["rps"] / f["rps"] for b, f in zip(rows[f"gateway{i}"], rows["gateway0"])]
            print(f"- workload 4, {bins.name} ÷ {builds[0].name}, requests/s per repetition: "
                  f"{h.spread(ratios, lambda v: f'{v:.2f}×')}.")


if __name__ == "__main__":
    sys.exit(main())
