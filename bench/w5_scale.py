#!/usr/bin/env python3
"""Workload 5 at scale: many idle Streamable HTTP (or legacy SSE) sessions on
one mcpgate.

One `mcpgate serve` on a SQLite file serves HTTPS itself (native TLS with a
certificate this script makes, HTTP/2 by ALPN). `mcpgate-bench-loadgen idle`
opens the sessions (`initialize`, `notifications/initialized`, then the GET
event stream, held open) over HTTP/2, `--per-connection` sessions per
connection: a process here may not hold more than 20,000 open files, so
100,000 sessions cannot each have a connection of their own. Its RSS
(`VmRSS`) is read at each count.

Beside them, workload 1 (authenticated `tools/call` of the built-in `echo`
on another session, 64 connections, `wrk` over HTTP/1.1 with TLS) runs
`--reps` times before the idle sessions are opened (the idle-free run) and
`--reps` times while they are held, on the same process: the goal is a
p99 within 2x of the idle-free run's. The server is pinned to core 0, the
load tools to core 1, as in bench/run.

  bench/w5_scale.py --bins DIR [--sessions 100000] [--counts 10000,50000]
                    [--per-connection 190] [--distinct 1] [--reps 3]
                    [--seconds 10] [--idle-seconds 15] [--kind streamable|sse]
                    [--json-dir bench/results]

--kind sse opens legacy SSE sessions instead (`GET /sse`, `initialize` and
`notifications/initialized` POSTed to its endpoint, the stream held open),
also over HTTP/2.

--distinct N opens the sessions with N different access tokens (minted by
refresh grants; session n uses token n mod N): the sessions of a deployment
belong to many users, and mcpgate checks each distinct token of its open
streams for revocation.

DIR holds the release binaries `mcpgate` and `mcpgate-bench-loadgen`.
Prints a Markdown report (docs/benchmarks.md quotes it) and, with
--json-dir, writes `<date>-<commit>-w5-scale[-<N>-tokens].json` there.
"""
import argparse
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bins", required=True, type=Path)
    p.add_argument("--sessions", type=int, default=100_000)
    p.add_argument("--counts", default="10000,50000",
                   help="smaller counts at which RSS is also read")
    p.add_argument("--per-connection", type=int, default=190)
    p.add_argument("--distinct", type=int, default=1, help="access tokens the sessions use")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--idle-seconds", type=float, default=15,
                   help="seconds the server's CPU is read over while it only holds the sessions")
    p.add_argument("--seconds", type=int, default=10)
    p.add_argument("--kind", choices=("streamable", "sse"), default="streamable")
    p.add_argument("--json-dir", type=Path)
    a = p.parse_args()
    a.bins = a.bins.resolve()
    counts = sorted({int(c) for c in a.counts.split(",") if c} | {a.sessions})
    counts = [c for c in counts if c <= a.sessions]

    work = Path(tempfile.mkdtemp(prefix="w5scale-"))
    ca, cert, key = h.certificate(work)
    h.TLS = ssl.create_default_context(cafile=str(ca))
    os.environ["MCPGATE_BENCH_CA"] = str(ca)
    ctx = {
        "commit": subprocess.run(["git", "rev-parse", "HEAD"], cwd=h.ROOT, text=True,
                                 capture_output=True).stdout.strip(),
        "clean": subprocess.run(["git", "status", "--porcelain"], cwd=h.ROOT, text=True,
                                capture_output=True).stdout.strip() == "",
        "cpu": h.cpu_model(), "cores": h.cores(), "kernel": os.uname().release,
        "load_before": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "sessions": a.sessions, "per_connection": a.per_connection, "distinct": a.distinct,
        "kind": a.kind,
    }
    srv, holder = None, None
    try:
        db = work / "mcpgate.db"
        password = h.new_password()
        h.add_user(a.bins, db, "bench", password)
        (work / "mcpgate.toml").write_text(
            f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n')
        port = h.free_port()
        srv = h.Server("mcpgate", h.mcpgate_cmd(a.bins, port, db, work / "mcpgate.toml"), port,
                       cwd=work, ready_path="/healthz").start(work)
        base = f"https://localhost:{port}"
        setup = h.loadgen(a.bins, "setup", "--base", base, "--user", "bench", "--password",
                          password, "--grants", 8 if a.distinct > 1 else 1,
                          "--out", work / "tokens.json")
        token = setup["access_token"]
        t = h.Target("calls", port, "/v1/ai/mcp", token=token)
        t.pid = srv.proc.pid
        t.open_session()
        t.check()
        h.wrk(t, 2)  # warm-up
        h.log("workload 1 without idle sessions")
        before = [h.wrk(t, a.seconds) for _ in range(a.reps)]

        h.log(f"opening {a.sessions} idle sessions")
        started = time.time()
        holder = subprocess.Popen(
            h.pin(1, [str(a.bins / "mcpgate-bench-loadgen"), "idle", "--base", base,
                      "--token", token, "--kind", a.kind, "--pid", str(srv.proc.pid),
                      "--counts", ",".join(map(str, counts)),
                      "--per-connection", str(a.per_connection), "--hold",
                      *(["--tokens", str(work / "tokens.json"), "--distinct", str(a.distinct)]
                        if a.distinct > 1 else [])]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = holder.stdout.readline()
        if not line:
            raise h.BenchError(f"loadgen idle failed: {holder.stderr.read()[-2000:]}")
        idle = json.loads(line)
        idle["seconds_to_open"] = time.time() - started
        for pt in idle["points"]:
            h.log(f"  {pt['sessions']} sessions: RSS {pt['rss_bytes'] / 2**20:,.0f} MiB, "
                  f"{pt['bytes_per_session']:,.0f} B each")
        # What holding them costs with nothing else going on: keep-alives,
        # and the watcher of the streams' tokens (src/mcp/streams/watcher.rs).
        time.sleep(2)
        cpu0, t0 = h.cpu_seconds(srv.proc.pid), time.time()
        time.sleep(a.idle_seconds)
        idle["idle_cpu_share"] = (h.cpu_seconds(srv.proc.pid) - cpu0) / (time.time() - t0)
        h.log(f"  held idle: the server used {idle['idle_cpu_share']:.1%} of a core")
        h.log("workload 1 beside them")
        t.check()
        during = [h.wrk(t, a.seconds) for _ in range(a.reps)]
        holder.stdin.close()
        released = json.loads(holder.stdout.read().strip().splitlines()[-1])
        if holder.wait() != 0:
            raise h.BenchError(f"loadgen idle failed: {holder.stderr.read()[-2000:]}")
        holder = None
        idle["rss_bytes_at_release"] = released["rss_bytes_at_release"]
    finally:
        if holder and holder.poll() is None:
            holder.kill()
        if srv:
            srv.stop()
        shutil.rmtree(work, ignore_errors=True)

    result = {"context": ctx, "idle": idle,
              "w1_without_idle": before, "w1_with_idle": during}
    if a.json_dir:
        a.json_dir.mkdir(parents=True, exist_ok=True)
        tag = f"-{a.distinct}-tokens" if a.distinct > 1 else ""
        tag += "-sse" if a.kind == "sse" else ""
        out = a.json_dir / f"{time.strftime('%Y-%m-%d')}-{ctx['commit'][:12]}-w5-scale{tag}.json"
        out.write_text(json.dumps(result, indent=1, default=str) + "\n")
        h.log(f"wrote {out}")

    mib = 2 ** 20
    tokens = (f"{a.distinct:,} different access tokens" if a.distinct > 1
              else "one access token")
    print(f"Commit `{ctx['commit'][:12]}` ({'clean' if ctx['clean'] else 'dirty'} tree), "
          f"{ctx['date']}, {ctx['cpu']}, {ctx['cores']} cores, kernel {ctx['kernel']}, load "
          f"average {ctx['load_before'][0]:.1f} at the start. Sessions over HTTP/2 with TLS, "
          f"{a.per_connection} per connection ({idle['connections']} connections), {tokens}, "
          f"opened in {idle['seconds_to_open']:.0f} s. Held idle for {a.idle_seconds:g} s, the server "
          f"used {idle['idle_cpu_share']:.1%} of a core.")
    print()
    kind = "legacy SSE" if a.kind == "sse" else "Streamable HTTP"
    print(f"| Idle {kind} sessions | RSS | Per session (above the baseline) |")
    print("|---:|---:|---:|")
    print(f"| 0 (baseline) | {idle['baseline_rss_bytes'] / mib:,.0f} MiB | |")
    for pt in idle["points"]:
        print(f"| {pt['sessions']:,} | {pt['rss_bytes'] / mib:,.0f} MiB | "
              f"{pt['bytes_per_session'] / 1000:.1f} KB |")
    print()
    print(f"Workload 1 on another session, {a.reps} runs of {a.seconds} s each, without and "
          f"with the {a.sessions:,} idle sessions:")
    print()
    print("| | Requests/s | p99 | CPU per request |")
    print("|---|---:|---:|---:|")
    for label, runs in (("without idle sessions", before), ("with them", during)):
        print(f"| {label} | {h.spread([r['rps'] for r in runs], lambda v: f'{v:,.0f}')} | "
              f"{h.spread([r['p99_us'] / 1000 for r in runs], lambda v: f'{v:.2f} ms')} | "
              f"{h.spread([r['cpu_us_per_req'] for r in runs], lambda v: f'{v:.0f} µs')} |")
    ratios = [d["p99_us"] / b["p99_us"] for b, d in zip(before, during)]
    print()
    print(f"p99 with ÷ without, per pair of runs: "
          f"{h.spread(ratios, lambda v: f'{v:.2f}×')} (goal ≤ 2×).")


if __name__ == "__main__":
    sys.exit(main())
