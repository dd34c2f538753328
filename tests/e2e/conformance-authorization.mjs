// Runs the authorization-server scenarios of the official MCP conformance
// suite (`conformance authorization`, the newest release: a pre-release,
// installed as the npm alias `conformance-next`) against the direct server:
// `authorization-server-metadata-endpoint` and `authorization-code-grant`.
//
// The code-grant scenario prints an authorization URL and waits for a person
// to sign in: here lib/oauth.mjs signs in and approves consent by posting
// mcpgate's forms, then delivers the final redirect to the suite's own
// callback server (http://127.0.0.1:PORT/callback), as a browser would. The
// client is a public one (`none`), registered first through dynamic client
// registration with that callback as its redirect URI.
//
// Environment (set by run.sh): E2E_ISSUER, E2E_USER, E2E_PASSWORD,
// E2E_RESULTS. Prints `conformance-authorization: N passed, N failed`,
// one per check the suite reports (a WARNING counts as a failure: the only
// one the suite has, "client_id_metadata_document_supported", is something
// mcpgate does advertise).
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { driveLogin, env } from './lib/oauth.mjs';
import { NODE22 } from './lib/suite.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const SUITE_NEXT = join(HERE, 'node_modules/conformance-next/dist/index.js');
const TIMEOUT_MS = 90_000;

const issuer = env('E2E_ISSUER');
const results = join(process.env.E2E_RESULTS ?? join(HERE, 'results'), 'conformance-authorization');
mkdirSync(results, { recursive: true });

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const port = await freePort();
const redirectUri = `http://127.0.0.1:${port}/callback`;
const reg = await fetch(new URL('/v1/oauth/register', issuer), {
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: JSON.stringify({
    client_name: 'MCP conformance (authorization server scenarios)',
    redirect_uris: [redirectUri],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
  }),
});
if (reg.status !== 201) throw new Error(`register -> ${reg.status}: ${await reg.text()}`);
const { client_id: clientId } = await reg.json();

const args = [
  SUITE_NEXT, 'authorization', '--url', issuer, '--client-id', clientId,
  '--resource', new URL('/v1/ai/mcp', issuer).href, '-p', String(port), '-o', results,
];
const started = Date.now();
const child = spawn(NODE22, args, {
  stdio: ['ignore', 'pipe', 'pipe'],
  env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
});
let output = '';
let signedIn = null;
const onData = (d) => {
  output += d;
  // The suite prints the authorization URL on a line of its own.
  const m = !signedIn && output.match(/^(https?:\/\/\S+\/authorize\?\S+)$/m);
  if (m) {
    signedIn = (async () => {
      const back = await driveLogin(m[1], env('E2E_USER'), env('E2E_PASSWORD'), redirectUri);
      const res = await fetch(back.url);
      if (res.status !== 200) throw new Error(`the suite's callback answered ${res.status}`);
      await res.arrayBuffer();
    })().catch((e) => { output += `\n(sign-in by the test failed: ${e.stack ?? e})\n`; });
  }
};
child.stdout.on('data', onData);
child.stderr.on('data', onData);
const timer = setTimeout(() => { output += `\n(timed out after ${TIMEOUT_MS} ms)`; child.kill('SIGKILL'); }, TIMEOUT_MS);
const code = await new Promise((resolve) => child.on('close', (c, sig) => resolve(sig ? 1 : c)));
clearTimeout(timer);
await signedIn;
// eslint-disable-next-line no-control-regex
output = output.replace(/\x1b\[[0-9;]*m/g, '');
writeFileSync(join(results, 'run.log'), output);

// Every checks.json the suite wrote (one directory per scenario).
function checkFiles(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...checkFiles(p));
    else if (name === 'checks.json') out.push(p);
  }
  return out;
}
const checks = checkFiles(results).flatMap((f) => JSON.parse(readFileSync(f, 'utf8')));
let passed = 0;
let failed = 0;
for (const c of checks) {
  if (c.status === 'SUCCESS' || c.status === 'INFO') {
    passed++;
    console.log(`ok - ${c.id} (${c.status})`);
  } else {
    failed++;
    console.log(`FAIL - ${c.id} (${c.status}): ${c.errorMessage ?? ''}`);
  }
}
const scenarios = new Set(checks.map((c) => c.id));
for (const id of ['authorization-server-metadata', 'authorization-code-grant']) {
  if (!scenarios.has(id)) { failed++; console.log(`FAIL - ${id}: the suite reported no such check`); }
}
if (code !== 0 && failed === 0) { failed++; console.log(`FAIL - the suite exited ${code}`); }
if (failed) console.log(output.split('\n').map((l) => `  ${l}`).join('\n'));
console.log(`conformance-authorization (${((Date.now() - started) / 1000).toFixed(1)}s)`);
console.log(`conformance-authorization: ${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
