// mcpgate's sign-in and consent pages in a real browser (headless Debian
// Chromium driven by playwright-core): the whole authorization flow, a wrong
// password, Deny, a form without its CSRF token, sign-out, the layout at phone and
// desktop widths, and the screenshots in docs/images/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import {
  ISSUER, authorizeRequest, env, exchangeCode, isLoginPage, launchChromium, newContext,
  registerClient, signIn, startCallbackServer,
} from './lib/harness.mjs';

const USER = env('BROWSER_TEST_USER');
const PASSWORD = env('BROWSER_TEST_PASSWORD');
const COOKIE = 'mcpgate_session'; // plain-http issuer: no __Host- prefix

const PHONE = { width: 360, height: 740 };
const DESKTOP = { width: 1280, height: 800 };

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

/** A fresh browser profile (no cookies) with one page; closed by the caller. */
async function freshPage(viewport = DESKTOP) {
  const context = await newContext(browser, viewport);
  const page = await context.newPage();
  return { context, page };
}

/** Registers a client redirecting to a new local callback server, and starts an authorization request. */
async function setUp(clientName) {
  const callback = await startCallbackServer();
  const client = await registerClient({ clientName, redirectUri: callback.redirectUri });
  const request = authorizeRequest(client.client_id, callback.redirectUri);
  return { callback, client, request };
}

/** Opens the authorization URL in a fresh profile, checks the sign-in page and signs in. */
async function toConsentPage(request, viewport = DESKTOP) {
  const { context, page } = await freshPage(viewport);
  const res = await page.goto(request.url.href);
  assert.equal(res.status(), 200, 'GET authorize shows a page');
  assert.ok(await isLoginPage(page), 'the sign-in page shows first');
  await signIn(page, USER, PASSWORD);
  await assertConsentPage(page);
  return { context, page };
}

async function assertConsentPage(page) {
  assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Allow access?', `consent page expected at ${page.url()}`);
}

function button(page, name) {
  return page.getByRole('button', { name, exact: true });
}

describe('sign-in and consent pages in Chromium', () => {
  test('sign in, consent, Allow: the browser lands on the redirect URI with code, state and iss', async () => {
    const { callback, client, request } = await setUp('Browser Test Client');
    const { context, page } = await freshPage();
    try {
      const res = await page.goto(request.url.href);
      assert.equal(res.status(), 200);
      assert.ok(await isLoginPage(page), 'the sign-in page');
      assert.match(await page.title(), /^Sign in · /);
      assert.equal(await page.locator('.client-name').textContent(), 'Browser Test Client', 'the sign-in page names the client');
      assert.ok(await page.getByRole('button', { name: 'Sign in' }).isVisible());

      await signIn(page, USER, PASSWORD);
      await assertConsentPage(page);
      const text = await page.locator('main').innerText();
      assert.equal(await page.locator('.client-name').textContent(), 'Browser Test Client', 'the consent page names the client');
      // mcpgate names the host without the port ("127.0.0.1").
      // A loopback redirect is shown with its port (it tells local apps apart).
      const redirectHost = new URL(callback.redirectUri).host;
      assert.ok(text.includes(`You will be sent back to ${redirectHost}.`), `the consent page names the redirect host ${redirectHost}:\n${text}`);
      assert.equal((await page.locator('ul.scopes li code').allTextContents()).join(' '), 'mcp', 'the consent page lists the scope mcp');
      assert.ok(text.includes(USER), 'the consent page says who is signed in');
      assert.ok(text.includes(client.client_id), 'the consent page shows the client_id');
      assert.ok(await page.locator('.warning').isVisible(), 'loopback redirect: the warning shows');

      await Promise.all([
        page.waitForURL((u) => u.href.startsWith(callback.redirectUri), { waitUntil: 'load' }),
        button(page, 'Allow').click(),
      ]);
      const back = Object.fromEntries(new URL(page.url()).searchParams);
      assert.ok(back.code, `code in ${page.url()}`);
      assert.equal(back.state, request.state);
      assert.equal(back.iss, ISSUER(), 'RFC 9207 iss');
      assert.equal(await page.locator('#callback').textContent(), 'callback received');
      assert.equal(callback.requests.length, 1, 'the callback server got exactly one request');
      assert.deepEqual(callback.requests[0], { method: 'GET', path: '/callback', query: back });

      // The code is good: the token endpoint exchanges it (PKCE verifier).
      const tok = await exchangeCode({ clientId: client.client_id, code: back.code, redirectUri: callback.redirectUri, verifier: request.verifier });
      assert.equal(tok.status, 200, JSON.stringify(tok.body));
      assert.ok(tok.body.access_token);
    } finally {
      await context.close();
      await callback.close();
    }
  });

  test('a wrong password shows the error on the sign-in page and opens no session', async () => {
    const { callback, request } = await setUp('Wrong Password Client');
    const { context, page } = await freshPage();
    try {
      await page.goto(request.url.href);
      assert.ok(await isLoginPage(page));
      // The first visit gets a cookie that only anchors the CSRF token.
      const anchor = (await context.cookies()).find((c) => c.name === COOKIE);
      assert.ok(anchor, `the sign-in page sets ${COOKIE} (CSRF anchor)`);

      await page.getByLabel('Username').fill(USER);
      await page.getByLabel('Password').fill(`${PASSWORD}-wrong`);
      const [res] = await Promise.all([
        page.waitForNavigation({ waitUntil: 'load' }),
        page.getByRole('button', { name: 'Sign in' }).click(),
      ]);
      assert.equal(res.status(), 401);
      assert.ok(await isLoginPage(page), 'still the sign-in page');
      const alert = page.getByRole('alert');
      assert.equal(await alert.textContent(), 'Wrong username or password.');
      assert.ok(await alert.isVisible());
      assert.equal(await page.getByLabel('Username').inputValue(), USER, 'the username is kept');
      assert.equal(await page.getByLabel('Password').inputValue(), '', 'the password is not');

      const cookies = (await context.cookies()).filter((c) => c.name === COOKIE);
      assert.equal(cookies.length, 1);
      assert.equal(cookies[0].value, anchor.value, 'no session cookie was set (the cookie is still the anchor)');

      // The next visit still shows the sign-in page, not the consent page.
      await page.goto(request.url.href);
      assert.ok(await isLoginPage(page), 'not signed in after a wrong password');
      assert.equal(await page.getByRole('alert').count(), 0, 'no error on a fresh visit');
      assert.equal(callback.requests.length, 0, 'nothing reached the client');
    } finally {
      await context.close();
      await callback.close();
    }
  });

  test('Deny returns to the redirect URI with error=access_denied and the state', async () => {
    const { callback, request } = await setUp('Deny Client');
    const { context, page } = await toConsentPage(request);
    try {
      await Promise.all([
        page.waitForURL((u) => u.href.startsWith(callback.redirectUri), { waitUntil: 'load' }),
        button(page, 'Deny').click(),
      ]);
      const back = Object.fromEntries(new URL(page.url()).searchParams);
      assert.equal(back.error, 'access_denied');
      assert.equal(back.state, request.state);
      assert.equal(back.code, undefined, 'no code');
      assert.equal(back.iss, ISSUER());
      assert.equal(callback.requests.length, 1);
      assert.deepEqual(callback.requests[0].query, back);
    } finally {
      await context.close();
      await callback.close();
    }
  });

  test('a consent form posted without its CSRF token is refused (403, no code)', async () => {
    const { callback, request } = await setUp('CSRF Client');
    const { context, page } = await toConsentPage(request);
    try {
      const removed = await page.evaluate(() => {
        const input = document.querySelector('form input[name="csrf_token"]');
        input?.remove();
        return Boolean(input);
      });
      assert.ok(removed, 'the consent form had a csrf_token input');
      const [res] = await Promise.all([
        page.waitForNavigation({ waitUntil: 'load' }),
        button(page, 'Allow').click(),
      ]);
      assert.equal(res.status(), 403);
      assert.equal(new URL(page.url()).origin, new URL(ISSUER()).origin, 'the browser stays on mcpgate');
      assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'This form cannot be accepted');
      const text = await page.locator('main').innerText();
      assert.match(text, /security token is missing or wrong/, text);
      assert.ok(!/[?&]code=/.test(page.url()), 'no code');
      assert.equal(callback.requests.length, 0, 'nothing reached the client');
      assert.equal(await page.locator('form').count(), 0, 'the error page has no form');
    } finally {
      await context.close();
      await callback.close();
    }
  });

  test('"Not you? Sign out" on the consent page ends the session and returns to the sign-in page of the same request', async () => {
    const { callback, request } = await setUp('Sign-out Client');
    const { context, page } = await toConsentPage(request);
    try {
      const session = (await context.cookies()).find((c) => c.name === COOKIE);
      assert.ok(session, 'signed in: a session cookie');
      const text = await page.locator('main').innerText();
      assert.match(text, /Not you\?/, text);
      const [res] = await Promise.all([
        page.waitForNavigation({ waitUntil: 'load' }),
        button(page, 'Sign out').click(),
      ]);
      assert.equal(res.status(), 200);
      assert.ok(await isLoginPage(page), `the sign-in page again, at ${page.url()}`);
      const url = new URL(page.url());
      assert.equal(url.pathname, '/v1/oauth/authorize');
      assert.equal(url.searchParams.get('state'), request.state, 'the same authorization request');
      assert.equal(url.searchParams.get('client_id'), request.url.searchParams.get('client_id'));
      const after = (await context.cookies()).find((c) => c.name === COOKIE);
      assert.notEqual(after?.value, session.value, 'the session cookie is gone');
      // The old session no longer opens the consent page.
      await context.addCookies([{ ...session }]);
      await page.goto(request.url.href);
      assert.ok(await isLoginPage(page), 'the old session cookie signs no one in');
      assert.equal(callback.requests.length, 0, 'nothing reached the client');
    } finally {
      await context.close();
      await callback.close();
    }
  });

  test('pages fit phone (360x740) and desktop (1280x800) widths', async () => {
    const { callback, request } = await setUp('Layout Client');
    // A client whose name is one long unbreakable word must not widen the page either.
    const longName = `Very${'Long'.repeat(20)}ClientName`;
    const long = await registerClient({ clientName: longName, redirectUri: callback.redirectUri });
    const longRequest = authorizeRequest(long.client_id, callback.redirectUri);
    const { context, page } = await freshPage(PHONE);
    try {
      const pages = [
        ['sign-in', request.url.href, ['Sign in']],
        ['consent', request.url.href, ['Allow', 'Deny']],
        ['consent (long client name)', longRequest.url.href, ['Allow', 'Deny']],
        ['error', unknownClientUrl(callback.redirectUri), []],
      ];
      for (const [name, url, buttons] of pages) {
        if (name === 'consent') {
          // Sign in once (the page is still the sign-in page from the first round).
          await page.setViewportSize(DESKTOP);
          await page.goto(url);
          await signIn(page, USER, PASSWORD);
          await assertConsentPage(page);
        }
        for (const viewport of [PHONE, DESKTOP]) {
          await page.setViewportSize(viewport);
          await page.goto(url);
          await checkLayout(page, `${name} page at ${viewport.width}x${viewport.height}`, buttons, viewport === PHONE);
        }
      }
      assert.equal(callback.requests.length, 0);
    } finally {
      await context.close();
      await callback.close();
    }
  });

  test('screenshots for docs/images/', async () => {
    const dir = env('BROWSER_TEST_SCREENSHOTS');
    await mkdir(dir, { recursive: true });
    // A fixed client (name, website, port-less loopback redirect) so that the
    // pictures do not change from run to run; only its client_id is random,
    // and is replaced on the page by a fixed example before each shot.
    const redirectUri = 'http://127.0.0.1/callback';
    const client = await registerClient({ clientName: 'Example MCP Client', redirectUri, clientUri: 'https://client.example.com' });
    const request = authorizeRequest(client.client_id, redirectUri);
    const { context, page } = await freshPage(PHONE);
    const shots = [];
    const shoot = async (file, viewport) => {
      await page.setViewportSize(viewport);
      await page.goto(file.startsWith('error') ? unknownClientUrl(redirectUri) : request.url.href);
      await page.evaluate((id) => {
        const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
        for (let n = walker.nextNode(); n; n = walker.nextNode()) {
          if (n.nodeValue.includes(id)) n.nodeValue = n.nodeValue.replaceAll(id, '7c1e0f9a-4b52-4d0e-9a1f-3e8b6d2c5a47');
        }
      }, client.client_id);
      const png = await page.screenshot({ fullPage: true, animations: 'disabled', caret: 'hide' });
      const target = path.join(dir, file);
      const old = await readFile(target).catch(() => null);
      if (!old || !old.equals(png)) await writeFile(target, png);
      shots.push(file);
      return png;
    };
    try {
      await shoot('login-phone.png', PHONE);
      assert.ok(await isLoginPage(page));
      await shoot('login-desktop.png', DESKTOP);
      await signIn(page, USER, PASSWORD);
      await shoot('consent-phone.png', PHONE);
      await assertConsentPage(page);
      assert.ok((await page.locator('main').innerText()).includes('https://client.example.com'), 'the consent page shows the client website');
      await shoot('consent-desktop.png', DESKTOP);
      await shoot('error-desktop.png', DESKTOP);
      assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'This sign-in link cannot be used');
      for (const file of shots) {
        const png = await readFile(path.join(dir, file));
        assert.equal(png.subarray(1, 4).toString(), 'PNG', `${file} is a PNG`);
        const width = png.readUInt32BE(16);
        assert.equal(width, file.includes('phone') ? PHONE.width : DESKTOP.width, `${file} width`);
      }
    } finally {
      await context.close();
    }
  });
});

/** An authorization URL with a client_id mcpgate does not know: its error page. */
function unknownClientUrl(redirectUri) {
  const url = new URL('/v1/oauth/authorize', ISSUER());
  url.search = new URLSearchParams({
    response_type: 'code', client_id: 'no-such-client', redirect_uri: redirectUri,
    code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM', code_challenge_method: 'S256',
    state: 'xyz', scope: 'mcp',
  }).toString();
  return url.href;
}

/**
 * No horizontal scroll, the card inside the viewport and centred, the
 * buttons visible (and at least 40 px tall on a phone).
 */
async function checkLayout(page, what, buttons, phone) {
  const vw = page.viewportSize().width;
  const { scrollWidth, card } = await page.evaluate(() => {
    const r = document.querySelector('main.card').getBoundingClientRect();
    return { scrollWidth: document.scrollingElement.scrollWidth, card: { left: r.left, right: r.right } };
  });
  assert.ok(scrollWidth <= vw, `${what}: horizontal scroll (scrollWidth ${scrollWidth} > ${vw})`);
  assert.ok(card.left >= 0 && card.right <= vw, `${what}: the card (${card.left}..${card.right}) leaves the viewport`);
  assert.ok(Math.abs(card.left - (vw - card.right)) <= 1, `${what}: the card is not centred (${card.left}..${card.right} of ${vw})`);
  for (const name of buttons) {
    const b = button(page, name);
    assert.equal(await b.count(), 1, `${what}: one "${name}" button`);
    assert.ok(await b.isVisible(), `${what}: "${name}" is visible`);
    const box = await b.boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= vw, `${what}: "${name}" is cut off (${box.x}+${box.width} of ${vw})`);
    if (phone) assert.ok(box.height >= 40, `${what}: "${name}" is ${box.height} px tall, less than 40`);
  }
}
