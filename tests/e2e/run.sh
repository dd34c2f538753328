#!/usr/bin/env bash
# End-to-end tests of mcpgate with real clients. The one entry point
# (scripts/test calls it after the cargo tests):
#   1. installs the pinned npm packages (tests/e2e/package-lock.json): the
#      official TypeScript SDK, the conformance suite and a Node 22 binary
#      for it;
#   2. creates tests/e2e/.venv with the pinned official Python SDK
#      (tests/e2e/requirements.txt);
#      both steps are skipped while their lock file is unchanged (stamps in
#      tests/e2e/.deps/);
#   3. builds mcpgate (debug, same target dir as the cargo tests);
#   4. starts it in a fresh temporary directory on a free port, reads the
#      port and the first admin password from its banner, adds a second user;
#   5. runs the TypeScript SDK tests (node --test), the Python SDK tests and
#      the conformance scenarios against it;
#   6. stops it, and
#   7. prints `e2e: N passed, N failed` (non-zero exit on any failure).
#
# Needs: cargo, node >= 20 with npm, python3 (>= 3.10, with venv), curl.
# Network: the npm registry and PyPI, on the first run only.
set -euo pipefail
E2E="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$E2E/../.." && pwd)"
DEPS="$E2E/.deps"
RESULTS="$E2E/results"
PYTHON="${PYTHON:-python3}"
PASSED=0
FAILED=0
SUMMARY_PRINTED=""
WORK=""
SERVER_PID=""
cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [[ -z "$WORK" ]]; then :; elif [[ -n "${KEEP_E2E_WORK:-}" ]]; then echo "e2e: kept $WORK"; else rm -rf "$WORK"; fi
  if [[ -z "$SUMMARY_PRINTED" ]]; then
    echo "e2e: stopped early (exit $rc)"
    echo "e2e: $PASSED passed, $((FAILED + 1)) failed"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in cargo node npm "$PYTHON" curl; do
  command -v "$tool" >/dev/null || { echo "e2e: $tool is required but not installed" >&2; exit 1; }
done

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }
stamp_of() { { cat "$@"; } | sha256sum | cut -d' ' -f1; }

mkdir -p "$DEPS"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

# ---------------------------------------------------------------- 1. npm
t=$(now)
npm_stamp="$(stamp_of "$E2E/package-lock.json") node-$(node --version)"
if [[ -d "$E2E/node_modules" && "$(cat "$DEPS/npm.stamp" 2>/dev/null)" == "$npm_stamp" ]]; then
  echo "e2e: npm packages up to date ($(elapsed "$t"))"
else
  rm -f "$DEPS/npm.stamp"
  (cd "$E2E" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$npm_stamp" > "$DEPS/npm.stamp"
  echo "e2e: npm ci ($(elapsed "$t"))"
fi

# ---------------------------------------------------------------- 2. Python venv
t=$(now)
py_stamp="$(stamp_of "$E2E/requirements.txt") $("$PYTHON" --version 2>&1)"
if [[ -x "$E2E/.venv/bin/python" && "$(cat "$DEPS/pip.stamp" 2>/dev/null)" == "$py_stamp" ]]; then
  echo "e2e: Python venv up to date ($(elapsed "$t"))"
else
  rm -f "$DEPS/pip.stamp"
  rm -rf "$E2E/.venv"
  "$PYTHON" -m venv "$E2E/.venv"
  "$E2E/.venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$E2E/requirements.txt"
  echo "$py_stamp" > "$DEPS/pip.stamp"
  echo "e2e: pip install ($(elapsed "$t"))"
fi

# ---------------------------------------------------------------- 3. build
# `cargo test --no-run` builds target/debug/mcpgate exactly as the cargo tests
# do (same features, dev-dependencies unified), so after scripts/test's
# `cargo test` this is a no-op; a plain `cargo build` would recompile tokio
# and everything above it without the dev-only features.
t=$(now)
(cd "$ROOT" && cargo test --workspace --locked --no-run --quiet)
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
MCPGATE="$TARGET_DIR/debug/mcpgate"
[[ -x "$MCPGATE" ]] || { echo "e2e: no binary at $MCPGATE" >&2; exit 1; }
echo "e2e: cargo build, as cargo test does ($(elapsed "$t"))"

# ---------------------------------------------------------------- 4. start mcpgate
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mcpgate-e2e.XXXXXX")"

# The server runs with its own defaults: no MCPGATE_* setting from the caller.
server_env=(env)
while IFS= read -r name; do server_env+=(-u "$name"); done < <(compgen -e | grep '^MCPGATE_' || true)

t=$(now)
(cd "$WORK" && exec "${server_env[@]}" "$MCPGATE" serve --listen 127.0.0.1:0 \
  >"$WORK/server.out" 2>"$WORK/server.err") &
SERVER_PID=$!
for _ in $(seq 1 300); do
  grep -q '^Press Ctrl-C to stop\.' "$WORK/server.out" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.05
done
if ! grep -q '^Press Ctrl-C to stop\.' "$WORK/server.out" 2>/dev/null; then
  echo "e2e: mcpgate did not start" >&2
  cat "$WORK/server.out" "$WORK/server.err" >&2
  exit 1
fi
PORT="$(sed -n 's/^mcpgate .* listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$WORK/server.out" | head -n1)"
ADMIN_PASSWORD="$(sed -n 's/^ *Password (shown only now): //p' "$WORK/server.out" | head -n1)"
[[ -n "$PORT" && -n "$ADMIN_PASSWORD" ]] || { echo "e2e: cannot read the port or the admin password from the banner:" >&2; cat "$WORK/server.out" >&2; exit 1; }

USER_NAME="e2e-user"
USER_PASSWORD="e2e-$(openssl rand -hex 12 2>/dev/null || echo "pw-$RANDOM$RANDOM$RANDOM")"
(cd "$WORK" && printf '%s\n' "$USER_PASSWORD" | "${server_env[@]}" "$MCPGATE" user add "$USER_NAME" --password-stdin >/dev/null)

export E2E_ISSUER="http://localhost:$PORT"
export E2E_ADDR="http://127.0.0.1:$PORT"
export E2E_USER="$USER_NAME" E2E_PASSWORD="$USER_PASSWORD" E2E_ADMIN_PASSWORD="$ADMIN_PASSWORD"
export E2E_RESULTS="$RESULTS"
issuer="$(curl -fsS "$E2E_ADDR/.well-known/oauth-authorization-server" | sed -n 's/.*"issuer":"\([^"]*\)".*/\1/p')"
[[ "$issuer" == "$E2E_ISSUER" ]] || { echo "e2e: issuer is \"$issuer\", expected $E2E_ISSUER" >&2; exit 1; }
echo "e2e: mcpgate listening on $E2E_ADDR, issuer $E2E_ISSUER, users admin and $USER_NAME ($(elapsed "$t"))"

# ---------------------------------------------------------------- 5. suites
# count SUITE LOG: adds the `N passed, N failed` (or the node runner's
# `# pass N` / `# fail N`) of LOG; a suite that printed no count is 1 failure.
count() {
  local suite="$1" log="$2" p f
  p="$(sed -n 's/^# pass \([0-9]*\)$/\1/p; s/^[a-z]*: \([0-9]*\) passed, [0-9]* failed$/\1/p' "$log" | tail -n1)"
  f="$(sed -n 's/^# fail \([0-9]*\)$/\1/p; s/^[a-z]*: [0-9]* passed, \([0-9]*\) failed$/\1/p' "$log" | tail -n1)"
  if [[ -z "$p" || -z "$f" ]]; then
    echo "e2e: $suite printed no result count: counted as 1 failure"
    p=0 f=1
  fi
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
}

t=$(now)
echo "e2e: TypeScript SDK (@modelcontextprotocol/sdk)"
set +e
(cd "$E2E" && node --test --test-timeout=120000 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$RESULTS/sdk-ts.tap" \
  ./*.test.mjs)
rc=$?
set -e
count "TypeScript SDK" "$RESULTS/sdk-ts.tap"
[[ $rc -eq 0 ]] || grep -q '^# fail [1-9]' "$RESULTS/sdk-ts.tap" || { echo "e2e: node --test exited $rc"; FAILED=$((FAILED + 1)); }
echo "e2e: TypeScript SDK suite ($(elapsed "$t"))"

t=$(now)
echo "e2e: Python SDK (mcp)"
set +e
(cd "$E2E" && .venv/bin/python sdk_py_test.py) 2>&1 | tee "$RESULTS/sdk-py.log"
rc=${PIPESTATUS[0]}
set -e
count "Python SDK" "$RESULTS/sdk-py.log"
[[ $rc -eq 0 ]] || grep -q '^python: [0-9]* passed, [1-9]' "$RESULTS/sdk-py.log" || { echo "e2e: the Python suite exited $rc"; FAILED=$((FAILED + 1)); }
echo "e2e: Python SDK suite ($(elapsed "$t"))"

t=$(now)
echo "e2e: conformance suite (@modelcontextprotocol/conformance)"
set +e
(cd "$E2E" && node conformance.mjs) 2>&1 | tee "$RESULTS/conformance.log"
rc=${PIPESTATUS[0]}
set -e
count "conformance" "$RESULTS/conformance.log"
[[ $rc -eq 0 ]] || grep -q '^conformance: [0-9]* passed, [1-9]' "$RESULTS/conformance.log" || { echo "e2e: the conformance runner exited $rc"; FAILED=$((FAILED + 1)); }
echo "e2e: conformance suite ($(elapsed "$t"))"

# ---------------------------------------------------------------- 6, 7
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "e2e: mcpgate exited during the tests:"; cat "$WORK/server.err"
  FAILED=$((FAILED + 1))
elif [[ $FAILED -gt 0 ]]; then
  echo "e2e: the last lines of mcpgate's log (all of it: tests/e2e/results/mcpgate.log):"
  tail -n 40 "$WORK/server.err"
fi
cp "$WORK/server.err" "$RESULTS/mcpgate.log" 2>/dev/null || true
SUMMARY_PRINTED=1
echo "e2e: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
