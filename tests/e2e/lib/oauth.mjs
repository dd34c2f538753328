// Headless OAuth helpers for the end-to-end tests: an in-memory
// OAuthClientProvider for the official TypeScript SDK, and a driver that
// signs in and approves consent by posting mcpgate's HTML forms, the way a
// person's browser would (cookie jar, no redirects followed automatically).
//
// Configuration comes from the environment set by tests/e2e/run.sh:
//   E2E_ISSUER    the issuer, e.g. http://localhost:PORT
//   E2E_USER      a user name, E2E_PASSWORD its password
import { createHash, randomBytes } from 'node:crypto';

export const REDIRECT_URI = 'http://127.0.0.1:1/callback'; // never contacted

export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run the suite through tests/e2e/run.sh)`);
  return v;
}

/** An OAuthClientProvider that keeps everything in memory and never opens a browser. */
export class MemoryOAuthProvider {
  constructor(clientName = 'mcpgate-e2e-ts') {
    this._clientMetadata = {
      client_name: clientName,
      redirect_uris: [REDIRECT_URI],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
    this._clientInformation = undefined;
    this._tokens = undefined;
    this._codeVerifier = undefined;
    this.pendingAuthUrl = undefined;
    this.savedTokens = []; // every token set the SDK saved, in order
  }
  get redirectUrl() { return REDIRECT_URI; }
  state() { return randomBytes(16).toString('base64url'); }
  get clientMetadata() { return this._clientMetadata; }
  clientInformation() { return this._clientInformation; }
  saveClientInformation(info) { this._clientInformation = info; }
  tokens() { return this._tokens; }
  saveTokens(tokens) { this._tokens = tokens; this.savedTokens.push(tokens); }
  redirectToAuthorization(url) { this.pendingAuthUrl = new URL(url); }
  saveCodeVerifier(v) { this._codeVerifier = v; }
  codeVerifier() {
    if (!this._codeVerifier) throw new Error('no code verifier saved');
    return this._codeVerifier;
  }
}

// ---------------------------------------------------------------- HTML forms

const ENTITIES = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", '#39': "'", '#x27': "'", '#47': '/', '#x2F': '/' };
function decodeEntities(s) {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|[a-zA-Z]+);/g, (m, e) => {
    if (e in ENTITIES) return ENTITIES[e];
    if (e[0] === '#') {
      const n = e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10);
      return String.fromCodePoint(n);
    }
    return m;
  });
}

function attributes(tag) {
  const out = {};
  const re = /([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  const inner = tag.replace(/^<\s*[a-zA-Z]+/, '').replace(/\/?>$/, '');
  let m;
  while ((m = re.exec(inner))) {
    out[m[1].toLowerCase()] = decodeEntities(m[2] ?? m[3] ?? m[4] ?? '');
  }
  return out;
}

/** The single <form> of a page: its action, method, inputs and buttons. */
export function parseForm(html, pageUrl) {
  const forms = html.match(/<form\b[\s\S]*?<\/form>/gi) ?? [];
  if (forms.length !== 1) {
    throw new Error(`expected exactly one <form> on ${pageUrl}, found ${forms.length}:\n${html.slice(0, 2000)}`);
  }
  const form = forms[0];
  const attrs = attributes(form.match(/<form\b[^>]*>/i)[0]);
  const inputs = (form.match(/<input\b[^>]*>/gi) ?? []).map(attributes);
  const buttons = (form.match(/<button\b[^>]*>/gi) ?? []).map(attributes);
  return {
    action: new URL(attrs.action ?? '', pageUrl),
    method: (attrs.method ?? 'get').toUpperCase(),
    inputs,
    buttons,
  };
}

// ---------------------------------------------------------------- browser-ish fetch

/** fetch with a cookie jar and no automatic redirects. */
export class Browser {
  constructor() { this.cookies = new Map(); }
  async fetch(url, init = {}) {
    const headers = new Headers(init.headers ?? {});
    if (this.cookies.size) {
      headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const res = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      if (/max-age=0\b/i.test(c) || value === '') this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return res;
  }
}

export async function submit(browser, form, values, pageUrl) {
  const body = new URLSearchParams();
  for (const input of form.inputs) {
    if (!input.name) continue;
    const type = (input.type ?? 'text').toLowerCase();
    if (type === 'submit' || type === 'button') continue;
    if ((type === 'checkbox' || type === 'radio') && !('checked' in input)) continue;
    body.append(input.name, input.name in values ? values[input.name] : input.value ?? '');
  }
  for (const [k, v] of Object.entries(values)) if (!body.has(k)) body.append(k, v);
  if (form.method !== 'POST') throw new Error(`form on ${pageUrl} uses ${form.method}, expected POST`);
  return browser.fetch(form.action, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(pageUrl).origin },
    body,
  });
}

function location(res, base) {
  const loc = res.headers.get('location');
  if (!loc) throw new Error(`HTTP ${res.status} without Location`);
  return new URL(loc, base);
}

/**
 * Signs in and approves consent for an authorization URL, returning the
 * query parameters of the final redirect to `redirectUri` (default
 * REDIRECT_URI): {code, state, iss}, and the whole redirect URL as a
 * non-enumerable `url`. Every step is checked: login page (200) -> POST
 * login (303 back to the authorize URL) -> consent page (200) -> POST
 * approve (302/303 to the client).
 */
export async function driveLogin(authUrl, username, password, redirectUri = REDIRECT_URI) {
  const browser = new Browser();
  let url = new URL(authUrl);
  let res = await browser.fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url} -> ${res.status}: ${await res.text()}`);
  let html = await res.text();
  const login = parseForm(html, url);
  const names = login.inputs.map((i) => i.name);
  if (!names.includes('username') || !names.includes('password')) {
    throw new Error(`the first page is not a login form (inputs: ${names.join(', ')})`);
  }
  res = await submit(browser, login, { username, password }, url);
  if (res.status !== 303 && res.status !== 302) {
    throw new Error(`POST login -> ${res.status}, expected a redirect: ${await res.text()}`);
  }
  await res.arrayBuffer();
  // Follow redirects (GET) until a page with the consent form shows up,
  // or the client's redirect URI is reached directly.
  for (let hops = 0; ; hops++) {
    if (hops > 5) throw new Error('too many redirects after login');
    url = location(res, url);
    if (url.href.startsWith(redirectUri)) return finish(url);
    res = await browser.fetch(url);
    if (res.status === 200) break;
    if (res.status !== 302 && res.status !== 303) {
      throw new Error(`GET ${url} -> ${res.status}: ${await res.text()}`);
    }
    await res.arrayBuffer();
  }
  html = await res.text();
  const consent = parseForm(html, url);
  const approve = consent.buttons.find((b) => b.name === 'decision' && b.value === 'approve');
  if (!approve) {
    throw new Error(`no <button name="decision" value="approve"> on the consent page:\n${html.slice(0, 2000)}`);
  }
  res = await submit(browser, consent, { decision: 'approve' }, url);
  if (res.status !== 302 && res.status !== 303) {
    throw new Error(`POST consent -> ${res.status}, expected 302/303: ${await res.text()}`);
  }
  return finish(location(res, url));

  function finish(u) {
    if (!u.href.startsWith(redirectUri)) throw new Error(`redirected to ${u}, expected ${redirectUri}`);
    const p = Object.fromEntries(u.searchParams);
    if (!p.code) throw new Error(`no code in the redirect: ${u}`);
    Object.defineProperty(p, 'url', { value: u, enumerable: false });
    return p;
  }
}

// ---------------------------------------------------------------- plain OAuth client

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

/**
 * The whole flow without any SDK (used to hand the conformance suite a token):
 * registration, PKCE, login + consent, token exchange. Returns the token response.
 */
export async function obtainToken({ issuer, resource, username, password }) {
  const reg = await fetch(new URL('/v1/oauth/register', issuer), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: 'mcpgate-e2e-conformance',
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
    }),
  });
  if (reg.status !== 201) throw new Error(`register -> ${reg.status}: ${await reg.text()}`);
  const { client_id } = await reg.json();
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const state = b64url(randomBytes(16));
  const auth = new URL('/v1/oauth/authorize', issuer);
  auth.search = new URLSearchParams({
    response_type: 'code', client_id, redirect_uri: REDIRECT_URI, code_challenge: challenge,
    code_challenge_method: 'S256', state, scope: 'mcp', resource,
  }).toString();
  const back = await driveLogin(auth, username, password);
  if (back.state !== state) throw new Error(`state mismatch: ${back.state}`);
  const tok = await fetch(new URL('/v1/oauth/token', issuer), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code', code: back.code, redirect_uri: REDIRECT_URI,
      client_id, code_verifier: verifier, resource,
    }),
  });
  if (tok.status !== 200) throw new Error(`token -> ${tok.status}: ${await tok.text()}`);
  return tok.json();
}
