// Runs the whole active server suite of the official MCP conformance suite
// (@modelcontextprotocol/conformance 0.1.16: every server scenario except
// those it marks pending) THROUGH mcpgate's gateway: the mcpgate at
// E2E_GW_ADDR has `mcpgate-fixture-upstream --conformance` as an upstream
// with `prefix = ""`, which serves the fixtures the scenarios call
// (test_* tools and prompts, test:// resources), next to mcpgate's built-in
// tools and a second upstream (server-everything, prefix `everything`).
// As in conformance.mjs, the suite talks to a loopback proxy (lib/proxy.mjs)
// that adds a bearer token obtained through the real OAuth flow.
//
// Environment (set by run.sh): E2E_GW_ISSUER (http://localhost:PORT),
// E2E_GW_ADDR (http://127.0.0.1:PORT), E2E_GW_USER, E2E_GW_PASSWORD,
// E2E_RESULTS (results go to $E2E_RESULTS/conformance-gateway/: the suite's
// server-<scenario>-<time>/checks.json, its output suite.log, and
// summary.json, one entry per scenario).
// Arguments: scenario names to run only those (each with --scenario);
// without any, the default "active" suite in one run.
// Prints one ok/FAIL line per scenario and
// `conformance-gateway: N passed, N failed`.
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { env, obtainToken } from './lib/oauth.mjs';
import { startProxy } from './lib/proxy.mjs';
import { SUITE, SUITE_NEXT, runSuite } from './lib/suite.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const SUITE_TIMEOUT_MS = 240_000;
const SCENARIO_TIMEOUT_MS = 60_000;

// E2E_CONFORMANCE=next: the newest release (conformance-next) with
// `--suite all` (2026-07-28 and extension scenarios included).
const NEXT = process.env.E2E_CONFORMANCE === 'next';
const suite = NEXT ? SUITE_NEXT : SUITE;
const suiteArgs = NEXT ? ['--suite', 'all'] : [];
const LABEL = NEXT ? 'conformance-gateway-next' : 'conformance-gateway';
const issuer = env('E2E_GW_ISSUER');
const out = join(process.env.E2E_RESULTS ?? join(HERE, 'results'), LABEL);
rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const only = process.argv.slice(2);

const token = await obtainToken({
  issuer,
  resource: new URL('/v1/ai/mcp', issuer).href,
  username: env('E2E_GW_USER'),
  password: env('E2E_GW_PASSWORD'),
});
const proxy = await startProxy({ upstream: env('E2E_GW_ADDR'), token: token.access_token });
// The dns-rebinding scenario needs a localhost URL.
const url = `http://localhost:${proxy.port}/v1/ai/mcp`;

/** The checks.json the suite wrote for `scenario` (-o gives server-<scenario>-<ISO time>/). */
function checksOf(scenario) {
  const prefix = `server-${scenario}-`;
  const dir = readdirSync(out).find((d) => d.startsWith(prefix) && /^\d{4}-\d\d-\d\dT/.test(d.slice(prefix.length)));
  if (!dir) return undefined;
  return JSON.parse(readFileSync(join(out, dir, 'checks.json'), 'utf8'));
}

const problems = []; // failures of the run itself (not of one scenario)
let scenarios;
let log = '';
let elapsed = 0;
try {
  if (only.length) {
    scenarios = only;
    for (const s of only) {
      const r = await runSuite(['server', '--url', url, '--scenario', s, '-o', out], SCENARIO_TIMEOUT_MS, suite);
      log += `\n=== conformance server --scenario ${s} (exit ${r.code}) ===\n${r.output}`;
      elapsed += r.ms;
    }
  } else {
    const r = await runSuite(['server', '--url', url, ...suiteArgs, '-o', out], SUITE_TIMEOUT_MS, suite);
    log = r.output;
    elapsed = r.ms;
    // `Running active suite (N scenarios)`, then a SUMMARY with one
    // `✓ name: N passed, N failed` (or ✗) line per scenario.
    const expected = Number(log.match(/^Running (?:active|all) suite \((\d+) scenarios\)/m)?.[1]);
    const summary = log.slice(log.lastIndexOf('=== SUMMARY ==='));
    scenarios = [...summary.matchAll(/^[✓✗] (\S+): \d+ passed, \d+ failed$/gmu)].map((m) => m[1]);
    if (!expected || scenarios.length !== expected) {
      problems.push(`the suite announced ${expected} scenarios but summarised ${scenarios.length} (exit ${r.code})`);
    }
    if (r.code !== 0 && scenarios.every((s) => !checksOf(s)?.some((c) => c.status === 'FAILURE'))) {
      problems.push(`the suite exited ${r.code} without a failed check`);
    }
  }
} finally {
  await proxy.close();
}
writeFileSync(join(out, 'suite.log'), log);

let passed = 0;
let failed = 0;
const table = [];
for (const scenario of scenarios) {
  const checks = checksOf(scenario);
  const count = (status) => checks?.filter((c) => c.status === status).length ?? 0;
  const entry = {
    scenario,
    result: checks && count('FAILURE') === 0 ? 'pass' : 'fail',
    success: count('SUCCESS'),
    failure: count('FAILURE'),
    warning: count('WARNING'),
    failures: (checks ?? []).filter((c) => c.status === 'FAILURE').map((c) => ({ id: c.id, error: c.errorMessage, details: c.details })),
    warnings: (checks ?? []).filter((c) => c.status === 'WARNING').map((c) => ({ id: c.id, error: c.errorMessage })),
  };
  table.push(entry);
  const warned = entry.warning ? `, ${entry.warning} warning(s): ${entry.warnings.map((w) => w.id).join(', ')}` : '';
  if (entry.result === 'pass') {
    passed++;
    console.log(`ok - conformance via gateway ${scenario} (${entry.success} checks passed${warned})`);
  } else {
    failed++;
    console.log(`FAIL - conformance via gateway ${scenario} (${checks ? `${entry.failure} failed` : 'no checks.json'}${warned})`);
    for (const f of entry.failures) {
      console.log(`  ${f.id}: ${f.error ?? ''}`);
      if (f.details) console.log(`    details: ${JSON.stringify(f.details).slice(0, 2000)}`);
    }
  }
}
for (const p of problems) {
  failed++;
  console.log(`FAIL - conformance via gateway: ${p}`);
}
if (failed) console.log(`  (the suite's whole output: ${join(out, 'suite.log')})`);
writeFileSync(join(out, 'summary.json'), JSON.stringify(table, null, 2) + '\n');
console.log(`conformance via gateway: ${scenarios.length} scenarios in ${(elapsed / 1000).toFixed(1)}s`);
console.log(`${LABEL}: ${passed} passed, ${failed} failed`);
process.exitCode = failed ? 1 : 0;
