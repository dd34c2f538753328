// Step-up authorization (MCP 2025-11-25, "Scope Challenge Handling") with
// the official TypeScript SDK clients, v1 (@modelcontextprotocol/sdk) and
// v2 (@modelcontextprotocol/client), against an mcpgate of its own: an
// upstream `fs` (the fixture upstream) with `scopes = ["files:write"]`.
//
// Each client signs in with the scope of the 401 challenge (`mcp`), calls
// `fs_echo`, gets 403 insufficient_scope naming "files:write mcp", and its
// transport re-authorizes with that scope on its own: it asks the app to
// open the authorization URL (UnauthorizedError, as on the first sign-in);
// the consent is approved headless; the retried call succeeds with a token
// carrying both scopes.
//
// SDK v1 steps up only without a refresh token: with one it refreshes
// (same scope), gets the same 403 and gives up ("Server returned 403 after
// trying upscoping"); its client here registers without the refresh_token
// grant. SDK v2 takes the union of the scopes and skips the refresh when
// the union is wider (forceReauthorization), so its client keeps
// refresh tokens.
//
// Environment (set by run.sh): E2E_MCPGATE, the mcpgate binary; the fixture
// upstream is the mcpgate-fixture-upstream next to it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Client as ClientV1 } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as TransportV1 } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError as UnauthorizedV1 } from '@modelcontextprotocol/sdk/client/auth.js';
import {
  Client as ClientV2,
  StreamableHTTPClientTransport as TransportV2,
  UnauthorizedError as UnauthorizedV2,
} from '@modelcontextprotocol/client';
import { MemoryOAuthProvider, driveLogin, env } from './lib/oauth.mjs';

let server;
let dir;
let issuer;
let password;

before(async () => {
  const mcpgate = env('E2E_MCPGATE');
  const fixture = join(dirname(mcpgate), 'mcpgate-fixture-upstream');
  dir = mkdtempSync(join(tmpdir(), 'mcpgate-e2e-scopes-'));
  writeFileSync(join(dir, 'mcpgate.toml'), [
    '[[scope]]',
    'name = "files:write"',
    'description = "Change files through the fs upstream"',
    '',
    '[[upstream]]',
    'name = "fs"',
    `command = ${JSON.stringify(fixture)}`,
    'scopes = ["files:write"]',
    '',
  ].join('\n'));
  const childEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MCPGATE_')));
  server = spawn(mcpgate, ['serve', '--listen', '127.0.0.1:0'], { cwd: dir, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  server.stderr.on('data', (d) => { err += d; });
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`mcpgate did not start:\n${out}\n${err}`)), 20_000);
    server.stdout.on('data', (d) => {
      out += d;
      if (/^Press Ctrl-C to stop\./m.test(out)) { clearTimeout(timer); resolve(); }
    });
    server.on('exit', (code) => { clearTimeout(timer); reject(new Error(`mcpgate exited (${code}):\n${out}\n${err}`)); });
  });
  const port = out.match(/listening on 127\.0\.0\.1:(\d+)/)?.[1];
  password = out.match(/^ *Password \(shown only now\): (.*)$/m)?.[1]?.trim();
  assert.ok(port && password, `port and admin password in the banner:\n${out}`);
  issuer = `http://localhost:${port}`;
});

after(() => {
  server?.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const text = (result) => (result.content ?? []).filter((c) => c.type === 'text').map((c) => c.text).join('\n');
// A scope as a sorted set, without offline_access (SDK v2 adds it when the
// authorization server offers it, SEP-2207).
const scopeSet = (s) => (s ?? '').split(' ').filter((t) => t && t !== 'offline_access').sort().join(' ');

/** Signs in (first authorization), then steps up on a call of fs_echo. */
async function stepUp({ Client, Transport, Unauthorized, provider, finish }) {
  const url = new URL('/v1/ai/mcp', issuer);
  let client = new Client({ name: 'mcpgate-e2e-scopes', version: '0.0.0' });
  let transport = new Transport(url, { authProvider: provider });
  await assert.rejects(client.connect(transport), (e) => e instanceof Unauthorized);
  await client.close().catch(() => {});
  let authUrl = provider.pendingAuthUrl;
  assert.equal(scopeSet(authUrl.searchParams.get('scope')), 'mcp', 'the first sign-in asks for the scope of the 401 challenge');
  await finish(transport, await driveLogin(authUrl, 'admin', password));
  assert.equal(scopeSet(provider.tokens().scope), 'mcp');

  client = new Client({ name: 'mcpgate-e2e-scopes', version: '0.0.0' });
  transport = new Transport(url, { authProvider: provider });
  await client.connect(transport);
  try {
    // The base scope is enough for the built-in tools.
    const who = await client.callTool({ name: 'whoami', arguments: {} });
    assert.ok(!who.isError, JSON.stringify(who));
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'fs_echo'), 'the scoped upstream\'s tools are listed');

    // 403 insufficient_scope: the transport re-authorizes by itself with
    // the challenge's scope and hands the app the authorization URL.
    provider.pendingAuthUrl = undefined;
    await assert.rejects(
      client.callTool({ name: 'fs_echo', arguments: { text: 'stepped up' } }),
      (e) => e instanceof Unauthorized,
    );
    authUrl = provider.pendingAuthUrl;
    assert.ok(authUrl, 'the SDK asked to open the authorization URL again');
    assert.equal(scopeSet(authUrl.searchParams.get('scope')), 'files:write mcp');
    await finish(transport, await driveLogin(authUrl, 'admin', password));
    assert.equal(scopeSet(provider.tokens().scope), 'files:write mcp');

    // The retried call succeeds.
    const echo = await client.callTool({ name: 'fs_echo', arguments: { text: 'stepped up' } });
    assert.ok(!echo.isError, JSON.stringify(echo));
    assert.equal(text(echo), 'stepped up');
  } finally {
    await client.close().catch(() => {});
  }
}

test('step-up: TypeScript SDK v1 re-authorizes on 403 insufficient_scope', { timeout: 60_000 }, async () => {
  const provider = new MemoryOAuthProvider('mcpgate-e2e-scopes-v1');
  // SDK v1 refreshes instead of re-authorizing when it holds a refresh token.
  provider._clientMetadata.grant_types = ['authorization_code'];
  await stepUp({
    Client: ClientV1,
    Transport: TransportV1,
    Unauthorized: UnauthorizedV1,
    provider,
    finish: (transport, back) => transport.finishAuth(back.code),
  });
});

test('step-up: TypeScript SDK v2 re-authorizes on 403 insufficient_scope, refresh tokens and all', { timeout: 60_000 }, async () => {
  const provider = new MemoryOAuthProvider('mcpgate-e2e-scopes-v2');
  await stepUp({
    Client: ClientV2,
    Transport: TransportV2,
    Unauthorized: UnauthorizedV2,
    provider,
    finish: (transport, back) => transport.finishAuth(back.url.searchParams),
  });
  assert.ok(provider.tokens().refresh_token, 'v2 kept its refresh token through the step-up');
});
