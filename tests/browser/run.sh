#!/usr/bin/env bash
# Real-browser tests of mcpgate's sign-in and consent pages, sign-in through
# a real OpenID Connect provider, and the mcp-remote stdio bridge. The one
# entry point (scripts/test calls it):
#   1. installs Debian's Chromium (apt-get) when /usr/bin/chromium is missing;
#   2. installs the pinned npm packages (tests/browser/package-lock.json:
#      playwright-core, mcp-remote, oidc-provider); skipped while the lock file and the Node
#      version are unchanged (stamp in tests/browser/.deps/);
#   3. uses the already built target/debug/mcpgate (builds nothing: the
#      caller runs cargo first);
#   4. starts it in a fresh temporary directory on a free port, reads the
#      port from its banner, adds the users alice (an admin) and bob; then starts
#      oidc-provider (tests/browser/oidc-provider.mjs) and a second mcpgate
#      that offers it as an identity provider (federation.test.mjs), and a
#      third with two `auth = "oauth"` upstreams, the first mcpgate
#      (connections.test.mjs);
#   5. runs the tests (node --test): sign-in, consent, deny, CSRF, layout at
#      phone and desktop widths, screenshots into docs/images/, mcp-remote;
#   6. stops it, and
#   7. prints `browser: N passed, N failed` (non-zero exit on any failure).
#
# Needs: node >= 20 with npm, curl, and either /usr/bin/chromium or root (or
# sudo) with apt-get. Network: Debian's and the npm registry, on the first run.
# KEEP_BROWSER_WORK=1 keeps the server's temporary directory.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
DEPS="$HERE/.deps"
RESULTS="$HERE/results"
CHROMIUM=/usr/bin/chromium
PASSED=0
FAILED=0
SUMMARY_PRINTED=""
WORK=""
SERVER_PID=""
FED_PID=""
OP_PID=""
CONN_PID=""
cleanup() {
  local rc=$?
  for pid in "$SERVER_PID" "$FED_PID" "$OP_PID" "$CONN_PID"; do
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  if [[ -z "$WORK" ]]; then :; elif [[ -n "${KEEP_BROWSER_WORK:-}" ]]; then echo "browser: kept $WORK"; else rm -rf "$WORK"; fi
  if [[ -z "$SUMMARY_PRINTED" ]]; then
    echo "browser: stopped early (exit $rc)"
    echo "browser: $PASSED passed, $((FAILED + 1)) failed"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in node npm curl; do
  command -v "$tool" >/dev/null || { echo "browser: $tool is required but not installed" >&2; exit 1; }
done

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1fs", b - a }'; }

mkdir -p "$DEPS"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

# ---------------------------------------------------------------- 1. Chromium
t=$(now)
if [[ -x "$CHROMIUM" ]]; then
  echo "browser: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM") ($(elapsed "$t"))"
else
  SUDO=()
  if [[ "$(id -u)" != 0 ]]; then
    command -v sudo >/dev/null || { echo "browser: $CHROMIUM is missing; install Debian's chromium package (apt-get install chromium) as root" >&2; exit 1; }
    SUDO=(sudo)
  fi
  echo "browser: $CHROMIUM is missing: running apt-get update && apt-get install -y chromium"
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium
  [[ -x "$CHROMIUM" ]] || { echo "browser: apt-get installed chromium but $CHROMIUM is still missing" >&2; exit 1; }
  echo "browser: installed $("$CHROMIUM" --version 2>/dev/null) ($(elapsed "$t"))"
fi

# ---------------------------------------------------------------- 2. npm
t=$(now)
npm_stamp="$(sha256sum < "$HERE/package-lock.json" | cut -d' ' -f1) node-$(node --version)"
if [[ -d "$HERE/node_modules" && "$(cat "$DEPS/npm.stamp" 2>/dev/null)" == "$npm_stamp" ]]; then
  echo "browser: npm packages up to date ($(elapsed "$t"))"
else
  rm -f "$DEPS/npm.stamp"
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
  echo "$npm_stamp" > "$DEPS/npm.stamp"
  echo "browser: npm ci ($(elapsed "$t"))"
fi

# ---------------------------------------------------------------- 3. the binary
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
[[ "$TARGET_DIR" = /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
MCPGATE="$TARGET_DIR/debug/mcpgate"
if [[ ! -x "$MCPGATE" ]]; then
  echo "browser: no mcpgate binary at $MCPGATE; build it first (cargo build, or cargo test --workspace --no-run as scripts/test does)" >&2
  exit 1
fi

# ---------------------------------------------------------------- 4. start mcpgate
WORK="$(mktemp -d "${TMPDIR:-/tmp}/mcpgate-browser.XXXXXX")"

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
  echo "browser: mcpgate did not start" >&2
  cat "$WORK/server.out" "$WORK/server.err" >&2
  exit 1
fi
PORT="$(sed -n 's/^mcpgate .* listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$WORK/server.out" | head -n1)"
[[ -n "$PORT" ]] || { echo "browser: cannot read the port from the banner:" >&2; cat "$WORK/server.out" >&2; exit 1; }

random_password() { echo "pw-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"; }
ALICE_PASSWORD="$(random_password)"
BOB_PASSWORD="$(random_password)"
(cd "$WORK" && printf '%s\n' "$ALICE_PASSWORD" | "${server_env[@]}" "$MCPGATE" user add alice --password-stdin >/dev/null)
(cd "$WORK" && printf '%s\n' "$BOB_PASSWORD" | "${server_env[@]}" "$MCPGATE" user add bob --password-stdin >/dev/null)
# alice may use the admin console (admin.test.mjs); bob may not.
(cd "$WORK" && "${server_env[@]}" "$MCPGATE" user admin alice on >/dev/null)

export BROWSER_TEST_ISSUER="http://localhost:$PORT"
export BROWSER_TEST_USER=alice BROWSER_TEST_PASSWORD="$ALICE_PASSWORD"
export BROWSER_TEST_REMOTE_USER=bob BROWSER_TEST_REMOTE_PASSWORD="$BOB_PASSWORD"
export BROWSER_TEST_CHROMIUM="$CHROMIUM"
export BROWSER_TEST_SCREENSHOTS="$ROOT/docs/images"
export BROWSER_TEST_RESULTS="$RESULTS"
issuer="$(curl -fsS "http://127.0.0.1:$PORT/.well-known/oauth-authorization-server" | sed -n 's/.*"issuer":"\([^"]*\)".*/\1/p')"
[[ "$issuer" == "$BROWSER_TEST_ISSUER" ]] || { echo "browser: issuer is \"$issuer\", expected $BROWSER_TEST_ISSUER" >&2; exit 1; }
echo "browser: mcpgate listening on 127.0.0.1:$PORT, issuer $issuer, users alice and bob ($(elapsed "$t"))"

# ------------------------------------------- 4b. oidc-provider + a 2nd mcpgate
# A real OpenID Connect provider (npm oidc-provider, tests/browser/oidc-provider.mjs)
# and a second mcpgate that offers it on its sign-in page (federation.test.mjs).
# mcpgate's port is chosen first: the provider must know the callback URL.
t=$(now)
FED_WORK="$WORK/federation"
mkdir -p "$FED_WORK"
FED_PORT="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
OP_CLIENT_SECRET="op-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
printf '%s\n' "$OP_CLIENT_SECRET" > "$FED_WORK/op-client-secret"
(cd "$HERE" && exec env OP_REDIRECT_URI="http://localhost:$FED_PORT/oauth/callback" \
  OP_CLIENT_ID=mcpgate-browser OP_CLIENT_SECRET="$OP_CLIENT_SECRET" \
  node oidc-provider.mjs >"$FED_WORK/op.out" 2>"$FED_WORK/op.err") &
OP_PID=$!
for _ in $(seq 1 200); do
  grep -q '^oidc-provider listening on ' "$FED_WORK/op.out" 2>/dev/null && break
  kill -0 "$OP_PID" 2>/dev/null || break
  sleep 0.05
done
OP_ISSUER="$(sed -n 's/^oidc-provider listening on //p' "$FED_WORK/op.out" | head -n1)"
[[ -n "$OP_ISSUER" ]] || { echo "browser: oidc-provider did not start" >&2; cat "$FED_WORK/op.out" "$FED_WORK/op.err" >&2; exit 1; }
cat > "$FED_WORK/mcpgate.toml" <<TOML
listen = "127.0.0.1:$FED_PORT"

[[identity_provider]]
id = "testop"
kind = "oidc"
display_name = "Test OP"
issuer = "$OP_ISSUER"
client_id = "mcpgate-browser"
client_secret_file = "op-client-secret"
TOML
(cd "$FED_WORK" && exec "${server_env[@]}" "$MCPGATE" serve >"$FED_WORK/server.out" 2>"$FED_WORK/server.err") &
FED_PID=$!
for _ in $(seq 1 300); do
  grep -q '^Press Ctrl-C to stop\.' "$FED_WORK/server.out" 2>/dev/null && break
  kill -0 "$FED_PID" 2>/dev/null || break
  sleep 0.05
done
if ! grep -q '^Press Ctrl-C to stop\.' "$FED_WORK/server.out" 2>/dev/null; then
  echo "browser: the second mcpgate (identity provider) did not start" >&2
  cat "$FED_WORK/server.out" "$FED_WORK/server.err" >&2
  exit 1
fi
export BROWSER_TEST_FED_ISSUER="http://localhost:$FED_PORT"
export BROWSER_TEST_OP_ISSUER="$OP_ISSUER"
echo "browser: oidc-provider at $OP_ISSUER, mcpgate with it at $BROWSER_TEST_FED_ISSUER ($(elapsed "$t"))"

# ------------------------------------- 4c. a gateway with two oauth upstreams
# A third mcpgate whose two `auth = "oauth"` upstreams (files, calendar) are
# the first mcpgate (connections.test.mjs). Its public URL is
# http://127.0.0.1:<port>, another cookie host than the first's
# http://localhost:<port>, so one browser keeps both sign-ins. Its client at
# the first mcpgate is registered here (RFC 7591) and configured as
# oauth_client_id.
t=$(now)
CONN_WORK="$WORK/connections"
mkdir -p "$CONN_WORK"
CONN_PORT="$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')"
CONN_ISSUER="http://127.0.0.1:$CONN_PORT"
CONN_CLIENT_ID="$(curl -fsS -H 'content-type: application/json' \
  -d "{\"client_name\":\"mcpgate connections\",\"redirect_uris\":[\"$CONN_ISSUER/oauth/upstream/callback\"],\"token_endpoint_auth_method\":\"none\",\"grant_types\":[\"authorization_code\",\"refresh_token\"],\"response_types\":[\"code\"]}" \
  "http://127.0.0.1:$PORT/v1/oauth/register" | sed -n 's/.*"client_id":"\([^"]*\)".*/\1/p')"
[[ -n "$CONN_CLIENT_ID" ]] || { echo "browser: registering the connections gateway's client failed" >&2; exit 1; }
{
  printf 'listen = "127.0.0.1:%s"\npublic_url = "%s"\n' "$CONN_PORT" "$CONN_ISSUER"
  for name in files calendar; do
    printf '\n[[upstream]]\nname = "%s"\nurl = "%s/v1/ai/mcp"\nauth = "oauth"\nisolation = "per_user"\noauth_client_id = "%s"\n' \
      "$name" "$BROWSER_TEST_ISSUER" "$CONN_CLIENT_ID"
  done
} > "$CONN_WORK/mcpgate.toml"
(cd "$CONN_WORK" && printf '%s\n' "$ALICE_PASSWORD" | "${server_env[@]}" "$MCPGATE" user add alice --password-stdin >/dev/null)
(cd "$CONN_WORK" && exec "${server_env[@]}" "$MCPGATE" serve >"$CONN_WORK/server.out" 2>"$CONN_WORK/server.err") &
CONN_PID=$!
for _ in $(seq 1 300); do
  grep -q '^Press Ctrl-C to stop\.' "$CONN_WORK/server.out" 2>/dev/null && break
  kill -0 "$CONN_PID" 2>/dev/null || break
  sleep 0.05
done
if ! grep -q '^Press Ctrl-C to stop\.' "$CONN_WORK/server.out" 2>/dev/null; then
  echo "browser: the third mcpgate (oauth upstreams) did not start" >&2
  cat "$CONN_WORK/server.out" "$CONN_WORK/server.err" >&2
  exit 1
fi
export BROWSER_TEST_CONN_ISSUER="$CONN_ISSUER"
echo "browser: mcpgate with oauth upstreams at $CONN_ISSUER ($(elapsed "$t"))"

# ---------------------------------------------------------------- 5. tests
t=$(now)
set +e
(cd "$HERE" && node --test --test-concurrency=1 --test-timeout=120000 \
  --test-reporter=spec --test-reporter-destination=stdout \
  --test-reporter=tap --test-reporter-destination="$RESULTS/browser.tap" \
  ./*.test.mjs)
rc=$?
set -e
PASSED="$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$RESULTS/browser.tap" | tail -n1)"
FAILED="$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$RESULTS/browser.tap" | tail -n1)"
if [[ -z "$PASSED" || -z "$FAILED" ]]; then
  echo "browser: node --test printed no result count: counted as 1 failure"
  PASSED=0 FAILED=1
fi
[[ $rc -eq 0 ]] || [[ $FAILED -gt 0 ]] || { echo "browser: node --test exited $rc"; FAILED=$((FAILED + 1)); }
echo "browser: tests ($(elapsed "$t"))"

# ---------------------------------------------------------------- 6, 7
if ! kill -0 "$SERVER_PID" 2>/dev/null; then
  echo "browser: mcpgate exited during the tests:"; cat "$WORK/server.err"
  FAILED=$((FAILED + 1))
elif [[ $FAILED -gt 0 ]]; then
  echo "browser: the last lines of mcpgate's log (all of it: tests/browser/results/mcpgate.log):"
  tail -n 40 "$WORK/server.err"
fi
cp "$WORK/server.err" "$RESULTS/mcpgate.log" 2>/dev/null || true
cp "$FED_WORK/server.err" "$RESULTS/mcpgate-federation.log" 2>/dev/null || true
cp "$FED_WORK/op.err" "$RESULTS/oidc-provider.log" 2>/dev/null || true
cp "$CONN_WORK/server.err" "$RESULTS/mcpgate-connections.log" 2>/dev/null || true
SUMMARY_PRINTED=1
echo "browser: $PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
