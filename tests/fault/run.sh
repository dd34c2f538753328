#!/usr/bin/env bash
# The fault test on PostgreSQL: two mcpgate instances on one database,
# refresh-token load on both, the database server restarted mid-load. The one
# entry point (scripts/test calls it):
#   1. builds mcpgate as `cargo test` does (or takes FAULT_MCPGATE_BIN);
#   2. creates a PRIVATE PostgreSQL server (initdb into a temporary
#      directory, a free port on 127.0.0.1, its socket in that directory; as
#      the `postgres` user when run as root, since initdb refuses root), so
#      that restarting it disturbs nobody else's tests;
#   3. starts instance A (which migrates and creates the admin), adds a user,
#      starts instance B; both have A's URL as public_url;
#   4. runs fault.mjs: tokens for 8 clients through the real OAuth flow,
#      refresh grants alternating between A and B, `pg_ctl restart -m fast`
#      after 3 s, then stop, 2 s down, start, 5 s more load; then checks the
#      refresh-token families with SQL, the clients' last tokens over HTTP,
#      that only 503s were seen and only during the outages, and that both
#      instances reconnected by themselves, LISTEN/NOTIFY included;
#   5. stops everything, removes the server and prints
#      `fault: N passed, N failed` (non-zero exit on any failure).
# Bounded: about 40 s after the build; every wait has a limit.
#
# Needs: cargo, node >= 20, PostgreSQL's server binaries
# (/usr/lib/postgresql/*/bin: initdb, pg_ctl, psql), runuser when run as root.
# Environment: FAULT_MCPGATE_BIN=path runs that binary instead of building
# one; KEEP_FAULT_WORK=1 keeps the logs.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
WORK=""
PGDATA=""
PIDS=()
SUMMARY_PRINTED=""

as_pg() { if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

cleanup() {
  local rc=$? pid
  for pid in "${PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [[ -n "$PGDATA" && -f "$PGDATA/postmaster.pid" ]]; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
  fi
  if [[ -z "$WORK" ]]; then :; elif [[ -n "${KEEP_FAULT_WORK:-}" || $rc -ne 0 ]]; then echo "fault: logs kept in $WORK"; else rm -rf "$WORK"; fi
  if [[ -z "$SUMMARY_PRINTED" ]]; then
    echo "fault: stopped early (exit $rc)"
    echo "fault: 0 passed, 1 failed"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

for tool in cargo node; do
  command -v "$tool" >/dev/null || { echo "fault: $tool is required but not installed" >&2; exit 1; }
done
PGBIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
[[ -x "$PGBIN/initdb" && -x "$PGBIN/pg_ctl" ]] || { echo "fault: PostgreSQL's server binaries are not installed (/usr/lib/postgresql/*/bin)" >&2; exit 1; }
if [[ $EUID -eq 0 ]]; then
  command -v runuser >/dev/null && id postgres >/dev/null 2>&1 || { echo "fault: as root, runuser and a postgres user are needed" >&2; exit 1; }
fi

# ---------------------------------------------------------------- 1. build
t=$(now)
if [[ -n "${FAULT_MCPGATE_BIN:-}" ]]; then
  # Absolute: the instances start in their own directories.
  MCPGATE="$(cd "$(dirname "$FAULT_MCPGATE_BIN")" && pwd)/$(basename "$FAULT_MCPGATE_BIN")"
else
  (cd "$ROOT" && cargo test --workspace --locked --no-run --quiet)
  TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
  [[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
  MCPGATE="$TARGET_DIR/debug/mcpgate"
fi
[[ -x "$MCPGATE" ]] || { echo "fault: no binary at $MCPGATE" >&2; exit 1; }
echo "fault: cargo build, as cargo test does ($(elapsed "$t"))"

# ---------------------------------------------------------------- 2. private PostgreSQL
t=$(now)
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mcpgate-fault.XXXXXX")"
chmod 755 "$WORK"
mkdir -p "$WORK/pg"
[[ $EUID -ne 0 ]] || chown postgres "$WORK/pg"
free_port() {
  node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
PG_PORT="$(free_port)"
PGDATA="$WORK/pg/data"
as_pg "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres -E UTF8 --no-sync >"$WORK/initdb.log" 2>&1 \
  || { cat "$WORK/initdb.log" >&2; exit 1; }
cat >>"$PGDATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$WORK/pg'
fsync = off
max_connections = 100
CONF
# `$PGCTL restart|stop|start`, for the driver.
PGCTL="$WORK/pgctl"
cat >"$PGCTL" <<SH
#!/usr/bin/env bash
set -euo pipefail
if [[ \$EUID -eq 0 ]]; then pg() { runuser -u postgres -- "\$@"; }; else pg() { "\$@"; }; fi
case "\$1" in
  start) pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$WORK/pg/server.log" -w -t 30 start >/dev/null ;;
  stop) pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w -t 30 stop >/dev/null ;;
  restart) pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$WORK/pg/server.log" -m fast -w -t 30 restart >/dev/null ;;
  *) echo "usage: \$0 start|stop|restart" >&2; exit 2 ;;
esac
SH
chmod 755 "$PGCTL"
"$PGCTL" start
PG_URL="postgres://postgres@127.0.0.1:$PG_PORT"
"$PGBIN/psql" "$PG_URL/postgres" -qAtXc "CREATE DATABASE mcpgate_fault" >/dev/null
DATABASE_URL="$PG_URL/mcpgate_fault"
echo "fault: private PostgreSQL $("$PGBIN/psql" "$DATABASE_URL" -qAtXc 'SHOW server_version') on 127.0.0.1:$PG_PORT ($(elapsed "$t"))"

# ---------------------------------------------------------------- 3. instances
t=$(now)
A_PORT="$(free_port)"
B_PORT="$(free_port)"
while [[ "$B_PORT" == "$A_PORT" ]]; do B_PORT="$(free_port)"; done
PUBLIC_URL="http://127.0.0.1:$A_PORT"
# The servers run with their own defaults: no MCPGATE_* setting from the caller.
server_env=(env)
while IFS= read -r name; do server_env+=(-u "$name"); done < <(compgen -e | grep '^MCPGATE_' || true)
server_env+=(MCPGATE_DATABASE_URL="$DATABASE_URL" MCPGATE_PUBLIC_URL="$PUBLIC_URL" RUST_LOG=info)

# start_instance NAME PORT: starts `mcpgate serve` in $WORK/NAME; sets
# STARTED_PID and STARTED_ADMIN_PASSWORD (empty unless it created the admin).
start_instance() {
  local name="$1" port="$2" dir="$WORK/$1"
  mkdir -p "$dir"
  (cd "$dir" && exec "${server_env[@]}" MCPGATE_INSTANCE_ID="$name" "$MCPGATE" serve --listen "127.0.0.1:$port" \
    >"$dir/server.out" 2>"$dir/server.err") &
  STARTED_PID=$!
  PIDS+=("$STARTED_PID")
  for _ in $(seq 1 300); do
    grep -q '^Press Ctrl-C to stop\.' "$dir/server.out" 2>/dev/null && break
    kill -0 "$STARTED_PID" 2>/dev/null || break
    sleep 0.05
  done
  if ! grep -q '^Press Ctrl-C to stop\.' "$dir/server.out" 2>/dev/null; then
    echo "fault: instance $name did not start" >&2
    cat "$dir/server.out" "$dir/server.err" >&2
    exit 1
  fi
  STARTED_ADMIN_PASSWORD="$(sed -n 's/^ *Password (shown only now): //p' "$dir/server.out" | head -n1)"
}
start_instance a "$A_PORT"
A_PID="$STARTED_PID"
USER_NAME="fault-user"
USER_PASSWORD="fa-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
(cd "$WORK" && printf '%s\n' "$USER_PASSWORD" | "${server_env[@]}" RUST_LOG=warn "$MCPGATE" user add "$USER_NAME" --password-stdin >/dev/null)
start_instance b "$B_PORT"
B_PID="$STARTED_PID"
echo "fault: instances a (127.0.0.1:$A_PORT) and b (127.0.0.1:$B_PORT) on the private server ($(elapsed "$t"))"

# ---------------------------------------------------------------- 4. load, restarts, checks
t=$(now)
set +e
FAULT_A="http://127.0.0.1:$A_PORT" FAULT_B="http://127.0.0.1:$B_PORT" FAULT_PUBLIC_URL="$PUBLIC_URL" \
  FAULT_USER="$USER_NAME" FAULT_PASSWORD="$USER_PASSWORD" FAULT_PGCTL="$PGCTL" FAULT_PSQL="$PGBIN/psql" \
  FAULT_DATABASE_URL="$DATABASE_URL" FAULT_A_LOG="$WORK/a/server.err" FAULT_B_LOG="$WORK/b/server.err" \
  timeout 150 node "$HERE/fault.mjs" | tee "$WORK/fault.out"
rc=${PIPESTATUS[0]}
set -e
summary="$(grep -E '^fault\.mjs: [0-9]+ passed, [0-9]+ failed$' "$WORK/fault.out" | tail -n1)"
p="$(sed -n 's/^fault\.mjs: \([0-9]*\) passed.*/\1/p' <<<"$summary")"
f="$(sed -n 's/.* \([0-9]*\) failed$/\1/p' <<<"$summary")"
[[ -n "$p" && -n "$f" ]] || { p=0; f=1; }
[[ $rc -eq 0 || $f -gt 0 ]] || f=1
for pid in "$A_PID" "$B_PID"; do kill -0 "$pid" 2>/dev/null || { echo "fault: an instance exited during the test"; f=$((f + 1)); }; done
if [[ $f -gt 0 ]]; then
  for n in a b; do echo "fault: the last lines of instance $n's log:"; tail -n 30 "$WORK/$n/server.err"; done
  echo "fault: PostgreSQL's log:"; tail -n 20 "$WORK/pg/server.log"
fi
echo "fault: load, restarts and checks ($(elapsed "$t"))"
SUMMARY_PRINTED=1
echo "fault: $p passed, $f failed"
[[ $f -eq 0 ]]
