# Sourced by scripts/test: makes sure a PostgreSQL server the tests can use
# answers, and exports where it is.
#
# The cargo tests (MCPGATE_TEST_POSTGRES_URL) and tests/cluster (CLUSTER_PG)
# need a server where the user `postgres` connects over TCP without a
# password and may create databases. In this order:
#   1. MCPGATE_TEST_POSTGRES_URL set by the caller: used as it is;
#   2. a server at 127.0.0.1:5432 that lets `postgres` in without a
#      password (a developer machine, CI): used;
#   3. the local Debian cluster installed but stopped: started
#      (pg_ctlcluster), then step 2 again;
#   4. otherwise a private server for the tests: Debian's `postgresql`
#      package is installed with apt-get when its server binaries are
#      missing; a cluster is initialised once in
#      /var/tmp/mcpgate-test-postgres-<uid> (or MCPGATE_TEST_POSTGRES_DIR;
#      trust authentication, loopback only; owned by the `postgres` user when
#      run as root, since initdb refuses root) and started on port 55432 (or
#      TEST_POSTGRES_PORT); it is stopped when scripts/test exits.
# MCPGATE_TEST_POSTGRES=private skips steps 2 and 3 (to try step 4 on a
# machine that has a server).
# shellcheck shell=bash

pg_for_tests_ok() { # URL
  command -v psql >/dev/null && psql "$1" -qAtXc 'SELECT 1' >/dev/null 2>&1
}

pg_for_tests() {
  if [[ -n "${MCPGATE_TEST_POSTGRES_URL:-}" ]]; then
    return 0
  fi
  local shared=postgres://postgres@127.0.0.1:5432
  if [[ "${MCPGATE_TEST_POSTGRES:-}" != private ]]; then
    if pg_for_tests_ok "$shared/postgres"; then
      pg_for_tests_database "$shared"
      return 0
    fi
    if command -v pg_ctlcluster >/dev/null; then
      local version
      for version in /etc/postgresql/*/; do
        [[ -d "$version" ]] && pg_ctlcluster --skip-systemctl-redirect "$(basename "$version")" main start 2>/dev/null || true
      done
      local _
      for _ in $(seq 1 50); do pg_for_tests_ok "$shared/postgres" && break; sleep 0.2; done
      if pg_for_tests_ok "$shared/postgres"; then
        pg_for_tests_database "$shared"
        return 0
      fi
    fi
  fi
  pg_for_tests_private
}

# Creates the database `test` (the default administration database of the
# cargo tests) when missing, and exports the URLs.
pg_for_tests_database() { # BASE_URL
  local base="$1"
  if ! psql "$base/postgres" -qAtXc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
    psql "$base/postgres" -qAtXc 'CREATE DATABASE test' >/dev/null
  fi
  export MCPGATE_TEST_POSTGRES_URL="$base/test"
  export CLUSTER_PG="$base"
}

pg_for_tests_as_pg() { if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_for_tests_private() {
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  if [[ ! -x "$bin/initdb" ]]; then
    echo "scripts/test: installing PostgreSQL (Debian's postgresql package)" >&2
    local sudo=""
    [[ $EUID -eq 0 ]] || sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null \
      || { echo "scripts/test: could not install PostgreSQL; install it, or set MCPGATE_TEST_POSTGRES_URL" >&2; return 1; }
    bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)"
  fi
  local data port base
  data="${MCPGATE_TEST_POSTGRES_DIR:-/var/tmp/mcpgate-test-postgres-$(id -u)}"
  port="${TEST_POSTGRES_PORT:-55432}"
  base="postgres://postgres@127.0.0.1:$port"
  if [[ ! -f "$data/PG_VERSION" ]]; then
    echo "scripts/test: initialising a PostgreSQL cluster for the tests in $data" >&2
    rm -rf "$data" && mkdir -p "$data"
    if [[ $EUID -eq 0 ]]; then chown postgres "$data"; fi
    pg_for_tests_as_pg "$bin/initdb" -D "$data" -A trust -U postgres -E UTF8 --no-sync >"$data.initdb.log" 2>&1 \
      || { cat "$data.initdb.log" >&2; return 1; }
  fi
  if ! pg_for_tests_ok "$base/postgres"; then
    # The socket directory: the data directory itself (/var/run/postgresql
    # may not exist or not be writable without the Debian cluster).
    pg_for_tests_as_pg "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
      -o "-p $port -c listen_addresses=127.0.0.1 -k $data -c fsync=off -c max_connections=300" start >/dev/null \
      || { tail -n 20 "$data/server.log" >&2; return 1; }
    PG_FOR_TESTS_STOP="$bin/pg_ctl -D $data -m fast -w stop"
    trap 'pg_for_tests_as_pg $PG_FOR_TESTS_STOP >/dev/null 2>&1 || true' EXIT
  fi
  export PATH="$bin:$PATH"
  pg_for_tests_database "$base"
  echo "scripts/test: PostgreSQL for the tests at 127.0.0.1:$port ($data)" >&2
}
