// Sign-in through a real OpenID Connect provider (npm oidc-provider, started
// by run.sh) in Chromium: an MCP client's authorization request at the second
// mcpgate, the "Sign in with Test OP" button, the provider's own sign-in and
// consent pages, mcpgate's consent page, the code at the client's redirect URI,
// the token, and an MCP tool call that names the federated user. Then a
// tampered callback `state` and a sign-in cancelled at the provider, and a
// screenshot of the sign-in page with the provider button (docs/images/).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { env, launchChromium, newContext, startCallbackServer } from './lib/harness.mjs';

const ISSUER = () => env('BROWSER_TEST_FED_ISSUER');
const OP_ISSUER = () => env('BROWSER_TEST_OP_ISSUER');
const RESOURCE = () => new URL('/v1/ai/mcp', ISSUER()).href;

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

const b64url = (buf) => Buffer.from(buf).toString('base64url');

async function registerClient(clientName, redirectUri) {
  const res = await fetch(new URL('/v1/oauth/register', ISSUER()), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      client_name: clientName, redirect_uris: [redirectUri], token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code'], response_types: ['code'],
    }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  return res.json();
}

function authorizeRequest(clientId, redirectUri) {
  const verifier = b64url(randomBytes(32));
  const challenge = b64url(createHash('sha256').update(verifier).digest());
  const state = b64url(randomBytes(16));
  const url = new URL('/v1/oauth/authorize', ISSUER());
  url.search = new URLSearchParams({
    response_type: 'code', client_id: clientId, redirect_uri: redirectUri, code_challenge: challenge,
    code_challenge_method: 'S256', state, scope: 'mcp', resource: RESOURCE(),
  }).toString();
  return { url, state, verifier };
}

/** An MCP client's request at mcpgate, in a fresh browser profile, up to mcpgate's sign-in page. */
async function start(clientName) {
  const callback = await startCallbackServer();
  const client = await registerClient(clientName, callback.redirectUri);
  const request = authorizeRequest(client.client_id, callback.redirectUri);
  const context = await newContext(browser);
  const page = await context.newPage();
  const res = await page.goto(request.url.href);
  assert.equal(res.status(), 200);
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Sign in');
  return { callback, client, request, context, page };
}

/** Presses the provider button; ends on the provider's own sign-in page. */
async function toProvider(page) {
  await Promise.all([
    page.waitForURL((u) => u.href.startsWith(OP_ISSUER())),
    page.getByRole('button', { name: 'Sign in with Test OP' }).click(),
  ]);
  assert.ok(await page.locator('input[name="login"]').isVisible(), `oidc-provider's sign-in page at ${page.url()}`);
}

/** Signs in at oidc-provider as `login` and approves its consent page. */
async function signInAtProvider(page, login) {
  await page.locator('input[name="login"]').fill(login);
  await page.locator('input[name="password"]').fill('any password');
  await Promise.all([page.waitForNavigation(), page.getByRole('button', { name: 'Sign-in' }).click()]);
  if (page.url().startsWith(OP_ISSUER())) {
    // The provider's consent ("Authorize") page.
    await Promise.all([
      page.waitForURL((u) => !u.href.startsWith(OP_ISSUER())),
      page.getByRole('button', { name: 'Continue' }).click(),
    ]);
  }
}

describe('sign-in through oidc-provider', () => {
  test('the whole MCP OAuth flow with a federated user', async () => {
    const { callback, client, request, context, page } = await start('Federation Test Client');
    try {
      await toProvider(page);
      // The provider never sees the client's redirect URI: only mcpgate's callback.
      const atProvider = decodeURIComponent(page.url());
      assert.ok(!atProvider.includes(callback.redirectUri), atProvider);
      await signInAtProvider(page, 'carol');
      // Back at mcpgate: its consent page, for the federated user.
      assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Allow access?', page.url());
      assert.ok((await page.locator('main').innerText()).includes('carol'), 'signed in as carol');
      await Promise.all([page.waitForURL((u) => u.href.startsWith(callback.redirectUri)), page.getByRole('button', { name: 'Allow', exact: true }).click()]);
      const back = callback.requests.at(-1).query;
      assert.equal(back.state, request.state);
      assert.ok(back.code, 'a code at the client');
      const res = await fetch(new URL('/v1/oauth/token', ISSUER()), {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'authorization_code', code: back.code, redirect_uri: callback.redirectUri,
          client_id: client.client_id, code_verifier: request.verifier, resource: RESOURCE(),
        }),
      });
      assert.equal(res.status, 200);
      const { access_token: token } = await res.json();
      const who = await fetch(new URL('/tools/whoami', ISSUER()), { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      assert.equal(who.status, 200);
      assert.match(await who.text(), /carol/, 'the MCP tool call names the federated user');
    } finally {
      await context.close();
      await callback.close();
    }
  });

  test('a tampered state at the callback ends on an error page with a working "Try again"', async () => {
    const { callback, context, page } = await start('Tamper Test Client');
    try {
      await toProvider(page);
      // Follow the provider's redirects here (Chromium does not route the
      // hops of a redirect chain), and change the `state` of the one that
      // sends the browser back to mcpgate's callback.
      let callbackUrl;
      const back = `${ISSUER()}/oauth/callback`;
      await page.route((u) => u.href.startsWith(OP_ISSUER()), async (route) => {
        let response = await route.fetch({ maxRedirects: 0 });
        let location = response.headers().location && new URL(response.headers().location, OP_ISSUER()).href;
        while (location && location.startsWith(OP_ISSUER())) {
          response = await page.request.get(location, { maxRedirects: 0 });
          location = response.headers().location && new URL(response.headers().location, OP_ISSUER()).href;
        }
        if (location && location.startsWith(back)) {
          callbackUrl = location;
          const u = new URL(location);
          const state = u.searchParams.get('state');
          u.searchParams.set('state', (state[0] === 'A' ? 'B' : 'A') + state.slice(1));
          return route.fulfill({ status: 303, headers: { location: u.href } });
        }
        return route.fulfill({ response });
      });
      const [res] = await Promise.all([
        page.waitForResponse((r) => r.url().startsWith(`${ISSUER()}/oauth/callback`)),
        signInAtProvider(page, 'mallory'),
      ]);
      assert.ok(callbackUrl, 'the provider sent the browser to the callback');
      assert.ok(!res.url().includes(new URL(callbackUrl).searchParams.get('state')), 'the state was changed');
      assert.equal(res.status(), 400);
      await page.waitForLoadState();
      assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Sign-in failed');
      assert.ok((await page.locator('main').innerText()).includes('federation.bad_state'));
      await Promise.all([page.waitForNavigation(), page.getByRole('link', { name: 'Try again' }).click()]);
      assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Sign in', 'back on the sign-in page');
      assert.equal(callback.requests.length, 0, 'the client got nothing');
    } finally {
      await context.close();
      await callback.close();
    }
  });

  test('cancelled at the provider: a clear page, nothing for the client', async () => {
    const { callback, context, page } = await start('Cancel Test Client');
    try {
      await toProvider(page);
      const [res] = await Promise.all([
        page.waitForResponse((r) => r.url().startsWith(`${ISSUER()}/oauth/callback`)),
        page.getByRole('link', { name: '[ Cancel ]' }).click(),
      ]);
      assert.equal(res.status(), 403);
      assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Sign-in was cancelled');
      assert.ok((await page.locator('main').innerText()).includes('federation.denied'));
      assert.equal(callback.requests.length, 0);
    } finally {
      await context.close();
      await callback.close();
    }
  });

  test('screenshot: the sign-in page with an identity provider', async () => {
    const dir = env('BROWSER_TEST_SCREENSHOTS');
    await mkdir(dir, { recursive: true });
    const redirectUri = 'http://127.0.0.1/callback';
    const client = await registerClient('Example MCP Client', redirectUri);
    const request = authorizeRequest(client.client_id, redirectUri);
    const context = await newContext(browser, { width: 1280, height: 800 });
    const page = await context.newPage();
    try {
      await page.goto(request.url.href);
      assert.ok(await page.getByRole('button', { name: 'Sign in with Test OP' }).isVisible());
      assert.ok(await page.getByLabel('Password').isVisible(), 'the password form stays (password_login = true)');
      await page.evaluate((id) => {
        const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
          if (n.nodeValue.includes(id)) n.nodeValue = n.nodeValue.replaceAll(id, '7c1e0f9a-4b52-4d0e-9a1f-3e8b6d2c5a47');
        }
      }, client.client_id);
      const png = await page.screenshot({ fullPage: true, animations: 'disabled', caret: 'hide' });
      const target = path.join(dir, 'login-identity-provider-desktop.png');
      const old = await readFile(target).catch(() => null);
      if (!old || !old.equals(png)) await writeFile(target, png);
      assert.equal(png.subarray(1, 4).toString(), 'PNG');
    } finally {
      await context.close();
    }
  });
});
