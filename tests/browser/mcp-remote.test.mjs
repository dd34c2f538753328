// mcp-remote (the stdio <-> remote bridge many desktop MCP clients use)
// against mcpgate: it discovers the authorization server, registers itself,
// opens the authorization URL through $BROWSER (our script drives headless
// Chromium through sign-in and consent to mcp-remote's own localhost
// callback), exchanges the code, and then bridges MCP over stdin/stdout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ISSUER, env } from './lib/harness.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PROXY = path.join(HERE, 'node_modules', 'mcp-remote', 'dist', 'proxy.js');
const OPENER = path.join(HERE, 'lib', 'open-browser.mjs');

test('mcp-remote signs in through $BROWSER and bridges initialize, tools/list and tools/call whoami', { timeout: 90_000 }, async () => {
  const user = env('BROWSER_TEST_REMOTE_USER');
  const tmp = await mkdtemp(path.join(tmpdir(), 'mcpgate-mcp-remote-'));
  const openLog = path.join(tmp, 'open-browser.jsonl');
  const wrapper = path.join(tmp, 'browser.sh');
  await writeFile(wrapper, `#!/bin/sh\nexec '${process.execPath}' '${OPENER}' "$@"\n`);
  await chmod(wrapper, 0o755);

  const childEnv = {
    ...process.env,
    BROWSER: wrapper,
    BROWSER_TEST_OPEN_LOG: openLog,
    MCP_REMOTE_CONFIG_DIR: path.join(tmp, 'config'),
    HOME: tmp, // nothing of mcp-remote's or Chromium's lands in the real home
  };
  // No desktop: xdg-open takes its generic path, which runs $BROWSER.
  for (const k of ['DISPLAY', 'WAYLAND_DISPLAY', 'XDG_CURRENT_DESKTOP', 'DESKTOP_SESSION', 'KDE_FULL_SESSION', 'GNOME_DESKTOP_SESSION_ID']) delete childEnv[k];

  const mcpUrl = new URL('/v1/ai/mcp', ISSUER()).href;
  // http://localhost needs no --allow-http (mcp-remote exempts loopback).
  const child = spawn(process.execPath, [PROXY, mcpUrl, '--transport', 'http-only'], {
    cwd: tmp, env: childEnv, stdio: ['pipe', 'pipe', 'pipe'],
  });
  const stderr = [];
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const established = new Promise((resolve, reject) => {
    createInterface({ input: child.stderr }).on('line', (line) => {
      stderr.push(line);
      if (/Proxy established successfully/.test(line)) resolve();
    });
    exited.then(({ code, signal }) => reject(new Error(`mcp-remote exited (${code ?? signal}) before the proxy was up`)));
  });
  const pending = new Map();
  createInterface({ input: child.stdout }).on('line', (line) => {
    let msg;
    try { msg = JSON.parse(line); } catch { return; }
    if (msg.id !== undefined && pending.has(msg.id)) pending.get(msg.id)(msg);
  });
  let nextId = 1;
  const request = (method, params) => {
    const id = nextId++;
    const answer = new Promise((resolve, reject) => {
      pending.set(id, resolve);
      setTimeout(() => reject(new Error(`no answer to ${method} within 15 s`)), 15_000).unref();
    });
    child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    return answer;
  };
  const notify = (method, params) => child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', method, params })}\n`);
  const context = () => `\nmcp-remote's stderr:\n${stderr.join('\n')}`;

  try {
    await Promise.race([
      established,
      new Promise((_, reject) => setTimeout(() => reject(new Error('mcp-remote did not come up within 60 s')), 60_000).unref()),
    ]).catch((e) => { throw new Error(`${e.message}${context()}`); });

    // What the browser script saw: sign-in page, consent page naming
    // mcp-remote's client, then mcp-remote's own callback page.
    // (mcp-remote may be up before the script has closed Chromium and written its report.)
    let reports = [];
    for (let i = 0; i < 100 && reports.length === 0; i++) {
      if (i) await new Promise((resolve) => setTimeout(resolve, 100));
      try {
        reports = (await readFile(openLog, 'utf8').catch(() => '')).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
      } catch { reports = []; } // a half-written line: read again
    }
    assert.equal(reports.length, 1, `the browser was opened once${context()}`);
    const [r] = reports;
    assert.ok(r.ok, `the browser script failed: ${r.error}`);
    const auth = new URL(r.url);
    assert.equal(auth.origin + auth.pathname, new URL('/v1/oauth/authorize', ISSUER()).href);
    assert.equal(auth.searchParams.get('code_challenge_method'), 'S256');
    assert.equal(auth.searchParams.get('resource'), mcpUrl);
    assert.equal(r.steps[0].heading, 'Sign in');
    assert.equal(r.steps[1].heading, 'Allow access?');
    assert.equal(r.steps[1].clientName, 'MCP CLI Proxy', 'the consent page names mcp-remote');
    const callback = new URL(r.callbackUrl);
    assert.equal(callback.href.split('?')[0], auth.searchParams.get('redirect_uri'), 'the browser landed on mcp-remote\'s callback');
    assert.ok(['localhost', '127.0.0.1'].includes(callback.hostname));
    assert.ok(callback.searchParams.get('code'));
    assert.equal(callback.searchParams.get('state'), auth.searchParams.get('state'));
    assert.equal(callback.searchParams.get('iss'), ISSUER());
    assert.match(r.callbackText, /Authorization successful/);

    // MCP over mcp-remote's stdin/stdout.
    const init = await request('initialize', {
      protocolVersion: '2025-06-18',
      capabilities: {},
      clientInfo: { name: 'mcpgate-browser-test', version: '0.0.0' },
    });
    assert.equal(init.error, undefined, JSON.stringify(init.error));
    assert.ok(init.result.serverInfo?.name, 'serverInfo.name');
    assert.ok(init.result.capabilities?.tools, 'tools capability');
    notify('notifications/initialized');

    const list = await request('tools/list', {});
    assert.equal(list.error, undefined, JSON.stringify(list.error));
    const names = list.result.tools.map((t) => t.name);
    assert.ok(names.includes('whoami'), `tools: ${names.join(', ')}`);

    const who = await request('tools/call', { name: 'whoami', arguments: {} });
    assert.equal(who.error, undefined, JSON.stringify(who.error));
    assert.equal(who.result.isError, false);
    const text = who.result.content.map((c) => c.text ?? '').join('\n');
    assert.match(text, new RegExp(`^You are ${user} `), text);
    assert.equal(who.result.structuredContent?.user, user);

    // The tokens went to MCP_REMOTE_CONFIG_DIR, not ~/.mcp-auth.
    const stored = await readdir(path.join(tmp, 'config'), { recursive: true });
    assert.ok(stored.some((f) => f.endsWith('_tokens.json')), `token file in MCP_REMOTE_CONFIG_DIR: ${stored.join(', ')}`);
  } finally {
    child.stdin.end();
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
    await rm(tmp, { recursive: true, force: true });
  }
});
