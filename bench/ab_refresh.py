#!/usr/bin/env python3
"""Workload 3 (refresh_token grants with rotation, 64 connections) of two
mcpgate builds side by side: both servers up at once, each on a database of
its own (a SQLite file, or with --store postgres a database created on the
server at --postgres and dropped afterwards), 10 s runs alternating between
them; prints each side's median and range and the ratio B / A per
repetition. docs/benchmarks.md ("Token endpoint, round two") quotes it.

  bench/ab_refresh.py --a DIR --b DIR [--store sqlite|postgres]
      [--postgres postgres://user@host:port] [--reps N] [--seconds S]
      [--extra-a "ARGS"] [--extra-b "ARGS"] [--sql-b "SQL"]

DIR holds the release binaries `mcpgate` and `mcpgate-bench-loadgen` of one
build (copy them out of target/release). --extra-a/--extra-b add arguments
to a side's `mcpgate serve` (e.g. "--audit-store false"); --sql-b runs SQL
on side B's PostgreSQL database after its migration (for experiments such
as dropping an index).
"""
import argparse, json, secrets, shutil, statistics, sys, tempfile
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h

p = argparse.ArgumentParser()
p.add_argument("--a", required=True, help="directory of build A's binaries")
p.add_argument("--b", required=True, help="directory of build B's binaries")
p.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
p.add_argument("--postgres", help="postgres://user@host:port (with --store postgres)")
p.add_argument("--reps", type=int, default=5)
p.add_argument("--seconds", type=int, default=10)
p.add_argument("--extra-a", default="", help="more arguments of A's mcpgate serve")
p.add_argument("--extra-b", default="", help="more arguments of B's mcpgate serve")
p.add_argument("--sql-b", default="", help="SQL run on B's PostgreSQL database")
a = p.parse_args()
if a.store == "postgres" and not a.postgres:
    p.error("--store postgres needs --postgres")
work = Path(tempfile.mkdtemp(prefix="abw3-"))
pw = "bench-" + secrets.token_hex(8)
servers, targets, dbs = [], [], []
try:
    for label, d, extra in (("A", a.a, a.extra_a.split()), ("B", a.b, a.extra_b.split())):
        bins = Path(d)
        if a.store == "postgres":
            name = "mcpgate_ab_" + secrets.token_hex(4)
            h.psql(f"{a.postgres}/postgres", f"CREATE DATABASE {name}")
            dbs.append(name)
            db = f"{a.postgres}/{name}"
        else:
            (work / label).mkdir()
            db = work / label / "mcpgate.db"
        h.add_user(bins, db, "bench", pw)
        port = h.free_port()
        srv = h.Server(f"mcpgate-{label}", h.mcpgate_cmd(bins, port, db) + extra, port,
                       cwd=work, ready_path="/healthz").start(work)
        servers.append(srv)
        if label == "B" and a.sql_b and a.store == "postgres":
            print("B sql:", h.psql(db, a.sql_b))
        tokens = work / f"tokens-{label}.json"
        h.loadgen(bins, "setup", "--base", f"http://localhost:{port}", "--user", "bench",
                  "--password", pw, "--grants", h.CONNECTIONS, "--out", tokens)
        t = h.Target(label, port)
        t.bins, t.pid, t.tokens = bins, srv.proc.pid, tokens
        targets.append(t)
    res = h.alternate(targets, a.reps,
                      lambda t: h.refresh_grants(t.bins, t.pid, t.tokens, a.seconds))
    out = {}
    for label, rs in res.items():
        rps = [r["rps"] for r in rs]
        cpu = [r["cpu_us_per_req"] for r in rs]
        out[label] = {"rps": rps, "cpu": cpu}
        print(f"{label}: rps median {statistics.median(rps):.0f} ({min(rps):.0f}-{max(rps):.0f}), "
              f"cpu/grant median {statistics.median(cpu):.0f} µs")
    ratios = [b / x for x, b in zip(out["A"]["rps"], out["B"]["rps"])]
    print(f"B/A per rep: {', '.join(f'{r:.2f}' for r in ratios)}; median "
          f"{statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})")
    print(json.dumps(out))
finally:
    for s in servers:
        s.stop()
    for name in dbs:
        h.psql(f"{a.postgres}/postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    shutil.rmtree(work, ignore_errors=True)
