#!/usr/bin/env python3
"""The cost of observability on workload 1 (authenticated tools/call over a
Streamable HTTP session, docs/benchmarks.md): the same release binary and
database, three processes started alike except for

  off       no metrics setting, no OTEL_* variable (the default);
  metrics   MCPGATE_METRICS_LISTEN set (recording on, /metrics on a
            second port, scraped once per repetition);
  traces    metrics as above, and OTEL_EXPORTER_OTLP_ENDPOINT pointing at a
            local OTLP/HTTP sink that answers 200 (a span per tools/call,
            batched and exported).

Each repetition runs wrk against each in turn (rotating the order), as
harness.py does. Prints a Markdown section with the medians, the ratios to
"off" and the spread (min-max) over repetitions.

    bench/run --telemetry [--reps N] [--seconds S]
"""

import argparse
import http.server
import statistics
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import harness as h  # noqa: E402


class Sink(http.server.BaseHTTPRequestHandler):
    received = 0

    def do_POST(self):  # noqa: N802 (http.server's name)
        n = int(self.headers.get("content-length", "0"))
        self.rfile.read(n)
        Sink.received += 1
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_):
        pass


def scrape(port):
    c = h.http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    c.request("GET", "/metrics")
    r = c.getresponse()
    body = r.read().decode()
    c.close()
    if r.status != 200 or "mcpgate_mcp_requests_total" not in body:
        raise h.BenchError(f"/metrics answered {r.status}")
    return body


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, type=Path)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=10)
    a = ap.parse_args()
    bins = a.bin.resolve()
    work = Path(tempfile.mkdtemp(prefix="mcpgate-telemetry-bench-"))
    servers = []
    sink = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        db = work / "mcpgate.db"
        password = h.new_password()
        h.add_user(bins, db, "bench", password)
        ports = {k: h.free_port() for k in ("off", "metrics", "traces")}
        mports = {k: h.free_port() for k in ("metrics", "traces")}
        # One public URL for the three, so that one token is valid on each.
        base = f"http://localhost:{ports['off']}"
        envs = {
            "off": {"MCPGATE_PUBLIC_URL": base},
            "metrics": {"MCPGATE_PUBLIC_URL": base,
                        "MCPGATE_METRICS_LISTEN": f"127.0.0.1:{mports['metrics']}"},
            "traces": {
                "MCPGATE_PUBLIC_URL": base,
                "MCPGATE_METRICS_LISTEN": f"127.0.0.1:{mports['traces']}",
                "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink.server_port}",
                "OTEL_SERVICE_NAME": "mcpgate-bench",
            },
        }
        for k, port in ports.items():
            s = h.Server(f"mcpgate-{k}", h.mcpgate_cmd(bins, port, db), port, cwd=work,
                         env=envs[k], ready_path="/healthz")
            servers.append(s.start(work))
        setup = h.loadgen(bins, "setup", "--base", base, "--user", "bench", "--password",
                          password, "--grants", h.CONNECTIONS, "--out", work / "tokens.json")
        access = setup["access_token"]
        targets = []
        for s, (k, port) in zip(servers, ports.items()):
            t = h.Target(k, port, "/v1/ai/mcp", token=access)
            t.pid = s.proc.pid
            t.open_session()
            t.check()
            h.wrk(t, 2)  # warm-up
            targets.append(t)

        def run(t):
            r = h.wrk(t, a.seconds)
            if t.label in mports:
                scrape(mports[t.label])
            return r

        res = h.alternate(targets, a.reps, run)
        if Sink.received == 0:
            raise h.BenchError("the OTLP sink received no export")
        print(report(res, a.reps, a.seconds, Sink.received))
    finally:
        for s in reversed(servers):
            s.stop()
        sink.shutdown()


def report(res, reps, seconds, exports):
    off = statistics.median(r["rps"] for r in res["off"])
    lines = [
        f"{reps} repetitions of {seconds} s per configuration, {h.CONNECTIONS} connections, "
        f"wrk pinned to core 1 and the servers to core 0 (taskset); the OTLP sink received "
        f"{exports} exports.",
        "",
        "| Configuration | Requests/s (median) | min-max | vs off | p99 (median) | CPU µs/request |",
        "|---|---|---|---|---|---|",
    ]
    for label in ("off", "metrics", "traces"):
        runs = res[label]
        rps = [r["rps"] for r in runs]
        med = statistics.median(rps)
        lines.append(
            f"| {label} | {med:,.0f} | {min(rps):,.0f}-{max(rps):,.0f} | {med / off:.2f} | "
            f"{statistics.median(r['p99_us'] for r in runs) / 1000:.2f} ms | "
            f"{statistics.median(r['cpu_us_per_req'] for r in runs):.0f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    try:
        main()
    except h.BenchError as e:
        print(f"bench: {e}", file=sys.stderr)
        sys.exit(1)
