// Two mcpgate instances (a, b) on one PostgreSQL database behind nginx
// (round robin, no stickiness), started by tests/cluster/run.sh. The
// official TypeScript SDK runs the whole OAuth flow and MCP calls through
// nginx; each instance's log (one line per request, with its instance id)
// shows which instance served what. The tests run in order; the last one
// kills instance b.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { MemoryOAuthProvider, driveLogin, env, REDIRECT_URI } from '../e2e/lib/oauth.mjs';

const URL_LB = env('CLUSTER_URL');
const ADDR = { a: env('CLUSTER_A_ADDR'), b: env('CLUSTER_B_ADDR') };
const LOG = { a: env('CLUSTER_A_LOG'), b: env('CLUSTER_B_LOG') };
const MCP = new URL('/v1/ai/mcp', URL_LB);

// ---------------------------------------------------------------- logs

/** Where each instance's log ends now. */
function mark() {
  return { a: statSync(LOG.a).size, b: statSync(LOG.b).size };
}

/** The requests each instance logged since `since`: {instance, method, path, status}. */
function served(since) {
  const out = [];
  for (const name of ['a', 'b']) {
    const text = readFileSync(LOG[name]).subarray(since[name]).toString();
    for (const line of text.split('\n')) {
      const m = line.match(/http\{instance=(\S+) method=(\S+) path=(\S+)\}.*finished processing request.*status=(\d+)/);
      if (m) {
        assert.equal(m[1], name, `instance ${name}'s log names itself`);
        out.push({ instance: m[1], method: m[2], path: m[3], status: Number(m[4]) });
      }
    }
  }
  return out;
}

function instancesOf(rows, pred) {
  return new Set(rows.filter(pred).map((r) => r.instance));
}

// ---------------------------------------------------------------- OAuth without an SDK

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

/** Registration, PKCE, sign-in and consent through nginx, up to the code. */
async function authorize(username, password) {
  const reg = await fetch(new URL('/v1/oauth/register', URL_LB), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'mcpgate-cluster-test',
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
    }),
  });
  assert.equal(reg.status, 201, await reg.clone().text());
  const { client_id } = await reg.json();
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const auth = new URL('/v1/oauth/authorize', URL_LB);
  auth.search = new URLSearchParams({
    response_type: 'code', client_id, redirect_uri: REDIRECT_URI, code_challenge: challenge,
    code_challenge_method: 'S256', state: 'st', scope: 'mcp', resource: MCP.href,
  }).toString();
  const back = await driveLogin(auth, username, password);
  return { client_id, verifier, code: back.code };
}

async function exchange({ client_id, verifier, code }) {
  const tok = await fetch(new URL('/v1/oauth/token', URL_LB), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, client_id,
      code_verifier: verifier, resource: MCP.href,
    }),
  });
  assert.equal(tok.status, 200, await tok.clone().text());
  return { client_id, ...(await tok.json()) };
}

async function obtain(username, password) {
  return exchange(await authorize(username, password));
}

async function toolsStatus(base, token) {
  const r = await fetch(new URL('/tools', base), { headers: { authorization: `Bearer ${token}` } });
  await r.arrayBuffer();
  return r.status;
}

/** Polls until `check()` is true or `ms` have passed; returns whether it became true. */
async function within(ms, check) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await check()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

function psql(sql) {
  const r = spawnSync('psql', [env('DATABASE_URL'), '-qAtc', sql], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').filter(Boolean);
}

function cli(...args) {
  const r = spawnSync(env('CLUSTER_MCPGATE'), args, {
    encoding: 'utf8',
    env: { ...process.env, MCPGATE_DATABASE_URL: env('DATABASE_URL'), MCPGATE_PUBLIC_URL: URL_LB },
    input: args.includes('--password-stdin') ? 'a-long-enough-password\n' : undefined,
  });
  assert.equal(r.status, 0, `mcpgate ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

// ---------------------------------------------------------------- the SDK flow

/** The SDK's whole flow through nginx: 401, discovery, DCR, sign-in, token. */
async function sdkConnect(make, url, username, password) {
  const provider = new MemoryOAuthProvider('mcpgate-cluster-ts');
  let client = new Client({ name: 'mcpgate-cluster-ts', version: '0.0.0' });
  let transport = make(url, provider);
  await assert.rejects(client.connect(transport), (e) => e instanceof UnauthorizedError);
  await client.close().catch(() => {});
  const back = await driveLogin(provider.pendingAuthUrl, username, password);
  await transport.finishAuth(back.code);
  assert.ok(provider.tokens()?.access_token);
  client = new Client({ name: 'mcpgate-cluster-ts', version: '0.0.0' });
  transport = make(url, provider);
  await client.connect(transport);
  return { client, transport, provider };
}

async function callsAndRefresh(client, provider, username) {
  const { tools } = await client.listTools();
  assert.ok(tools.some((t) => t.name === 'whoami'));
  for (let i = 0; i < 4; i++) {
    const who = await client.callTool({ name: 'whoami', arguments: {} });
    assert.equal(who.structuredContent?.user, username, JSON.stringify(who));
    const echo = await client.callTool({ name: 'echo', arguments: { text: `call ${i}` } });
    assert.ok(JSON.stringify(echo.content).includes(`call ${i}`), JSON.stringify(echo));
  }
  // A spoiled access token: 401, the SDK refreshes (on whichever instance) and retries.
  const first = provider.tokens();
  provider._tokens = { ...first, access_token: 'spoiled-' + first.access_token };
  const again = await client.callTool({ name: 'whoami', arguments: {} });
  assert.equal(again.structuredContent?.user, username);
  assert.notEqual(provider.tokens().refresh_token, first.refresh_token, 'refresh token rotated');
  await client.ping();
}

test('Streamable HTTP through nginx: one OAuth flow and one session, served by both instances', async () => {
  const since = mark();
  const { client, transport, provider } = await sdkConnect(
    (url, authProvider) => new StreamableHTTPClientTransport(url, { authProvider }),
    MCP, env('CLUSTER_USER'), env('CLUSTER_PASSWORD'));
  const session = transport.sessionId;
  assert.ok(session, 'a session id');
  try {
    await callsAndRefresh(client, provider, env('CLUSTER_USER'));
    assert.equal(transport.sessionId, session, 'the same session throughout');
  } finally {
    await client.close();
  }
  const rows = served(since);
  const oauth = instancesOf(rows, (r) => r.path.startsWith('/v1/oauth/') || r.path.startsWith('/.well-known/'));
  assert.deepEqual([...oauth].sort(), ['a', 'b'], 'both instances served steps of the OAuth flow');
  const mcp = instancesOf(rows, (r) => r.method === 'POST' && r.path === '/v1/ai/mcp' && r.status === 200);
  assert.deepEqual([...mcp].sort(), ['a', 'b'], 'both instances served requests of the one session');
  assert.ok(!rows.some((r) => r.path === '/v1/ai/mcp' && r.status === 404), 'no request of the session got 404');
});

test('legacy SSE through nginx: messages posted to the instance without the stream reach it', async () => {
  const since = mark();
  const { client, provider } = await sdkConnect(
    (url, authProvider) => new SSEClientTransport(url, { authProvider }),
    new URL('/sse', URL_LB), 'admin', env('CLUSTER_ADMIN_PASSWORD'));
  try {
    await callsAndRefresh(client, provider, 'admin');
  } finally {
    await client.close();
  }
  const rows = served(since);
  const streams = rows.filter((r) => r.method === 'GET' && r.path === '/sse' && r.status === 200);
  assert.equal(streams.length, 1, `one event stream: ${JSON.stringify(streams)}`);
  const holder = streams[0].instance;
  const posts = rows.filter((r) => r.method === 'POST' && r.path === '/messages/' && r.status === 202);
  assert.ok(posts.some((r) => r.instance !== holder), `messages accepted by the instance without the stream: ${JSON.stringify(posts)}`);
  assert.ok(posts.some((r) => r.instance === holder), 'and by the one holding it');
  assert.ok(!rows.some((r) => r.path === '/messages/' && r.status === 404), 'no message was refused as unknown');
});

/** A stateless 2026-07-28 tools/call to `base`; the JSON-RPC message. */
async function call2026(base, token, name, extra = {}) {
  const r = await fetch(new URL('/v1/ai/mcp', base), {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`, 'content-type': 'application/json',
      accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2026-07-28',
      'mcp-method': 'tools/call', 'mcp-name': name,
    },
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'tools/call',
      params: {
        name, arguments: {}, ...extra,
        _meta: {
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientInfo': { name: 'mcpgate-cluster-test', version: '0' },
          'io.modelcontextprotocol/clientCapabilities': { elicitation: {} },
        },
      },
    }),
  });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  const data = text.split('\n').find((l) => l.startsWith('data:'));
  return JSON.parse(data ? data.slice(5) : text);
}

test('a 2026-07-28 call waiting for input on one instance continues through the other', { skip: !process.env.CLUSTER_FIXTURE }, async () => {
  const { access_token: token } = await obtain(env('CLUSTER_USER'), env('CLUSTER_PASSWORD'));
  const tool = 'fx_test_input_required_result_multi_round';
  const accept = (content) => ({ action: 'accept', content });
  // Round 1 on a: the upstream call waits there.
  const r1 = await call2026(ADDR.a, token, tool);
  assert.equal(r1.result?.resultType, 'input_required', JSON.stringify(r1));
  // Round 2 on b, which hands the answer to a (b alone has no such call:
  // without the hand-over this is an error).
  const r2 = await call2026(ADDR.b, token, tool, {
    inputResponses: { step1: accept({ name: 'Ann' }) }, requestState: r1.result.requestState,
  });
  assert.ok(r2.result?.inputRequests?.step2, JSON.stringify(r2));
  // Round 3 through nginx, wherever it lands.
  const r3 = await call2026(URL_LB, token, tool, {
    inputResponses: { step2: accept({ color: 'teal' }) }, requestState: r2.result.requestState,
  });
  assert.equal(r3.result?.content?.[0]?.text, 'Hello Ann, your favorite color is teal', JSON.stringify(r3));
});

test('a token revoked through one instance is refused by the other within a second', async () => {
  const tok = await obtain(env('CLUSTER_USER'), env('CLUSTER_PASSWORD'));
  // Both instances have checked (and cached) the token.
  for (const base of [ADDR.a, ADDR.b, ADDR.a, ADDR.b]) assert.equal(await toolsStatus(base, tok.access_token), 200);

  const r = await fetch(new URL('/v1/oauth/revoke', ADDR.a), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: tok.access_token, client_id: tok.client_id }),
  });
  assert.equal(r.status, 200);
  assert.equal(await toolsStatus(ADDR.a, tok.access_token), 401, 'refused at once where it was revoked');
  assert.ok(await within(1000, async () => (await toolsStatus(ADDR.b, tok.access_token)) === 401),
    'refused by the other instance within a second');

  // Removing a user with the CLI (another process) reaches both instances too.
  cli('user', 'add', 'doomed', '--password-stdin');
  const doomed = await obtain('doomed', 'a-long-enough-password');
  for (const base of [ADDR.a, ADDR.b]) assert.equal(await toolsStatus(base, doomed.access_token), 200);
  cli('user', 'remove', 'doomed');
  for (const base of [ADDR.a, ADDR.b]) {
    assert.ok(await within(1000, async () => (await toolsStatus(base, doomed.access_token)) === 401),
      `the removed user's token is refused by ${base} within a second`);
  }
});

test('killing instance b mid-run: nothing stored is lost and a keeps serving', async () => {
  const user = env('CLUSTER_USER');
  const tok = await obtain(user, env('CLUSTER_PASSWORD'));
  const client = new Client({ name: 'mcpgate-cluster-kill', version: '0.0.0' });
  const transport = new StreamableHTTPClientTransport(MCP, {
    requestInit: { headers: { authorization: `Bearer ${tok.access_token}` } },
  });
  await client.connect(transport);
  for (let i = 0; i < 2; i++) {
    assert.equal((await client.callTool({ name: 'whoami', arguments: {} })).structuredContent?.user, user);
  }
  // A flow in progress: signed in and consented, the code not yet exchanged.
  const pending = await authorize(user, env('CLUSTER_PASSWORD'));
  const before = {
    users: psql('SELECT id FROM users ORDER BY id'),
    clients: psql('SELECT client_id FROM clients ORDER BY client_id'),
    access: psql('SELECT token_hash FROM access_tokens ORDER BY token_hash'),
    refresh: psql('SELECT token_hash FROM refresh_tokens ORDER BY token_hash'),
    codes: psql('SELECT code_hash FROM auth_codes ORDER BY code_hash'),
  };

  process.kill(Number(env('CLUSTER_B_PID')), 'SIGKILL');
  // Dead means connections are refused. While the kernel tears the process
  // down, its listening socket may still accept a connection and then reset
  // it; nginx does not retry a POST that was sent (a 502), so wait for that
  // window to pass.
  await within(5000, async () => {
    try { await fetch(new URL('/healthz', ADDR.b)); return false; } catch (e) { return e?.cause?.code === 'ECONNREFUSED'; }
  });
  const since = mark();

  // The session goes on (a restores it if b held it), the pending code is
  // exchanged, refresh works, a new SDK flow runs from scratch.
  for (let i = 0; i < 4; i++) {
    assert.equal((await client.callTool({ name: 'whoami', arguments: {} })).structuredContent?.user, user);
  }
  await client.close();
  const late = await exchange(pending);
  const refreshed = await fetch(new URL('/v1/oauth/token', URL_LB), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: late.refresh_token, client_id: late.client_id }),
  });
  assert.equal(refreshed.status, 200, await refreshed.clone().text());
  assert.equal(await toolsStatus(URL_LB, tok.access_token), 200, 'a token issued before the kill still works');
  const fresh = await sdkConnect(
    (url, authProvider) => new StreamableHTTPClientTransport(url, { authProvider }),
    MCP, user, env('CLUSTER_PASSWORD'));
  await callsAndRefresh(fresh.client, fresh.provider, user);
  await fresh.client.close();

  const after = {
    users: psql('SELECT id FROM users ORDER BY id'),
    clients: psql('SELECT client_id FROM clients ORDER BY client_id'),
    access: psql('SELECT token_hash FROM access_tokens ORDER BY token_hash'),
    refresh: psql('SELECT token_hash FROM refresh_tokens ORDER BY token_hash'),
    codes: psql('SELECT code_hash FROM auth_codes ORDER BY code_hash'),
  };
  for (const k of Object.keys(before)) {
    const missing = before[k].filter((x) => !after[k].includes(x));
    assert.deepEqual(missing, [], `no ${k} lost`);
  }
  const rows = served(since);
  assert.ok(rows.length > 10, 'a served the requests after the kill');
  assert.ok(rows.every((r) => r.instance === 'a'), 'only a served after the kill');
  assert.ok(!rows.some((r) => r.status >= 500), `no server errors after the kill: ${JSON.stringify(rows.filter((r) => r.status >= 500))}`);
});
