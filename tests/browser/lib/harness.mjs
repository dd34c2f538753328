// Shared helpers for the browser tests: configuration from tests/browser/run.sh,
// launching Debian's Chromium through playwright-core, a local callback
// server that records what the browser brings back, dynamic client
// registration and PKCE.
import { createHash, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import { chromium } from 'playwright-core';

export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run the suite through tests/browser/run.sh)`);
  return v;
}

export const ISSUER = () => env('BROWSER_TEST_ISSUER');
export const RESOURCE = () => new URL('/v1/ai/mcp', ISSUER()).href;

/** The flags Chromium needs on this machine (root, no GPU, closed network). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Launches headless Chromium. playwright-core adds `--headless` and gives every
 * launch a fresh, empty --user-data-dir of its own (removed on close).
 */
export function launchChromium() {
  return chromium.launch({
    executablePath: process.env.BROWSER_TEST_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 30_000,
  });
}

/** A context with a fixed light colour scheme (the screenshots must not depend on the host). */
export function newContext(browser, viewport = { width: 1280, height: 800 }) {
  return browser.newContext({ viewport, deviceScaleFactor: 1, colorScheme: 'light', locale: 'en-US' });
}

function b64url(buf) {
  return Buffer.from(buf).toString('base64url');
}

export function pkce() {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  return { verifier, challenge };
}

/** Registers a public client by DCR; returns the registration response. */
export async function registerClient({ clientName, redirectUri, clientUri }) {
  const body = {
    client_name: clientName,
    redirect_uris: [redirectUri],
    token_endpoint_auth_method: 'none',
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
  };
  if (clientUri) body.client_uri = clientUri;
  const res = await fetch(new URL('/v1/oauth/register', ISSUER()), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (res.status !== 201) throw new Error(`register -> ${res.status}: ${await res.text()}`);
  return res.json();
}

/** An authorization request (PKCE S256, state, resource, scope mcp). */
export function authorizeRequest(clientId, redirectUri) {
  const { verifier, challenge } = pkce();
  const state = b64url(randomBytes(16));
  const url = new URL('/v1/oauth/authorize', ISSUER());
  url.search = new URLSearchParams({
    response_type: 'code',
    client_id: clientId,
    redirect_uri: redirectUri,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state,
    scope: 'mcp',
    resource: RESOURCE(),
  }).toString();
  return { url, state, verifier };
}

/** Exchanges an authorization code at the token endpoint. */
export async function exchangeCode({ clientId, code, redirectUri, verifier }) {
  const res = await fetch(new URL('/v1/oauth/token', ISSUER()), {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      code,
      redirect_uri: redirectUri,
      client_id: clientId,
      code_verifier: verifier,
      resource: RESOURCE(),
    }),
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

/**
 * A tiny HTTP server on 127.0.0.1 standing in for the client's redirect URI.
 * It records every request but /favicon.ico (method, path and query) and
 * answers with a plain page.
 */
export async function startCallbackServer() {
  const requests = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`);
    if (url.pathname === '/favicon.ico') { // Chromium asks for it after landing; not a callback
      res.writeHead(404).end();
      return;
    }
    requests.push({ method: req.method, path: url.pathname, query: Object.fromEntries(url.searchParams) });
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>callback</title><p id="callback">callback received</p>');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address();
  return {
    redirectUri: `http://127.0.0.1:${port}/callback`,
    requests,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/** Fills in and submits the sign-in form of the page. */
export async function signIn(page, username, password) {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
}

/** Whether the page is mcpgate's sign-in page (heading and form fields). */
export async function isLoginPage(page) {
  return (
    (await page.getByRole('heading', { level: 1, name: 'Sign in' }).count()) === 1 &&
    (await page.locator('form input[name="username"]').count()) === 1 &&
    (await page.locator('form input[name="password"]').count()) === 1
  );
}
