#!/usr/bin/env python3
"""Workload 5 (idle sessions) of two mcpgate builds side by side: for each
kind of session and each repetition, a fresh server of build A and one of
build B (in turn, A first on odd repetitions, B first on even ones), each on
a SQLite file of its own, over plain HTTP/1.1 (a connection per session, as
bench/run measures); `mcpgate-bench-loadgen idle` of build B opens the
sessions, initialized as a client leaves them, and reads the server's RSS
at each count. Prints each build's bytes per session at the largest count
(median and range) and the ratio B / A per repetition. docs/benchmarks.md
quotes it.

  bench/ab_w5.py --a DIR --b DIR [--kinds sse,streamable] [--counts 1000,10000]
                 [--reps 3]

DIR holds the release binaries `mcpgate` and `mcpgate-bench-loadgen` of one
build (copy them out of target/release).
"""
import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h  # noqa: E402

p = argparse.ArgumentParser()
p.add_argument("--a", required=True, help="directory of build A's binaries")
p.add_argument("--b", required=True, help="directory of build B's binaries")
p.add_argument("--kinds", default="sse,streamable")
p.add_argument("--counts", default="1000,10000")
p.add_argument("--reps", type=int, default=3)
a = p.parse_args()
sides = (("A", Path(a.a).resolve()), ("B", Path(a.b).resolve()))
loadgen_bins = sides[1][1]
work = Path(tempfile.mkdtemp(prefix="abw5-"))
per_session = {}
try:
    for kind in a.kinds.split(","):
        for rep in range(a.reps):
            order = sides if rep % 2 == 0 else sides[::-1]
            for side, bins in order:
                d = work / f"{kind}-{rep}-{side}"
                d.mkdir()
                db = d / "mcpgate.db"
                password = h.new_password()
                h.add_user(bins, db, "bench", password)
                port = h.free_port()
                srv = h.Server(f"mcpgate-{side}", h.mcpgate_cmd(bins, port, db), port, cwd=d,
                               env=h.IDLE_ENV, ready_path="/healthz").start(d)
                try:
                    base = f"http://localhost:{port}"
                    setup = h.loadgen(loadgen_bins, "setup", "--base", base, "--user", "bench",
                                      "--password", password, "--grants", 1,
                                      "--out", d / "tokens.json")
                    r = h.loadgen(loadgen_bins, "idle", "--base", base,
                                  "--token", setup["access_token"], "--kind", kind,
                                  "--pid", srv.proc.pid, "--counts", a.counts)
                finally:
                    srv.stop()
                last = r["points"][-1]
                per_session.setdefault((kind, side), []).append(last["bytes_per_session"])
                h.log(f"{kind} rep {rep + 1} {side}: " + ", ".join(
                    f"{pt['sessions']} sessions {pt['bytes_per_session']:,.0f} B each"
                    for pt in r["points"]))
finally:
    shutil.rmtree(work, ignore_errors=True)

print(f"| Idle session (HTTP/1.1), bytes per session at {a.counts.split(',')[-1]} | "
      f"A ({a.a}) | B ({a.b}) | B ÷ A, per repetition |")
print("|---|---:|---:|---:|")
for kind in a.kinds.split(","):
    xa, xb = per_session[(kind, "A")], per_session[(kind, "B")]
    print(f"| {kind} | {h.spread(xa, lambda v: f'{v:,.0f}')} | "
          f"{h.spread(xb, lambda v: f'{v:,.0f}')} | "
          f"{h.spread([b / x for x, b in zip(xa, xb)], lambda v: f'{v:.2f}×')} |")
