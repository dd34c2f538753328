#!/usr/bin/env python3
"""The benchmark harness bench/run calls once everything is built and
installed. Standard library only.

It starts every server on loopback (pinned to core 0 when the machine has
two or more cores), runs each workload against each target, alternating the
targets from one repetition to the next so that drift of the machine hits all
alike, and writes a Markdown report: medians over the repetitions and the
ratios to mcpgate. Load generators run on core 1.

Full mode writes the report between the markers of docs/benchmarks.md;
--smoke runs mcpgate's workloads only (and the ceiling), briefly, prints the
report and checks only that every workload worked (2xx answers, non-zero
throughput), never how fast.
"""

import argparse
import datetime
import http.client
import json
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from report import (CONNECTIONS, figures, machine, median, rate_table, report,
                    result_path)

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
BEGIN = "<!-- bench:results:begin -->"
END = "<!-- bench:results:end -->"
ECHO = "hello bench"
CALL = (
    '{"jsonrpc":"2.0","id":__ID__,"method":"tools/call",'
    '"params":{"name":"%s","arguments":{"text":"' + ECHO + '"}%s}}'
)
STATELESS_META = (
    ',"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",'
    '"io.modelcontextprotocol/clientCapabilities":{}}'
)
SESSION_VERSION = "2025-06-18"


# An ssl.SSLContext trusting the bench's own authority, when the servers
# serve HTTPS (bench/w5_scale.py); None: plain HTTP.
TLS = None


def certificate(work):
    """A bench authority and a leaf for localhost and 127.0.0.1 it signs, in
    `work`: (the authority's PEM, the leaf's PEM, the leaf's key)."""
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)

    def run(*args):
        subprocess.run(["openssl", *args], cwd=work, check=True, capture_output=True)
    run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-days", "2", "-subj", "/CN=mcpgate bench CA", "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", "/CN=localhost", "-keyout", "key.pem", "-out", "leaf.csr")
    (work / "leaf.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n")
    run("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-extfile", "leaf.ext", "-out", "cert.pem")
    return work / "ca.pem", work / "cert.pem", work / "key.pem"


def connect(port, timeout):
    """A connection to a local server, HTTPS when TLS is set."""
    if TLS is not None:
        return http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=TLS)
    return http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)


def scheme():
    return "https" if TLS is not None else "http"


class BenchError(Exception):
    pass


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ machine


def cores():
    return len(os.sched_getaffinity(0))


def pin(core, cmd):
    if cores() >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", str(core)] + cmd
    return cmd


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_password():
    """A random password for the bench user. Never begins with `-`, which
    token_urlsafe may give (1 time in 64) and which the load generator's
    argument parser would take for an option."""
    return "pw" + secrets.token_urlsafe(16)


def spread(xs, fmt):
    """The median of xs with the lowest and highest, each formatted by fmt."""
    return f"{fmt(statistics.median(xs))} ({fmt(min(xs))}–{fmt(max(xs))})"


def cpu_model():
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def mem_total():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def process_tree(pid):
    """pid and all its descendants."""
    children = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_seconds(pid):
    """User + system CPU time of pid and its descendants."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for p in process_tree(pid):
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(f[11]) + int(f[12])  # utime, stime
    return total / tick


# ------------------------------------------------------------------ servers


class Server:
    def __init__(self, name, cmd, port, cwd=None, env=None, ready_path="/"):
        self.name, self.cmd, self.port = name, cmd, port
        self.cwd, self.env, self.ready_path = cwd, env, ready_path
        self.proc = None
        self.log_path = None

    def start(self, work):
        self.log_path = Path(work) / f"{self.name}.log"
        env = dict(os.environ, RUST_LOG="warn", **(self.env or {}))
        self.proc = subprocess.Popen(
            pin(0, self.cmd),
            cwd=self.cwd or work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=open(self.log_path, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited: {self.tail()}")
            try:
                c = connect(self.port, 2)
                c.request("GET", self.ready_path)
                c.getresponse().read()
                c.close()
                return self
            except OSError:
                time.sleep(0.05)
        raise BenchError(f"{self.name} did not start: {self.tail()}")

    def tail(self):
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()


# ------------------------------------------------------------------ MCP


def post(port, path, body, headers):
    c = connect(port, 30)
    h = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        **headers,
    }
    c.request("POST", path, body=body.encode(), headers=h)
    r = c.getresponse()
    data = r.read().decode(errors="replace")
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, data


def jsonrpc_message(body):
    """The JSON-RPC message of a JSON or SSE response body."""
    try:
        return json.loads(body)
    except ValueError:
        for line in body.splitlines():
            if line.startswith("data:") and line[5:].strip():
                try:
                    return json.loads(line[5:].strip())
                except ValueError:
                    continue
    raise BenchError(f"no JSON-RPC message in {body[:300]!r}")


class Target:
    """One server answering tools/call of an echo tool over Streamable HTTP."""

    def __init__(self, label, port, path="/mcp", tool="echo", token=None,
                 stateless=False, session=True):
        self.label, self.port, self.path, self.tool = label, port, path, tool
        self.token, self.stateless, self.session = token, stateless, session
        self.sid = None
        self.pid = None

    def auth(self):
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def open_session(self):
        if self.stateless or not self.session:
            return
        status, hdrs, body = post(
            self.port, self.path,
            json.dumps({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                "protocolVersion": SESSION_VERSION, "capabilities": {},
                "clientInfo": {"name": "mcpgate-bench", "version": "0"}}}),
            self.auth())
        if status != 200 or "mcp-session-id" not in hdrs:
            raise BenchError(f"{self.label}: initialize answered {status}: {body[:300]}")
        self.sid = hdrs["mcp-session-id"]
        jsonrpc_message(body)
        status, _, body = post(
            self.port, self.path,
            '{"jsonrpc":"2.0","method":"notifications/initialized"}',
            {**self.auth(), "Mcp-Session-Id": self.sid,
             "MCP-Protocol-Version": SESSION_VERSION})
        if status not in (200, 202):
            raise BenchError(f"{self.label}: initialized answered {status}: {body[:300]}")

    def wrk_env(self):
        env = {
            "BENCH_BODY": CALL % (self.tool, STATELESS_META if self.stateless else ""),
            "BENCH_TOKEN": self.token or "",
            "BENCH_SESSION": self.sid or "",
            "BENCH_VERSION": "2026-07-28" if self.stateless else (
                SESSION_VERSION if self.sid else ""),
            "BENCH_HEADERS": f"Mcp-Method: tools/call|Mcp-Name: {self.tool}"
            if self.stateless else "",
        }
        return env

    def check(self):
        """One request by hand: it must answer the echo."""
        env = self.wrk_env()
        headers = dict(self.auth())
        if env["BENCH_SESSION"]:
            headers["Mcp-Session-Id"] = env["BENCH_SESSION"]
        if env["BENCH_VERSION"]:
            headers["MCP-Protocol-Version"] = env["BENCH_VERSION"]
        for h in filter(None, env["BENCH_HEADERS"].split("|")):
            k, v = h.split(":", 1)
            headers[k.strip()] = v.strip()
        status, hdrs, body = post(self.port, self.path,
                                  env["BENCH_BODY"].replace("__ID__", "1"), headers)
        msg = jsonrpc_message(body)
        text = json.dumps(msg.get("result", {}))
        if status != 200 or ECHO not in text or msg.get("result", {}).get("isError"):
            raise BenchError(f"{self.label}: tools/call answered {status}: {body[:400]}")
        return hdrs.get("content-type", "").split(";")[0]


def wrk(target, seconds):
    env = dict(os.environ, **target.wrk_env())
    cmd = pin(1, ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{seconds}s", "--timeout", "10s",
                  "-s", str(BENCH / "wrk" / "jsonrpc.lua"),
                  f"{scheme()}://127.0.0.1:{target.port}{target.path}"])
    cpu0 = cpu_seconds(target.pid)
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    cpu1 = cpu_seconds(target.pid)
    line = next((l for l in out.stdout.splitlines() if l.startswith("WRK_JSON ")), None)
    if out.returncode != 0 or line is None:
        raise BenchError(f"wrk failed against {target.label}: {out.stdout}{out.stderr}")
    r = json.loads(line[len("WRK_JSON "):])
    socket_errors = r["connect_errors"] + r["read_errors"] + r["write_errors"] + r["timeouts"]
    if r["requests"] == 0 or r["non2xx"] > 0 or socket_errors > r["requests"] // 100:
        raise BenchError(f"{target.label}: {r['requests']} requests, {r['non2xx']} non-2xx, "
                         f"{socket_errors} socket errors")
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    r["cpu_us_per_req"] = (cpu1 - cpu0) * 1e6 / r["requests"]
    return r


def loadgen(bins, *args):
    cmd = pin(1, [str(bins / "mcpgate-bench-loadgen"), *map(str, args)])
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise BenchError(f"loadgen {args[0]} failed: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ runs


def alternate(targets, reps, run_one):
    """Runs run_one(target) reps times per target, rotating the order."""
    results = {t.label: [] for t in targets}
    for rep in range(reps):
        order = targets[rep % len(targets):] + targets[:rep % len(targets)]
        for t in order:
            r = run_one(t)
            results[t.label].append(r)
            log(f"  rep {rep + 1}/{reps} {t.label}: " + ", ".join(
                f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                for k, v in r.items() if k in ("rps", "p50_us", "p99_us", "cpu_us_per_req",
                                               "cached_us", "lookup_us")))
    return results


def database_url(db):
    """A SQLite file's path, or a PostgreSQL URL as it is."""
    return db if str(db).startswith("postgres") else f"sqlite://{db}"


# Workload 5 over HTTP/1.1 holds a connection per session, and a legacy
# session's messages are POSTed on further (pooled) connections: above the
# default cap of 10,000 connections (`max_connections`) the last sessions
# could not connect. 15,000 stays under this machine's limit of open files.
IDLE_ENV = {"MCPGATE_MAX_CONNECTIONS": "15000"}


def mcpgate_cmd(bins, port, db, config=None):
    cmd = [str(bins / "mcpgate")]
    if config:
        cmd += ["--config", str(config)]
    return cmd + ["serve", "--listen", f"127.0.0.1:{port}", "--database-url", database_url(db)]


def add_user(bins, db, name, password):
    out = subprocess.run(
        [str(bins / "mcpgate"), "--database-url", database_url(db), "user", "add", name,
         "--password-stdin"], input=password + "\n", capture_output=True, text=True,
        env=dict(os.environ, RUST_LOG="warn"))
    if out.returncode != 0:
        raise BenchError(f"mcpgate user add: {out.stderr}")


def versions(smoke):
    v = {}
    try:
        v["mcpgate"] = subprocess.run(
            ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
            capture_output=True, text=True).stdout.strip()
    except OSError:
        v["mcpgate"] = "?"
    w = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
    v["wrk"] = (w.stdout + w.stderr).split("\n")[0].split(" [")[0]
    if smoke:
        return v
    nm = BENCH / "node_modules"
    for pkg in ("@modelcontextprotocol/sdk", "supergateway"):
        v[pkg] = json.loads((nm / pkg / "package.json").read_text())["version"]
    v["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    for venv, pkg in ((".venv-fastmcp", "fastmcp"), (".venv-mcp-proxy", "mcp-proxy")):
        out = subprocess.run(
            [str(BENCH / venv / "bin" / "python"), "-c",
             "import importlib.metadata as m, sys, platform; "
             f"print(m.version('{pkg}'), m.version('mcp'), m.version('uvicorn'), "
             "platform.python_version())"], capture_output=True, text=True).stdout.split()
        v[pkg] = f"{out[0]} (mcp {out[1]}, uvicorn {out[2]}, Python {out[3]})"
    return v


# ------------------------------------------------------------------ refresh grants


def refresh_grants(bins, pid, tokens, seconds):
    """Workload 3 once: refresh_token grants with rotation, CONNECTIONS at a
    time, against the server with process id pid."""
    c0 = cpu_seconds(pid)
    res = loadgen(bins, "refresh", "--tokens", tokens, "--connections", CONNECTIONS,
                  "--duration", seconds)
    res["cpu_us_per_req"] = (cpu_seconds(pid) - c0) * 1e6 / res["requests"]
    return res


def psql(url, sql):
    out = subprocess.run(["psql", url, "-qAtXc", sql], capture_output=True, text=True)
    if out.returncode != 0:
        raise BenchError(f"psql {sql!r}: {out.stderr.strip()}")
    return out.stdout.strip()


def postgres_settings(server_url):
    """The server's version and durability settings, for the report (a
    server without fsync commits much faster than a durable one)."""
    url = f"{server_url.rstrip('/')}/postgres"
    return {k: psql(url, f"SHOW {k}") for k in ("server_version", "fsync", "synchronous_commit")}


def refresh_on_postgres(bins, work, server_url, password, reps, seconds, servers):
    """Workload 3 on PostgreSQL: mcpgate on a database of its own, created
    on the server at server_url (postgres://user@host:port) and dropped
    afterwards."""
    name = "mcpgate_bench_" + secrets.token_hex(4)
    server_url = server_url.rstrip("/")
    psql(f"{server_url}/postgres", f"CREATE DATABASE {name}")
    try:
        url = f"{server_url}/{name}"
        add_user(bins, url, "bench", password)
        port = free_port()
        d = work / "postgres"
        d.mkdir()
        srv = Server("mcpgate-postgres", mcpgate_cmd(bins, port, url), port, cwd=d,
                     ready_path="/healthz").start(work)
        servers.append(srv)
        tokens = d / "tokens.json"
        loadgen(bins, "setup", "--base", f"http://localhost:{port}", "--user", "bench",
                "--password", password, "--grants", CONNECTIONS, "--out", tokens)
        res = alternate([Target("mcpgate on PostgreSQL", port)], reps,
                        lambda _t: refresh_grants(bins, srv.proc.pid, tokens, seconds))
        srv.stop()
        servers.remove(srv)
        return res["mcpgate on PostgreSQL"]
    finally:
        psql(f"{server_url}/postgres", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


# ------------------------------------------------------------------ audit cost

def audit_cost(bins, reps, seconds, smoke):
    """Workload 1 on two mcpgate processes, the audit log on (the default:
    every tools/call is a record, batched into SQLite) and off
    (`--audit-store false`), alternating; returns the report section."""
    work = Path(tempfile.mkdtemp(prefix="mcpgate-bench-audit-"))
    servers = []
    try:
        targets = []
        for label, extra in (("audit on", []), ("audit off", ["--audit-store", "false"])):
            d = work / label.replace(" ", "-")
            d.mkdir()
            db = d / "mcpgate.db"
            password = new_password()
            add_user(bins, db, "bench", password)
            port = free_port()
            srv = Server("mcpgate " + label, mcpgate_cmd(bins, port, db) + extra, port, cwd=d,
                         ready_path="/healthz")
            servers.append(srv.start(work))
            setup = loadgen(bins, "setup", "--base", f"http://localhost:{port}", "--user",
                            "bench", "--password", password, "--grants", 1,
                            "--out", d / "tokens.json")
            t = Target("mcpgate, " + label, port, "/v1/ai/mcp", token=setup["access_token"])
            t.pid = srv.proc.pid
            t.open_session()
            t.check()
            wrk(t, 1 if smoke else 2)  # warm-up
            targets.append(t)
        res = alternate(targets, reps, lambda t: wrk(t, seconds))
    finally:
        for srv in servers:
            srv.stop()
        if not os.environ.get("KEEP_BENCH_WORK"):
            shutil.rmtree(work, ignore_errors=True)
    on, off = res["mcpgate, audit on"], res["mcpgate, audit off"]
    rps = [a["rps"] / b["rps"] for a, b in zip(on, off)]
    cpu = [a["cpu_us_per_req"] / b["cpu_us_per_req"] for a, b in zip(on, off)]
    out = [f"### Audit log cost: workload 1 with the audit log on and off, {CONNECTIONS} connections",
           "",
           rate_table(res, "mcpgate, audit off"),
           "",
           "| Ratio, audit on / off, per repetition | Median | Range |",
           "|---|---:|---:|",
           f"| Requests/s | {statistics.median(rps):.3f} | {min(rps):.3f} – {max(rps):.3f} |",
           f"| CPU per request | {statistics.median(cpu):.3f} | {min(cpu):.3f} – {max(cpu):.3f} |",
           ""]
    return "\n".join(out)


# ------------------------------------------------------------------ main


def main():
    global TLS
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True, type=Path)
    ap.add_argument("--smoke", action="store_true")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--seconds", type=int)
    ap.add_argument("--command", default="bench/run")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--json-dir", type=Path,
                    help="also write the run as <dir>/<date>-<commit>.json (bench/compare)")
    ap.add_argument("--postgres", metavar="URL",
                    help="also measure workload 3 on this PostgreSQL database (emptied first)")
    ap.add_argument("--audit", action="store_true",
                    help="only the audit log's cost: workload 1 with the audit log on and off")
    a = ap.parse_args()
    smoke = a.smoke
    reps = a.reps or (1 if smoke else 3)
    seconds = a.seconds or (2 if smoke else 10)
    counts = [100, 500] if smoke else [1000, 10000]
    bins = a.bin.resolve()
    if a.audit:
        try:
            print(audit_cost(bins, reps, seconds, smoke))
        except BenchError as e:
            log(f"FAILED: {e}")
            return 1
        return 0
    work = Path(tempfile.mkdtemp(prefix="mcpgate-bench-"))
    servers = []
    token = "bench_" + secrets.token_hex(16)
    ctx = {
        "smoke": smoke, "reps": reps, "seconds": seconds, "command": a.command,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(bins, cpu_model(), mem_total(), os.cpu_count()),
        "pinning": "servers on core 0, load generators on core 1 (taskset), sharing the machine"
        if cores() >= 2 and shutil.which("taskset") else "no pinning (fewer than 2 cores)",
        "versions": versions(smoke),
    }
    r = {"content_types": {}}

    def start(server):
        servers.append(server.start(work))
        return server

    try:
        # ---- calibration: the bare axum ceiling alone, before anything else
        # runs, so that runs on other days compare as ratios to it
        log("calibration: the bare axum ceiling alone")
        cport = free_port()
        ceiling = start(Server("ceiling", [str(bins / "mcpgate-bench-ceiling"), str(cport)],
                               cport))
        ct = Target("ceiling (bare axum)", cport, session=False)
        ct.pid = ceiling.proc.pid
        ct.check()
        wrk(ct, 1 if smoke else 2)  # warm-up
        ctx["calibration"] = alternate([ct], reps, lambda t: wrk(t, seconds))[ct.label]

        # ---- mcpgate, its user and tokens (a real OAuth flow)
        mdir = work / "mcpgate"
        mdir.mkdir()
        db = mdir / "mcpgate.db"
        password = new_password()
        add_user(bins, db, "bench", password)
        mport = free_port()
        base = f"http://localhost:{mport}"
        mg = start(Server("mcpgate", mcpgate_cmd(bins, mport, db), mport, cwd=mdir,
                          ready_path="/healthz"))
        tokens = work / "tokens.json"
        setup = loadgen(bins, "setup", "--base", base, "--user", "bench", "--password", password,
                        "--grants", CONNECTIONS, "--out", tokens)
        access = setup["access_token"]
        log(f"OAuth flow done: {setup['grants']} grants for client {setup['client_id']}")

        # ---- workload 2 first: tokens fresh from the flow, not yet cached
        log("workload 2: bearer check cost")
        w2 = []
        for i in range(reps):
            w2.append(loadgen(bins, "auth-cost", "--database-url", f"sqlite://{db}",
                              "--tokens", tokens, "--public-url", base,
                              "--iterations", 20000 if smoke else 500000))
            # New tokens for the next repetition's lookups.
            if i + 1 < reps:
                loadgen(bins, "setup", "--base", base, "--user", "bench", "--password", password,
                        "--grants", CONNECTIONS, "--out", work / f"tokens{i}.json")
                tokens_next = work / f"tokens{i}.json"
                data = json.loads(tokens_next.read_text())
                old = json.loads(tokens.read_text())
                old["access_tokens"] = data["access_tokens"]
                tokens.write_text(json.dumps(old))
            log(f"  rep {i + 1}/{reps}: cached {w2[-1]['cached_us']:.2f} µs, "
                f"lookup {w2[-1]['lookup_us']:.1f} µs")
        r["w2"] = w2

        # ---- workload 1
        log("workload 1: authenticated tools/call")
        t1 = [Target("mcpgate", mport, "/v1/ai/mcp", token=access),
              Target("mcpgate, stateless 2026-07-28", mport, "/v1/ai/mcp", token=access,
                     stateless=True)]
        if not smoke:
            tport, fport = free_port(), free_port()
            start(Server("ts-sdk", ["node", str(BENCH / "peers" / "ts-sdk.mjs"), str(tport), token],
                         tport, ready_path="/healthz"))
            start(Server("fastmcp", [str(BENCH / ".venv-fastmcp" / "bin" / "python"),
                                     str(BENCH / "peers" / "fastmcp_peer.py"), str(fport), token],
                         fport))
            t1 += [Target("TypeScript SDK", tport, token=token),
                   Target("FastMCP", fport, token=token)]
        t1.append(Target("ceiling (bare axum)", cport, session=False))
        by_port = {s.port: s for s in servers}
        for t in t1:
            t.pid = by_port[t.port].proc.pid
            t.open_session()
            r["content_types"][t.label] = t.check()
            wrk(t, 1 if smoke else 2)  # warm-up
        r["w1"] = alternate(t1, reps, lambda t: wrk(t, seconds))

        # ---- workload 3
        log("workload 3: refresh_token grants")

        r["w3"] = {"SQLite": alternate(
            [Target("mcpgate", mport)], reps,
            lambda _t: refresh_grants(bins, mg.proc.pid, tokens, seconds))["mcpgate"]}
        if a.postgres:
            ctx["postgres"] = postgres_settings(a.postgres)
            r["w3"]["PostgreSQL"] = refresh_on_postgres(bins, work, a.postgres, password, reps,
                                                        seconds, servers)

        # ---- workload 4
        log("workload 4: gateway to a stdio upstream")
        upstream = bins / "mcpgate-fixture-upstream"
        gdir = work / "gateway"
        gdir.mkdir()
        gdb = gdir / "mcpgate.db"
        (gdir / "mcpgate.toml").write_text(
            f'[[upstream]]\nname = "up"\ncommand = "{upstream}"\n')
        add_user(bins, gdb, "bench", password)
        gport = free_port()
        start(Server("mcpgate-gateway", mcpgate_cmd(bins, gport, gdb, gdir / "mcpgate.toml"),
                     gport, cwd=gdir, ready_path="/healthz"))
        gbase = f"http://localhost:{gport}"
        gsetup = loadgen(bins, "setup", "--base", gbase, "--user", "bench", "--password",
                         password, "--grants", 1, "--out", work / "gtokens.json")
        t4 = [Target("mcpgate → stdio", gport, "/v1/ai/mcp", tool="up_echo",
                     token=gsetup["access_token"])]
        if not smoke:
            sport, pport = free_port(), free_port()
            start(Server("supergateway", [
                "node", str(BENCH / "node_modules" / "supergateway" / "dist" / "index.js"),
                "--stdio", str(upstream), "--outputTransport", "streamableHttp", "--stateful",
                "--port", str(sport), "--streamableHttpPath", "/mcp", "--logLevel", "none"],
                sport))
            start(Server("mcp-proxy", [
                str(BENCH / ".venv-mcp-proxy" / "bin" / "mcp-proxy"), "--port", str(pport),
                "--host", "127.0.0.1", "--log-level", "WARNING", str(upstream)], pport))
            t4 += [Target("supergateway", sport), Target("mcp-proxy", pport)]
        by_port = {s.port: s for s in servers}
        for t in t4:
            t.pid = by_port[t.port].proc.pid
            t.open_session()
            r["content_types"][t.label] = t.check()
            wrk(t, 1 if smoke else 2)
        r["w4"] = alternate(t4, reps, lambda t: wrk(t, seconds))
        for s in list(servers):
            s.stop()
        servers.clear()

        # ---- workload 5: idle sessions, each kind on a fresh process
        log("workload 5: idle sessions and start-up")
        w5 = {"idle": {}, "startup": {}}
        for kind, label in (("streamable", "Streamable HTTP GET stream"),
                            ("sse", "legacy SSE stream")):
            s = start(Server("mcpgate-idle-" + kind, mcpgate_cmd(bins, mport, db), mport,
                             cwd=mdir, env=IDLE_ENV, ready_path="/healthz"))
            w5["idle"][label] = loadgen(bins, "idle", "--base", base, "--token", access,
                                        "--kind", kind, "--pid", s.proc.pid,
                                        "--counts", ",".join(map(str, counts)))
            for p in w5["idle"][label]["points"]:
                log(f"  {label}: {p['sessions']} sessions, {p['bytes_per_session']:.0f} B each")
            s.stop()
            servers.remove(s)
        # The same over HTTP/2 (native TLS, by ALPN), 190 sessions to a
        # connection as bench/w5_scale.py holds them: how a client reaching
        # mcpgate over HTTPS holds its sessions, and where a connection no
        # longer sets the floor (20 KB over HTTP/1.1, 1.35 KB a stream over
        # HTTP/2). Tokens are issued for the https resource.
        ca, cert, key = certificate(work / "tls")
        os.environ["MCPGATE_BENCH_CA"] = str(ca)
        tls_config = mdir / "tls.toml"
        tls_config.write_text(f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\n')
        TLS = ssl.create_default_context(cafile=str(ca))
        try:
            for kind, label in (("streamable", "Streamable HTTP GET stream, HTTP/2"),
                                ("sse", "legacy SSE stream, HTTP/2")):
                s = start(Server("mcpgate-idle-h2-" + kind,
                                 mcpgate_cmd(bins, mport, db, tls_config), mport, cwd=mdir,
                                 ready_path="/healthz"))
                hbase = f"https://localhost:{mport}"
                hsetup = loadgen(bins, "setup", "--base", hbase, "--user", "bench", "--password",
                                 password, "--grants", 1, "--out", work / f"h2-{kind}.json")
                w5["idle"][label] = loadgen(bins, "idle", "--base", hbase,
                                            "--token", hsetup["access_token"], "--kind", kind,
                                            "--pid", s.proc.pid, "--per-connection", 190,
                                            "--counts", ",".join(map(str, counts)))
                for p in w5["idle"][label]["points"]:
                    log(f"  {label}: {p['sessions']} sessions, "
                        f"{p['bytes_per_session']:.0f} B each")
                s.stop()
                servers.remove(s)
        finally:
            TLS = None
        # The floor: what an open event stream costs a bare axum server on
        # the same HTTP stack (bench/ceiling's GET /mcp, keep-alives only).
        fport = free_port()
        s = start(Server("ceiling-idle", [str(bins / "mcpgate-bench-ceiling"), str(fport)], fport))
        label = "bare axum event stream (the floor)"
        w5["idle"][label] = loadgen(bins, "idle", "--base", f"http://127.0.0.1:{fport}",
                                    "--token", "unused", "--kind", "bare", "--pid", s.proc.pid,
                                    "--counts", ",".join(map(str, counts)))
        for p in w5["idle"][label]["points"]:
            log(f"  {label}: {p['sessions']} streams, {p['bytes_per_session']:.0f} B each")
        s.stop()
        servers.remove(s)
        sport = free_port()
        runs = []
        for i in range(max(reps, 3)):
            runs.append(loadgen(bins, "startup", "--url", f"http://127.0.0.1:{sport}/healthz", "--",
                                *pin(0, mcpgate_cmd(bins, sport, db))))
        w5["startup"]["existing database"] = runs
        runs = []
        for i in range(max(reps, 3)):
            fresh = work / f"fresh{i}.db"
            runs.append(loadgen(bins, "startup", "--url", f"http://127.0.0.1:{sport}/healthz", "--",
                                *pin(0, mcpgate_cmd(bins, sport, fresh))))
        w5["startup"]["new database (migrations, first user's Argon2 hash)"] = runs
        for label, rr in w5["startup"].items():
            log(f"  start-up, {label}: {median(rr, 'startup_ms'):.1f} ms")
        r["w5"] = w5
    except BenchError as e:
        log(f"FAILED: {e}")
        for s in servers:
            if s.proc and s.proc.poll() is not None:
                log(f"{s.name} log: {s.tail()}")
        return 1
    finally:
        for s in servers:
            s.stop()
        if not os.environ.get("KEEP_BENCH_WORK"):
            shutil.rmtree(work, ignore_errors=True)

    text = report(ctx, r)
    if a.json_dir:
        a.json_dir.mkdir(parents=True, exist_ok=True)
        path = result_path(ctx, a.json_dir)
        data = {"context": ctx, "results": r}
        figures(data)  # every figure must be readable by bench/compare
        path.write_text(json.dumps(data, indent=1, default=str) + "\n")
        log(f"wrote {path}")
    if a.out:
        doc = a.out.read_text() if a.out.exists() else f"{BEGIN}\n{END}\n"
        if BEGIN not in doc or END not in doc:
            log(f"{a.out} lacks the markers {BEGIN} / {END}")
            return 1
        head, rest = doc.split(BEGIN, 1)
        _, tail = rest.split(END, 1)
        a.out.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
        log(f"wrote {a.out}")
    print(text)
    log("smoke: every workload ran" if smoke else "done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
