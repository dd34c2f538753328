// The fault test's driver (started by tests/fault/run.sh; plain Node >= 20,
// no packages): refresh-token load on two mcpgate instances that share one
// private PostgreSQL server, which is restarted twice mid-load (`pg_ctl
// restart -m fast`, then stop, 2 s down, start). Afterwards it checks, with
// SQL and HTTP:
//   - the only errors clients saw are 503s (`temporarily_unavailable`, with
//     `Retry-After`) during the outages: no 500, no other 4xx, no hang;
//   - every refresh-token family (one `grant_id` per client, see
//     docs/architecture.md "Refresh-token rotation" and "Grant families") is
//     consistent: exactly one live token (not rotated, not revoked), a
//     linear chain (every rotated token names a successor that exists in the
//     family, no successor named twice, one root), one access token per
//     refresh token, nothing revoked; each client's last received refresh
//     token is the live one (or, after a response lost to the outage, the
//     token the live one succeeded, inside the grace window) and still works;
//   - both instances reconnect by themselves, LISTEN/NOTIFY included: a
//     legacy SSE message posted through A reaches a stream held by B (only a
//     NOTIFY wakes B), and a token revoked through A is refused by B within
//     a second.
// Prints one line per check and `fault.mjs: N passed, M failed` last.
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { Browser, parseForm, REDIRECT_URI, env } from '../e2e/lib/oauth.mjs';

const run = promisify(execFile);
const A = env('FAULT_A');
const B = env('FAULT_B');
const ISSUER = env('FAULT_PUBLIC_URL');
const RESOURCE = new URL('/v1/ai/mcp', ISSUER).href;
const USER = env('FAULT_USER');
const PASSWORD = env('FAULT_PASSWORD');
const PGCTL = env('FAULT_PGCTL'); // a script: `$PGCTL restart|stop|start`
const PSQL = env('FAULT_PSQL');
const DB_URL = env('FAULT_DATABASE_URL');
const LOG = { a: env('FAULT_A_LOG'), b: env('FAULT_B_LOG') };
const CLIENTS = Number(process.env.FAULT_CLIENTS ?? 8);
const GRACE_S = 30; // refresh_grace_period's default
const REQUEST_TIMEOUT_MS = 15_000; // a request slower than this is a hang
const SLOW_MS = 8_000; // the pool waits at most 5 s for a connection
const AFTER_OUTAGE_MS = 7_000; // 503s allowed this long after the server is back
const DEADLINE = Date.now() + 100_000; // every loop below stops by then

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) {
    passed += 1;
    console.log(`ok - ${name}`);
  } else {
    failed += 1;
    console.log(`not ok - ${name}${detail ? `: ${detail}` : ''}`);
  }
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha256 = (s) => createHash('sha256').update(s).digest('hex');
const b64url = (b) => Buffer.from(b).toString('base64url');

async function psql(sql) {
  const { stdout } = await run(PSQL, [DB_URL, '-qAtX', '-F', '|', '-c', sql], { timeout: 20_000 });
  return stdout.trim().split('\n').filter(Boolean);
}

// ---------------------------------------------------------------- OAuth (through A)

/** Registration, then sign-in (once per browser) and consent, up to the tokens. */
async function obtain(browser, name) {
  const reg = await fetch(new URL('/v1/oauth/register', A), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: name, redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
    }),
  });
  if (reg.status !== 201) throw new Error(`register -> ${reg.status}: ${await reg.text()}`);
  const { client_id } = await reg.json();
  const verifier = b64url(randomBytes(32));
  const params = {
    response_type: 'code', client_id, redirect_uri: REDIRECT_URI, scope: 'mcp', state: 'st',
    code_challenge: b64url(createHash('sha256').update(verifier).digest()),
    code_challenge_method: 'S256', resource: RESOURCE,
  };
  let url = new URL('/v1/oauth/authorize', A);
  url.search = new URLSearchParams(params).toString();
  let res = await browser.fetch(url);
  let code;
  for (let step = 0; step < 8 && !code; step++) {
    if (res.status === 302 || res.status === 303) {
      await res.arrayBuffer();
      url = new URL(res.headers.get('location'), url);
      if (url.href.startsWith(REDIRECT_URI)) {
        code = url.searchParams.get('code');
        if (!code) throw new Error(`no code in ${url}`);
        break;
      }
      res = await browser.fetch(url);
      continue;
    }
    if (res.status !== 200) throw new Error(`GET ${url} -> ${res.status}: ${await res.text()}`);
    const form = parseForm(await res.text(), url);
    const body = new URLSearchParams();
    for (const i of form.inputs) if (i.name && i.type !== 'submit') body.append(i.name, i.value ?? '');
    if (form.inputs.some((i) => i.name === 'password')) {
      body.set('username', USER);
      body.set('password', PASSWORD);
    } else {
      body.set('decision', 'approve');
    }
    res = await browser.fetch(form.action, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(url).origin },
      body,
    });
  }
  if (!code) throw new Error('the flow did not end with a code');
  const tok = await fetch(new URL('/v1/oauth/token', A), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code, redirect_uri: REDIRECT_URI, client_id,
      code_verifier: verifier, resource: RESOURCE,
    }),
  });
  if (tok.status !== 200) throw new Error(`token -> ${tok.status}: ${await tok.text()}`);
  return { client_id, ...(await tok.json()) };
}

// ---------------------------------------------------------------- the load

const records = []; // {t0, t1, status, base, error?, body?, retryAfter?}
const outages = []; // {name, begin, end}
let stopLoad = false;

async function refreshOnce(base, client_id, refresh_token) {
  const t0 = Date.now();
  const rec = { t0, base };
  try {
    const r = await fetch(new URL('/v1/oauth/token', base), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token, client_id }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    rec.status = r.status;
    rec.retryAfter = r.headers.get('retry-after');
    rec.body = await r.text();
  } catch (e) {
    rec.status = 0;
    rec.error = String(e?.cause?.code ?? e?.name ?? e);
  }
  rec.t1 = Date.now();
  records.push(rec);
  return rec;
}

/** One client's chain: refresh, alternating instances, always with the last token received. */
async function chain(c, index) {
  let n = index;
  while (!stopLoad && Date.now() < DEADLINE) {
    const base = n++ % 2 === 0 ? A : B;
    const rec = await refreshOnce(base, c.client_id, c.last);
    if (rec.status === 200) {
      const body = JSON.parse(rec.body);
      c.last = body.refresh_token;
      c.lastAt = rec.t1;
      c.ok += 1;
    } else if (rec.status === 503) {
      // Retry the same token, as told (a rotation whose answer was lost
      // is replayed inside the grace window).
      await sleep(Math.min(Number(rec.retryAfter) || 1, 2) * 1000);
      continue;
    } else {
      c.broken = `${rec.status} ${rec.error ?? rec.body}`;
      return;
    }
    await sleep(20);
  }
}

async function pgctl(action) {
  await run(PGCTL, [action], { timeout: 60_000 });
}

// ---------------------------------------------------------------- legacy SSE

/** Opens `GET /sse` on `base`; resolves with {endpoint, next(ms), close}. */
async function openSse(base, token) {
  const ac = new AbortController();
  const res = await fetch(new URL('/sse', base), {
    headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' },
    signal: ac.signal,
  });
  if (res.status !== 200) throw new Error(`GET /sse -> ${res.status}: ${await res.text()}`);
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = '';
  const events = [];
  const pump = (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += decoder.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const raw = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev = { event: 'message', data: '' };
          for (const line of raw.split('\n')) {
            if (line.startsWith('event:')) ev.event = line.slice(6).trim();
            else if (line.startsWith('data:')) ev.data += line.slice(5).trim();
          }
          events.push(ev);
        }
      }
    } catch { /* aborted */ }
  })();
  const next = async (ms, pred) => {
    const until = Date.now() + ms;
    for (;;) {
      const i = events.findIndex(pred);
      if (i >= 0) return events.splice(i, 1)[0];
      if (Date.now() >= until) return null;
      await sleep(20);
    }
  };
  const first = await next(5000, (e) => e.event === 'endpoint');
  if (!first) throw new Error('no endpoint event');
  return { endpoint: first.data, next, close: () => { ac.abort(); return pump; } };
}

async function toolsStatus(base, token) {
  const r = await fetch(new URL('/tools', base), {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  });
  await r.arrayBuffer();
  return r.status;
}

async function within(ms, cond) {
  const until = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() >= until) return false;
    await sleep(25);
  }
}

function logText(name) {
  return readFileSync(LOG[name], 'utf8');
}

// ---------------------------------------------------------------- main

async function main() {
  // 1. tokens, through the real flow on A (one browser, one sign-in)
  const browser = new Browser();
  const clients = [];
  for (let i = 0; i < CLIENTS; i++) {
    const t = await obtain(browser, `fault-load-${i}`);
    clients.push({ client_id: t.client_id, first: t.refresh_token, last: t.refresh_token, ok: 0 });
  }
  const probe = await obtain(browser, 'fault-bus-probe');
  const victim = await obtain(browser, 'fault-bus-victim');
  check(`${CLIENTS} clients and 2 probes got tokens through the OAuth flow`, clients.length === CLIENTS);

  // 2. load on both instances, the server restarted twice meanwhile
  const loops = clients.map((c, i) => chain(c, i));
  await sleep(3000);
  const okBefore = clients.map((c) => c.ok);
  let o = { name: 'pg_ctl restart -m fast', begin: Date.now() };
  await pgctl('restart');
  o.end = Date.now();
  outages.push(o);
  console.log(`# ${o.name}: ${o.end - o.begin} ms`);
  await sleep(4000);
  o = { name: 'pg_ctl stop -m fast, 2 s down, pg_ctl start', begin: Date.now() };
  await pgctl('stop');
  await sleep(2000);
  await pgctl('start');
  o.end = Date.now();
  outages.push(o);
  console.log(`# ${o.name}: ${o.end - o.begin} ms`);
  const lastUp = Date.now();
  const okAtLastUp = clients.map((c) => c.ok);
  await sleep(5000);
  stopLoad = true;
  await Promise.all(loops);

  const by = (p) => records.filter(p).length;
  console.log(`# ${records.length} refresh requests: ${by((r) => r.status === 200)} answered 200, ` +
    `${by((r) => r.status === 503)} 503, ${by((r) => r.status !== 200 && r.status !== 503)} other; ` +
    `A ${by((r) => r.base === A)}, B ${by((r) => r.base === B)}`);
  check('both instances served refresh grants before the restarts',
    by((r) => r.status === 200 && r.base === A && r.t1 < outages[0].begin) > 0
      && by((r) => r.status === 200 && r.base === B && r.t1 < outages[0].begin) > 0
      && okBefore.every((n) => n > 0), `per client: ${okBefore}`);
  const odd = records.filter((r) => r.status !== 200 && r.status !== 503);
  check('no answer other than 200 and 503 (no 500, no other 4xx, no connection error)', odd.length === 0,
    JSON.stringify(odd.slice(0, 3)));
  const inOutage = (r) => outages.some((w) => r.t1 >= w.begin && r.t0 <= w.end + AFTER_OUTAGE_MS);
  const stray = records.filter((r) => r.status === 503 && !inOutage(r));
  check('503s only during the outages', stray.length === 0, JSON.stringify(stray.slice(0, 3)));
  const bad503 = records.filter((r) => {
    if (r.status !== 503) return false;
    try {
      const body = JSON.parse(r.body);
      return body.error !== 'temporarily_unavailable' || !body.error_description || !(Number(r.retryAfter) > 0);
    } catch { return true; }
  });
  check('each 503 says temporarily_unavailable, why, and Retry-After', bad503.length === 0,
    JSON.stringify(bad503.slice(0, 3)));
  const slow = records.filter((r) => r.t1 - r.t0 > SLOW_MS);
  const worst = Math.max(0, ...records.map((r) => r.t1 - r.t0));
  console.log(`# slowest request: ${worst} ms`);
  check(`no request took more than ${SLOW_MS / 1000} s`, slow.length === 0, JSON.stringify(slow.slice(0, 3)));
  const broken = clients.filter((c) => c.broken);
  check('no chain broke', broken.length === 0, broken.map((c) => c.broken).join('; '));
  check('every chain went on after the server came back',
    clients.every((c, i) => c.ok > okAtLastUp[i] && c.lastAt > lastUp),
    `grants per client after: ${clients.map((c, i) => c.ok - okAtLastUp[i])}`);

  // 3. the families, in the database
  const ids = clients.map((c) => `'${c.client_id}'`).join(',');
  const scope = `client_id IN (${ids})`;
  const fams = await psql(`SELECT client_id, count(DISTINCT grant_id) FROM refresh_tokens WHERE ${scope} GROUP BY 1`);
  check('one family (grant_id) per client', fams.length === CLIENTS && fams.every((l) => l.endsWith('|1')),
    fams.join(' '));
  const live = await psql(`SELECT grant_id, count(*) FILTER (WHERE rotated_at IS NULL AND revoked_at IS NULL
      AND expires_at > extract(epoch FROM now())::bigint) FROM refresh_tokens WHERE ${scope} GROUP BY 1`);
  check('exactly one live refresh token per family (none with two live successors, none lost)',
    live.length === CLIENTS && live.every((l) => l.endsWith('|1')), live.join(' '));
  const revoked = await psql(`SELECT count(*) FROM refresh_tokens WHERE ${scope} AND revoked_at IS NOT NULL`);
  check('no family was revoked (no false refresh-token reuse)', revoked[0] === '0', `${revoked[0]} revoked rows`);
  const malformed = await psql(`
    SELECT 'rotated without successor or the reverse', count(*) FROM refresh_tokens
      WHERE ${scope} AND (rotated_at IS NULL) <> (successor_hash IS NULL)
    UNION ALL SELECT 'successor missing from the family', count(*) FROM refresh_tokens r
      WHERE r.${scope} AND r.successor_hash IS NOT NULL AND NOT EXISTS
        (SELECT 1 FROM refresh_tokens s WHERE s.token_hash = r.successor_hash AND s.grant_id = r.grant_id)
    UNION ALL SELECT 'successor named twice', count(*) FROM
      (SELECT successor_hash FROM refresh_tokens WHERE ${scope} AND successor_hash IS NOT NULL
        GROUP BY 1 HAVING count(*) > 1) d
    UNION ALL SELECT 'families without exactly one root', count(*) FROM
      (SELECT r.grant_id FROM refresh_tokens r WHERE r.${scope} AND NOT EXISTS
        (SELECT 1 FROM refresh_tokens p WHERE p.successor_hash = r.token_hash)
        GROUP BY 1 HAVING count(*) <> 1) d
    UNION ALL SELECT 'families whose access and refresh token counts differ', count(*) FROM
      (SELECT grant_id, count(*) n FROM refresh_tokens WHERE ${scope} GROUP BY 1) rt
      FULL JOIN (SELECT grant_id, count(*) n FROM access_tokens WHERE ${scope} GROUP BY 1) at
      USING (grant_id) WHERE rt.n IS DISTINCT FROM at.n`);
  check('every chain is linear and complete', malformed.every((l) => l.endsWith('|0')), malformed.join('; '));
  const rows = await psql(`SELECT r.client_id, r.token_hash, r.rotated_at IS NULL, r.revoked_at IS NULL,
      coalesce(extract(epoch FROM now())::bigint - r.rotated_at, 0),
      coalesce(s.rotated_at IS NULL AND s.revoked_at IS NULL, false)
    FROM refresh_tokens r LEFT JOIN refresh_tokens s ON s.token_hash = r.successor_hash WHERE r.${scope}`);
  const byHash = new Map(rows.map((l) => { const f = l.split('|'); return [f[1], f]; }));
  const lost = clients.filter((c) => {
    const f = byHash.get(sha256(c.last));
    if (!f) return true;
    const [, , notRotated, notRevoked, age, successorLive] = f;
    if (notRotated === 't' && notRevoked === 't') return false; // the live token
    // The answer to its rotation was lost: replayable inside the grace window.
    return !(notRevoked === 't' && successorLive === 't' && Number(age) < GRACE_S);
  });
  check("each client's last received refresh token is its family's live token (or its replayable predecessor)",
    lost.length === 0, lost.map((c) => c.client_id).join(' '));
  let works = 0;
  for (const [i, c] of clients.entries()) {
    const r = await refreshOnce(i % 2 ? B : A, c.client_id, c.last);
    if (r.status === 200) works += 1;
    else console.log(`# client ${c.client_id}: ${r.status} ${r.body ?? r.error}`);
  }
  check("each client's last refresh token still works", works === CLIENTS, `${works} of ${CLIENTS}`);

  // 4. both instances reconnected, LISTEN/NOTIFY included
  for (const [name, base] of [['a', A], ['b', B]]) {
    const h = await fetch(new URL('/healthz', base)).catch(() => null);
    check(`instance ${name} answers /healthz`, h?.status === 200, String(h?.status));
    const restored = await within(12_000, () => {
      const t = logText(name);
      const lostAt = t.lastIndexOf('cluster.listener_lost');
      return lostAt >= 0 && t.indexOf('cluster.listener_restored', lostAt) > lostAt;
    });
    check(`instance ${name} lost its LISTEN connection and restored it by itself`, restored);
  }
  let sse;
  try {
    sse = await openSse(B, probe.access_token);
    const post = await fetch(new URL(sse.endpoint, A), {
      method: 'POST',
      headers: { authorization: `Bearer ${probe.access_token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        jsonrpc: '2.0', id: 7, method: 'initialize',
        params: { protocolVersion: '2024-11-05', capabilities: {}, clientInfo: { name: 'fault', version: '0' } },
      }),
    });
    await post.arrayBuffer();
    const t = Date.now();
    const reply = post.status === 202 || post.status === 200
      ? await sse.next(2000, (e) => e.event === 'message' && e.data.includes('"id":7'))
      : null;
    check('a legacy SSE message posted through A reaches the stream held by B within 2 s (NOTIFY)',
      reply !== null, `POST -> ${post.status}${reply ? '' : ', no reply on the stream'}`);
    if (reply) console.log(`# SSE reply via NOTIFY after ${Date.now() - t} ms`);
  } catch (e) {
    check('a legacy SSE message posted through A reaches the stream held by B within 2 s (NOTIFY)', false, String(e));
  } finally {
    await sse?.close();
  }
  const cached = [await toolsStatus(B, victim.access_token), await toolsStatus(B, victim.access_token)];
  const rev = await fetch(new URL('/v1/oauth/revoke', A), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token: victim.access_token, client_id: victim.client_id }),
  });
  await rev.arrayBuffer();
  const refused = await within(1000, async () => (await toolsStatus(B, victim.access_token)) === 401);
  check('a token revoked through A is refused by B within a second',
    cached.every((s) => s === 200) && rev.status === 200 && refused,
    `before ${cached}, revoke ${rev.status}, refused ${refused}`);

  const panics = ['a', 'b'].filter((n) => /panicked/.test(logText(n)));
  check('no panic in either log', panics.length === 0, panics.join(' '));
}

try {
  await main();
} catch (e) {
  check('the driver ran to the end', false, e?.stack ?? String(e));
}
console.log(`fault.mjs: ${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
