#!/usr/bin/env python3
"""Workload 1 (authenticated tools/call of the built-in echo, 64 connections)
of two mcpgate builds side by side: both servers up at once, each on a SQLite
file of its own, each called over a Streamable HTTP session and statelessly
(2026-07-28), 10 s runs of the four targets rotating; prints each target's
median and range and, per repetition, the ratios B / A and stateless /
session. docs/benchmarks.md quotes it.

  bench/ab_w1.py --a DIR --b DIR [--reps N] [--seconds S]

DIR holds the release binaries `mcpgate` and `mcpgate-bench-loadgen` of one
build (copy them out of target/release).
"""
import argparse, shutil, sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h

p = argparse.ArgumentParser()
p.add_argument("--a", required=True, help="directory of build A's binaries")
p.add_argument("--b", required=True, help="directory of build B's binaries")
p.add_argument("--reps", type=int, default=5)
p.add_argument("--seconds", type=int, default=10)
a = p.parse_args()
work = Path(tempfile.mkdtemp(prefix="abw1-"))
servers, targets = [], []
try:
    for side, bins in (("A", Path(a.a)), ("B", Path(a.b))):
        d = work / side
        d.mkdir()
        db = d / "mcpgate.db"
        password = h.new_password()
        h.add_user(bins, db, "bench", password)
        port = h.free_port()
        srv = h.Server(f"mcpgate {side}", h.mcpgate_cmd(bins, port, db), port, cwd=d,
                       ready_path="/healthz")
        servers.append(srv.start(work))
        setup = h.loadgen(bins, "setup", "--base", f"http://localhost:{port}", "--user",
                          "bench", "--password", password, "--grants", 1,
                          "--out", d / "tokens.json")
        for label, stateless in ((f"{side} session", False), (f"{side} stateless", True)):
            t = h.Target(label, port, "/v1/ai/mcp", token=setup["access_token"],
                         stateless=stateless)
            t.pid = srv.proc.pid
            t.open_session()
            t.check()
            h.wrk(t, 2)  # warm-up
            targets.append(t)
    res = h.alternate(targets, a.reps, lambda t: h.wrk(t, a.seconds))
finally:
    for srv in servers:
        srv.stop()
    shutil.rmtree(work, ignore_errors=True)


print("| Target | Requests/s | CPU per request (µs) |")
print("|---|---:|---:|")
for label, runs in res.items():
    print(f"| {label} | {h.spread([r['rps'] for r in runs], lambda v: f'{v:,.0f}')} | "
          f"{h.spread([r['cpu_us_per_req'] for r in runs], lambda v: f'{v:.1f}')} |")
print()
print("| Ratio of requests/s, per repetition | Median (range) |")
print("|---|---:|")
ratio = lambda x, y: [p["rps"] / q["rps"] for p, q in zip(res[x], res[y])]
for num, den in (("B session", "A session"), ("B stateless", "A stateless"),
                 ("A stateless", "A session"), ("B stateless", "B session")):
    print(f"| {num} ÷ {den} | {h.spread(ratio(num, den), lambda v: f'{v:.2f}×')} |")
