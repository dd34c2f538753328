#!/usr/bin/env bash
# The whole mcpgate OAuth flow with curl alone: register a client, sign in
# and approve by posting the forms, exchange the code, refresh.
#
#   MCPGATE_USER=admin MCPGATE_PASSWORD='...' bash docs/examples/oauth-flow.sh http://localhost:3333
#
# Needs: bash, curl, openssl, sed, grep, base64, tr. No jq.
set -euo pipefail

BASE=${1:-http://localhost:3333}
USERNAME=${MCPGATE_USER:?set MCPGATE_USER}
PASSWORD=${MCPGATE_PASSWORD:?set MCPGATE_PASSWORD}
REDIRECT_URI=${REDIRECT_URI:-http://127.0.0.1:8765/callback}
RESOURCE="$BASE/v1/ai/mcp"
JAR=$(mktemp); trap 'rm -f "$JAR"' EXIT

json_field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p"; }
hidden() { grep -o "name=\"$1\" value=\"[^\"]*\"" | head -1 | sed 's/.*value="\([^"]*\)"/\1/' | sed 's/&amp;/\&/g'; }
header() { tr -d '\r' | sed -n "s/^$1: //Ip"; }
urlencode() { local s=$1 out="" c i; for ((i=0; i<${#s}; i++)); do c=${s:i:1}; case $c in [a-zA-Z0-9.~_-]) out+=$c;; *) out+=$(printf '%%%02X' "'$c");; esac; done; printf '%s' "$out"; }

echo "1. Register a public client (RFC 7591)"
REG=$(curl -sS -X POST "$BASE/v1/oauth/register" -H 'Content-Type: application/json' -d "{
  \"client_name\": \"curl example\",
  \"redirect_uris\": [\"$REDIRECT_URI\"],
  \"grant_types\": [\"authorization_code\", \"refresh_token\"],
  \"response_types\": [\"code\"],
  \"scope\": \"mcp\",
  \"token_endpoint_auth_method\": \"none\"}")
CLIENT_ID=$(echo "$REG" | json_field client_id)
[ -n "$CLIENT_ID" ] || { echo "registration failed: $REG" >&2; exit 1; }
echo "   client_id=$CLIENT_ID"

echo "2. Make a PKCE verifier and its S256 challenge (RFC 7636)"
VERIFIER=$(openssl rand -base64 48 | tr '+/' '-_' | tr -d '=\n' | cut -c1-64)
CHALLENGE=$(printf '%s' "$VERIFIER" | openssl dgst -sha256 -binary | base64 | tr '+/' '-_' | tr -d '=\n')
STATE=$(openssl rand -hex 8)

QUERY="response_type=code&client_id=$CLIENT_ID&redirect_uri=$(urlencode "$REDIRECT_URI")&scope=mcp&state=$STATE&code_challenge=$CHALLENGE&code_challenge_method=S256&resource=$(urlencode "$RESOURCE")"

echo "3. Open the authorization URL: the sign-in page"
PAGE=$(curl -sS -c "$JAR" -b "$JAR" "$BASE/v1/oauth/authorize?$QUERY")
CSRF=$(echo "$PAGE" | hidden csrf_token)
[ -n "$CSRF" ] || { echo "no sign-in form: $PAGE" >&2; exit 1; }

echo "4. Sign in (the form re-posts the request with a CSRF token)"
LOGIN=$(curl -sS -o /dev/null -D - -c "$JAR" -b "$JAR" -X POST "$BASE/v1/oauth/authorize" \
  --data "$QUERY&action=login&csrf_token=$(urlencode "$CSRF")&username=$(urlencode "$USERNAME")&password=$(urlencode "$PASSWORD")")
BACK=$(echo "$LOGIN" | header location)
[ -n "$BACK" ] || { echo "sign-in failed (wrong password?)" >&2; exit 1; }

echo "5. The consent page: approve"
PAGE=$(curl -sS -D /tmp/mcpgate-consent-headers.$$ -c "$JAR" -b "$JAR" "$BASE$BACK")
LOCATION=$(header location < /tmp/mcpgate-consent-headers.$$); rm -f /tmp/mcpgate-consent-headers.$$
if [ -z "$LOCATION" ]; then
  CSRF=$(echo "$PAGE" | hidden csrf_token)
  APPROVE=$(curl -sS -o /dev/null -D - -c "$JAR" -b "$JAR" -X POST "$BASE/v1/oauth/authorize" \
    --data "$QUERY&action=consent&csrf_token=$(urlencode "$CSRF")&decision=approve")
  LOCATION=$(echo "$APPROVE" | header location)
fi
echo "   redirected to: ${LOCATION%%\?*}?code=..."
CODE=$(echo "$LOCATION" | sed -n 's/.*[?&]code=\([^&]*\).*/\1/p')
GOT_STATE=$(echo "$LOCATION" | sed -n 's/.*[?&]state=\([^&]*\).*/\1/p')
[ -n "$CODE" ] || { echo "no code in $LOCATION" >&2; exit 1; }
[ "$GOT_STATE" = "$STATE" ] || { echo "state mismatch" >&2; exit 1; }

echo "6. Exchange the code for tokens"
TOKENS=$(curl -sS -X POST "$BASE/v1/oauth/token" \
  --data-urlencode grant_type=authorization_code --data-urlencode "code=$CODE" \
  --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "client_id=$CLIENT_ID" \
  --data-urlencode "code_verifier=$VERIFIER" --data-urlencode "resource=$RESOURCE")
ACCESS=$(echo "$TOKENS" | json_field access_token)
REFRESH=$(echo "$TOKENS" | json_field refresh_token)
[ -n "$ACCESS" ] || { echo "token exchange failed: $TOKENS" >&2; exit 1; }
echo "   access_token=${ACCESS:0:8}... refresh_token=${REFRESH:0:9}..."

echo "7. Refresh (the refresh token rotates)"
NEW=$(curl -sS -X POST "$BASE/v1/oauth/token" \
  --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$REFRESH" \
  --data-urlencode "client_id=$CLIENT_ID")
NEW_ACCESS=$(echo "$NEW" | json_field access_token)
[ -n "$NEW_ACCESS" ] && [ "$NEW_ACCESS" != "$ACCESS" ] || { echo "refresh failed: $NEW" >&2; exit 1; }
echo "   new access_token=${NEW_ACCESS:0:8}..."
echo "OK: use it as  Authorization: Bearer $NEW_ACCESS"
