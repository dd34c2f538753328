// Per-user upstream OAuth (issue #19) against a server nobody here wrote:
// the official TypeScript SDK's example server `simpleStreamableHttp`
// with `--oauth` (npm @modelcontextprotocol/sdk), which runs the SDK's demo
// authorization server next to it (dynamic registration, PKCE, an
// auto-approving authorize endpoint, no refresh tokens, no revocation).
// mcpgate fronts it as `auth = "oauth"` upstream `sdk`:
//
// - before connecting, a user sees only `sdk_connect`, and calling it
//   returns the one-time connect link (the client declared no URL-mode
//   elicitation);
// - the link, opened in a scripted browser, signs in to mcpgate, goes to
//   the demo authorization server (registered with it by DCR, found by
//   RFC 9728/8414 discovery from the example server's 401) and back to
//   mcpgate's callback, which shows the "Connected" page;
// - then the example server's own tools appear for that user and
//   `sdk_greet` reaches it with that user's token;
// - a second user, not connected, still sees only `sdk_connect` and cannot
//   call `sdk_greet` (the first user's connection is not shared);
// - Disconnect on the connections page removes the connection: the tools
//   go back to `sdk_connect`.
//
// Environment (set by run.sh): E2E_MCPGATE, the mcpgate binary.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { Browser, env, obtainToken, parseForm, submit } from './lib/oauth.mjs';

// The example as the package ships it (its `exports` do not map examples).
const EXAMPLE = fileURLToPath(new URL(
  './node_modules/@modelcontextprotocol/sdk/dist/esm/examples/server/simpleStreamableHttp.js',
  import.meta.url,
));

const children = [];
let dir;
let upstreamUrl;
let issuer;
let password;
const BOB_PASSWORD = 'correct horse battery staple for bob';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Spawns a server and resolves with its stdout once `ready` matches it. */
function start(cmd, args, options, ready) {
  const child = spawn(cmd, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${cmd} did not start:\n${out}\n${err}`)), 20_000);
    child.stdout.on('data', (d) => {
      out += d;
      if (ready.test(out)) { clearTimeout(timer); resolve(out); }
    });
    child.on('exit', (code) => { clearTimeout(timer); reject(new Error(`${cmd} exited (${code}):\n${out}\n${err}`)); });
  });
}

before(async () => {
  const mcpgate = env('E2E_MCPGATE');
  const [mcpPort, authPort] = [await freePort(), await freePort()];
  upstreamUrl = `http://localhost:${mcpPort}/mcp`;
  await start(process.execPath, [EXAMPLE, '--oauth'], {
    env: { ...process.env, MCP_PORT: String(mcpPort), MCP_AUTH_PORT: String(authPort) },
  }, /MCP Streamable HTTP Server listening/);

  dir = mkdtempSync(join(tmpdir(), 'mcpgate-e2e-upstream-oauth-'));
  writeFileSync(join(dir, 'mcpgate.toml'), [
    '[[upstream]]',
    'name = "sdk"',
    `url = "${upstreamUrl}"`,
    'auth = "oauth"',
    'isolation = "per_user"',
    '',
  ].join('\n'));
  const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MCPGATE_')));
  const add = spawnSync(mcpgate, ['user', 'add', 'bob', '--password-stdin'], {
    cwd: dir, env: childEnv, input: `${BOB_PASSWORD}\n`, encoding: 'utf8',
  });
  assert.equal(add.status, 0, `mcpgate user add bob: ${add.stderr}`);
  const out = await start(mcpgate, ['serve', '--listen', '127.0.0.1:0'], { cwd: dir, env: childEnv },
    /^Press Ctrl-C to stop\./m);
  const port = out.match(/listening on 127\.0\.0\.1:(\d+)/)?.[1];
  assert.ok(port, `port in the banner:\n${out}`);
  issuer = `http://localhost:${port}`;
  // bob was the first user, so the banner shows no generated password; the
  // operator's account is added now.
  password = 'correct horse battery staple for alice';
  const alice = spawnSync(mcpgate, ['user', 'add', 'alice', '--password-stdin'], {
    cwd: dir, env: childEnv, input: `${password}\n`, encoding: 'utf8',
  });
  assert.equal(alice.status, 0, `mcpgate user add alice: ${alice.stderr}`);
});

after(() => {
  for (const c of children) c.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const text = (result) => (result.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');

async function session(username, userPassword) {
  const resource = `${issuer}/v1/ai/mcp`;
  const { access_token } = await obtainToken({ issuer, resource, username, password: userPassword });
  const client = new Client({ name: 'mcpgate-e2e-upstream-oauth', version: '0.0.0' });
  await client.connect(new StreamableHTTPClientTransport(new URL(resource), {
    requestInit: { headers: { authorization: `Bearer ${access_token}` } },
  }));
  return client;
}

const names = async (client) => (await client.listTools()).tools.map((t) => t.name).filter((n) => n.startsWith('sdk_')).sort();

/** GETs `url` in `browser`, following redirects; returns the last response. */
async function follow(browser, url, hops = 6) {
  let u = new URL(url);
  for (let i = 0; i < hops; i++) {
    const res = await browser.fetch(u);
    if (res.status !== 302 && res.status !== 303) return { res, url: u };
    await res.arrayBuffer();
    u = new URL(res.headers.get('location'), u);
  }
  throw new Error(`too many redirects from ${url}`);
}

test('the TypeScript SDK example server with --oauth, connected per user through mcpgate', { timeout: 90_000 }, async () => {
  const alice = await session('alice', password);
  const bob = await session('bob', BOB_PASSWORD);
  try {
    assert.deepEqual(await names(alice), ['sdk_connect'], 'not connected: the connect tool only');

    // The connect tool answers with the link (no URL-mode elicitation declared).
    const connect = await alice.callTool({ name: 'sdk_connect', arguments: {} });
    assert.ok(!connect.isError, JSON.stringify(connect));
    const link = text(connect).split(/\s+/).find((w) => w.includes('/connect/sdk?'));
    assert.ok(link?.startsWith(issuer), `a connect link of mcpgate in: ${text(connect)}`);

    // The browser: mcpgate's sign-in first, then the demo authorization
    // server (auto-approving), then mcpgate's callback.
    const browser = new Browser();
    let { res, url } = await follow(browser, link);
    assert.equal(res.status, 200);
    const login = parseForm(await res.text(), url);
    res = await submit(browser, login, { username: 'alice', password }, url);
    assert.equal(res.status, 303, 'signed in, back to the connect link');
    await res.arrayBuffer();
    const seen = [];
    let u = new URL(res.headers.get('location'), url);
    for (let i = 0; i < 6; i++) {
      seen.push(u.href);
      res = await browser.fetch(u);
      if (res.status !== 302 && res.status !== 303) break;
      await res.arrayBuffer();
      u = new URL(res.headers.get('location'), u);
    }
    const authorize = seen.map((s) => new URL(s)).find((s) => s.pathname === '/authorize');
    assert.ok(authorize, `went through the demo authorization server: ${seen.join(' -> ')}`);
    assert.equal(authorize.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(authorize.searchParams.get('resource'), upstreamUrl, 'RFC 8707: the resource is the upstream MCP URL');
    assert.ok(seen.some((s) => s.startsWith(`${issuer}/oauth/upstream/callback?`)), `back at mcpgate's callback: ${seen.join(' -> ')}`);
    assert.equal(res.status, 200);
    const page = await res.text();
    assert.match(page, /Connected to sdk/);

    // The example server's own tools, for alice only.
    const tools = await names(alice);
    assert.ok(tools.includes('sdk_greet'), `the upstream's tools after connecting: ${tools}`);
    assert.ok(!tools.includes('sdk_connect'), `${tools}`);
    const greet = await alice.callTool({ name: 'sdk_greet', arguments: { name: 'alice via mcpgate' } });
    assert.ok(!greet.isError, JSON.stringify(greet));
    assert.equal(text(greet), 'Hello, alice via mcpgate!');

    // bob has not connected: alice's connection is not his.
    assert.deepEqual(await names(bob), ['sdk_connect']);
    await assert.rejects(bob.callTool({ name: 'sdk_greet', arguments: { name: 'bob' } }), /sdk is not connected for this user/);

    // Disconnect on the connections page.
    ({ res, url } = await follow(browser, `${issuer}/connections`));
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /Connected/);
    const form = parseForm(html, url);
    res = await submit(browser, form, { action: 'disconnect', upstream: 'sdk' }, url);
    assert.ok([200, 303].includes(res.status), `disconnect -> ${res.status}`);
    await res.arrayBuffer();
    assert.deepEqual(await names(alice), ['sdk_connect'], 'disconnected: the connect tool again');
  } finally {
    await alice.close().catch(() => {});
    await bob.close().catch(() => {});
  }
});
