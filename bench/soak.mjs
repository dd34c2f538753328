// The soak's load and its memory samples (started by bench/soak; plain
// Node >= 20, no packages). Mixed load on one mcpgate, bounded to 7
// connections, each worker pausing a little between requests:
//   - 1 worker: whole OAuth flows (registration, sign-in, consent, PKCE code
//     exchange; a fresh browser each time); the grants join a pool of 16,
//     the oldest is revoked (RFC 7009) when a new one comes in;
//   - 2 workers: refresh_token grants with rotation on random grants;
//   - 2 workers: Streamable HTTP sessions: initialize, 50 tools/call
//     (mcpgate's `echo`, and the stdio upstream's `up_echo` when present),
//     DELETE;
//   - 2 workers: legacy SSE streams: GET /sse, initialize and one tools/call
//     through /messages, the answers read from the stream, then closed.
// Every SAMPLE_S seconds it reads VmRSS from /proc/<pid>/status and appends
// `seconds,phase,rss_kib,flows,refreshes,mcp_calls,sse_streams,errors` to
// the CSV. Prints a JSON summary last: RSS after the warm-up and at the end
// (medians of the first and the last minute of samples), their ratio, the
// spread of the samples after the warm-up, the counts.
// Any failed request counts as an error (exit 1): the soak measures a load
// that works.
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { Browser, parseForm, REDIRECT_URI, env } from '../tests/e2e/lib/oauth.mjs';

const BASE = env('SOAK_URL');
const PID = Number(env('SOAK_PID'));
const USER = env('SOAK_USER');
const PASSWORD = env('SOAK_PASSWORD');
const CSV = env('SOAK_CSV');
const WARMUP_S = Number(env('SOAK_WARMUP_S'));
const TOTAL_S = Number(env('SOAK_TOTAL_S'));
const SAMPLE_S = Number(env('SOAK_SAMPLE_S'));
const UPSTREAM = process.env.SOAK_UPSTREAM_TOOL ?? '';
// The kinds of load to run (comma-separated: flows, refresh, calls, sse);
// all of them when unset. For finding which kind makes memory grow.
const KINDS = ['flows', 'refresh', 'calls', 'sse'];
const ONLY = (process.env.SOAK_ONLY ?? '').split(',').map((k) => k.trim()).filter(Boolean);
for (const k of ONLY) if (!KINDS.includes(k)) throw new Error(`SOAK_ONLY: unknown kind ${k} (${KINDS.join(', ')})`);
const runs = (kind) => ONLY.length === 0 || ONLY.includes(kind);
const RESOURCE = new URL('/v1/ai/mcp', BASE).href;
const MCP = new URL('/v1/ai/mcp', BASE);
const POOL = 16;
const TIMEOUT_MS = 15_000;

const started = Date.now();
const endAt = started + TOTAL_S * 1000;
const counts = { flows: 0, refreshes: 0, mcp_calls: 0, sse_streams: 0, errors: 0 };
const firstErrors = [];
const grants = []; // {client_id, access_token, refresh_token}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const b64url = (b) => Buffer.from(b).toString('base64url');
const running = () => Date.now() < endAt;

function fail(where, e) {
  counts.errors += 1;
  if (firstErrors.length < 5) firstErrors.push(`${where}: ${e?.message ?? e}`);
}

function rssKib() {
  const m = readFileSync(`/proc/${PID}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
  if (!m) throw new Error(`no VmRSS for pid ${PID}`);
  return Number(m[1]);
}

const post = (url, body, headers = {}) => fetch(url, {
  method: 'POST', body, headers, signal: AbortSignal.timeout(TIMEOUT_MS),
});
const form = (o) => new URLSearchParams(o);

// ---------------------------------------------------------------- workers

async function oauthFlow() {
  const browser = new Browser();
  const reg = await post(new URL('/v1/oauth/register', BASE), JSON.stringify({
    client_name: 'soak', redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
  }), { 'content-type': 'application/json' });
  if (reg.status !== 201) throw new Error(`register -> ${reg.status}: ${await reg.text()}`);
  const { client_id } = await reg.json();
  const verifier = b64url(randomBytes(32));
  let url = new URL('/v1/oauth/authorize', BASE);
  url.search = form({
    response_type: 'code', client_id, redirect_uri: REDIRECT_URI, scope: 'mcp', state: 's',
    code_challenge: b64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256', resource: RESOURCE,
  }).toString();
  let res = await browser.fetch(url);
  let code;
  for (let step = 0; step < 8 && !code; step++) {
    if (res.status === 302 || res.status === 303) {
      await res.arrayBuffer();
      url = new URL(res.headers.get('location'), url);
      if (url.href.startsWith(REDIRECT_URI)) { code = url.searchParams.get('code'); break; }
      res = await browser.fetch(url);
      continue;
    }
    if (res.status !== 200) throw new Error(`GET ${url.pathname} -> ${res.status}: ${await res.text()}`);
    const f = parseForm(await res.text(), url);
    const body = new URLSearchParams();
    for (const i of f.inputs) if (i.name && i.type !== 'submit') body.append(i.name, i.value ?? '');
    if (f.inputs.some((i) => i.name === 'password')) {
      body.set('username', USER);
      body.set('password', PASSWORD);
    } else {
      body.set('decision', 'approve');
    }
    res = await browser.fetch(f.action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: url.origin },
      body,
    });
  }
  if (!code) throw new Error('the flow did not end with a code');
  const tok = await post(new URL('/v1/oauth/token', BASE), form({
    grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, client_id,
    code_verifier: verifier, resource: RESOURCE,
  }), { 'content-type': 'application/x-www-form-urlencoded' });
  if (tok.status !== 200) throw new Error(`token -> ${tok.status}: ${await tok.text()}`);
  const t = await tok.json();
  grants.push({ client_id, access_token: t.access_token, refresh_token: t.refresh_token });
  counts.flows += 1;
  if (grants.length > POOL) {
    const old = grants.shift();
    const r = await post(new URL('/v1/oauth/revoke', BASE),
      form({ token: old.refresh_token, client_id: old.client_id }),
      { 'content-type': 'application/x-www-form-urlencoded' });
    await r.arrayBuffer();
    if (r.status !== 200) throw new Error(`revoke -> ${r.status}`);
  }
}

async function refresh() {
  const g = grants[Math.floor(Math.random() * grants.length)];
  if (!g || g.busy) return;
  g.busy = true;
  try {
    const r = await post(new URL('/v1/oauth/token', BASE),
      form({ grant_type: 'refresh_token', refresh_token: g.refresh_token, client_id: g.client_id }),
      { 'content-type': 'application/x-www-form-urlencoded' });
    const body = await r.json();
    // A grant revoked by the flow worker meanwhile is not an error.
    if (r.status === 400 && !grants.includes(g)) return;
    if (r.status !== 200) throw new Error(`refresh -> ${r.status}: ${JSON.stringify(body)}`);
    g.access_token = body.access_token;
    g.refresh_token = body.refresh_token;
    counts.refreshes += 1;
  } finally {
    g.busy = false;
  }
}

function token() {
  return grants[grants.length - 1].access_token; // the newest grant: not revoked soon
}

async function rpc(headers, msg) {
  const r = await post(MCP, JSON.stringify(msg), {
    'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers,
  });
  const text = await r.text();
  if (r.status !== 200 && r.status !== 202) throw new Error(`${msg.method} -> ${r.status}: ${text.slice(0, 300)}`);
  return { r, text };
}

async function streamableSession() {
  const auth = { authorization: `Bearer ${token()}` };
  const init = await rpc(auth, {
    jsonrpc: '2.0', id: 1, method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'soak', version: '0' } },
  });
  const sid = init.r.headers.get('mcp-session-id');
  if (!sid) throw new Error('no Mcp-Session-Id');
  const h = { ...auth, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
  await rpc(h, { jsonrpc: '2.0', method: 'notifications/initialized' });
  for (let i = 0; i < 50 && running(); i++) {
    const name = UPSTREAM && i % 2 ? UPSTREAM : 'echo';
    const { text } = await rpc(h, {
      jsonrpc: '2.0', id: 10 + i, method: 'tools/call', params: { name, arguments: { text: `soak ${i}` } },
    });
    if (!text.includes(`soak ${i}`)) throw new Error(`tools/call ${name}: ${text.slice(0, 300)}`);
    counts.mcp_calls += 1;
    await sleep(5);
  }
  const d = await fetch(MCP, { method: 'DELETE', headers: h, signal: AbortSignal.timeout(TIMEOUT_MS) });
  await d.arrayBuffer();
  if (d.status < 200 || d.status > 299) throw new Error(`DELETE session -> ${d.status}`);
}

async function sseStream() {
  const auth = { authorization: `Bearer ${token()}` };
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), TIMEOUT_MS);
  try {
    const res = await fetch(new URL('/sse', BASE), { headers: { ...auth, accept: 'text/event-stream' }, signal: ac.signal });
    if (res.status !== 200) throw new Error(`GET /sse -> ${res.status}: ${await res.text()}`);
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = '';
    const nextEvent = async () => {
      for (;;) {
        const i = buf.indexOf('\n\n');
        if (i >= 0) {
          const raw = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = { event: 'message', data: '' };
          for (const line of raw.split('\n')) {
            if (line.startsWith('event:')) ev.event = line.slice(6).trim();
            else if (line.startsWith('data:')) ev.data += line.slice(5).trim();
          }
          if (raw.startsWith(':')) continue; // keep-alive comment
          return ev;
        }
        const { value, done } = await reader.read();
        if (done) throw new Error('the stream ended early');
        buf += dec.decode(value, { stream: true });
      }
    };
    const ep = await nextEvent();
    if (ep.event !== 'endpoint') throw new Error(`first event ${ep.event}`);
    const to = new URL(ep.data, BASE);
    const send = async (msg) => {
      const r = await post(to, JSON.stringify(msg), { ...auth, 'content-type': 'application/json' });
      await r.arrayBuffer();
      if (r.status !== 202 && r.status !== 200) throw new Error(`POST ${msg.method ?? 'message'} -> ${r.status}`);
    };
    await send({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'soak', version: '0' } },
    });
    if (!(await nextEvent()).data.includes('"id":1')) throw new Error('no initialize answer on the stream');
    await send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    await send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: { text: 'soak sse' } } });
    const ans = await nextEvent();
    if (!ans.data.includes('soak sse')) throw new Error(`tools/call over SSE: ${ans.data.slice(0, 300)}`);
    counts.sse_streams += 1;
    await sleep(200 + Math.random() * 800); // held open a moment, then closed
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
}

async function loop(name, step, pauseMs) {
  while (running()) {
    try {
      await step();
    } catch (e) {
      fail(name, e);
      await sleep(500);
    }
    await sleep(pauseMs);
  }
}

// ---------------------------------------------------------------- main

writeFileSync(CSV, 'seconds,phase,rss_kib,flows,refreshes,mcp_calls,sse_streams,errors\n');
const samples = [];
function sample() {
  const s = Math.round((Date.now() - started) / 1000);
  const phase = s < WARMUP_S ? 'warmup' : 'measure';
  const rss = rssKib();
  samples.push({ s, phase, rss });
  appendFileSync(CSV, `${s},${phase},${rss},${counts.flows},${counts.refreshes},${counts.mcp_calls},` +
    `${counts.sse_streams},${counts.errors}\n`);
}

sample();
// Two grants before the other workers start (the whole pool when no flows
// run, so that the refresh workers have grants to choose from).
for (let i = 0; i < (runs('flows') ? 2 : POOL); i++) await oauthFlow().catch((e) => fail('flow', e));
if (grants.length === 0) {
  console.log(JSON.stringify({ error: firstErrors }));
  process.exit(1);
}
const sampler = setInterval(sample, SAMPLE_S * 1000);
await Promise.all([
  ...(runs('flows') ? [loop('flow', oauthFlow, 500)] : []),
  ...(runs('refresh') ? [loop('refresh', refresh, 20), loop('refresh', refresh, 20)] : []),
  ...(runs('calls') ? [loop('streamable', streamableSession, 10), loop('streamable', streamableSession, 10)] : []),
  ...(runs('sse') ? [loop('sse', sseStream, 10), loop('sse', sseStream, 10)] : []),
]);
clearInterval(sampler);
sample();

// A single sample can land on a sign-in, whose Argon2id hash holds a
// 19 MiB buffer for a moment: the figures compared are the medians of the
// first and the last minute of samples after the warm-up (a third of the
// samples each when there are fewer); the single samples are reported too.
const measured = samples.filter((x) => x.phase === 'measure');
const median = (xs) => { const v = xs.map((x) => x.rss).sort((a, b) => a - b); return v[Math.floor(v.length / 2)]; };
const win = Math.max(1, Math.min(Math.round(60 / SAMPLE_S), Math.floor(measured.length / 3)));
const atWarmup = median(measured.slice(0, win));
const atEnd = median(measured.slice(-win));
const rsses = measured.map((x) => x.rss).sort((a, b) => a - b);
const summary = {
  seconds: Math.round((Date.now() - started) / 1000),
  warmup_seconds: WARMUP_S,
  rss_kib_idle: samples[0].rss,
  window_samples: win,
  rss_kib_after_warmup: atWarmup,
  rss_kib_end: atEnd,
  ratio_end_to_warmup: Number((atEnd / atWarmup).toFixed(4)),
  within_10_percent: Math.abs(atEnd / atWarmup - 1) <= 0.10,
  rss_kib_first_sample_after_warmup: measured[0].rss,
  rss_kib_last_sample: samples[samples.length - 1].rss,
  rss_kib_min: rsses[0],
  rss_kib_median: rsses[Math.floor(rsses.length / 2)],
  rss_kib_max: rsses[rsses.length - 1],
  samples: samples.length,
  only: ONLY.length ? ONLY : KINDS,
  ...counts,
  first_errors: firstErrors,
};
console.log(JSON.stringify(summary));
process.exit(counts.errors > 0 ? 1 : 0);
