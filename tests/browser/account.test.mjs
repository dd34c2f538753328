// The account page (/account) in a real browser: sign-in first when not
// signed in and back to the page, the application the user just allowed
// listed with its scope and dates, Revoke (the page says so, the
// application is gone, its access token is refused at the MCP endpoint),
// the layout at phone and desktop widths, and the screenshots
// docs/images/account-{phone,desktop}.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import {
  ISSUER, RESOURCE, authorizeRequest, env, exchangeCode, isLoginPage, launchChromium, newContext,
  registerClient, signIn, startCallbackServer,
} from './lib/harness.mjs';

const USER = env('BROWSER_TEST_USER');
const PASSWORD = env('BROWSER_TEST_PASSWORD');
const PHONE = { width: 360, height: 740 };
const DESKTOP = { width: 1280, height: 800 };
const CLIENT_NAME = 'Example MCP Client';

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

const accountUrl = () => new URL('/account', ISSUER()).href;

/** The status of an MCP initialize with `token`. */
async function mcpStatus(token) {
  const res = await fetch(RESOURCE(), {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      accept: 'application/json, text/event-stream',
      'content-type': 'application/json',
    },
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'account-test', version: '1' } },
    }),
  });
  await res.body?.cancel();
  return res.status;
}

/** In `page` (signed in), allows a new client named `name`; returns its access token. */
async function allowClient(page, name) {
  const callback = await startCallbackServer();
  try {
    const client = await registerClient({ clientName: name, redirectUri: callback.redirectUri });
    const request = authorizeRequest(client.client_id, callback.redirectUri);
    await page.goto(request.url.href);
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(callback.redirectUri), { waitUntil: 'load' }),
      page.getByRole('button', { name: 'Allow', exact: true }).click(),
    ]);
    const code = new URL(page.url()).searchParams.get('code');
    const tok = await exchangeCode({ clientId: client.client_id, code, redirectUri: callback.redirectUri, verifier: request.verifier });
    assert.equal(tok.status, 200, JSON.stringify(tok.body));
    return tok.body.access_token;
  } finally {
    await callback.close();
  }
}

/** Revokes every application on the account page (a clean slate for the pictures). */
async function revokeAll(page) {
  await page.goto(accountUrl());
  for (let n = await revokeButtons(page).count(); n > 0; n = await revokeButtons(page).count()) {
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), revokeButtons(page).first().click()]);
  }
}

const revokeButtons = (page) => page.getByRole('button', { name: 'Revoke', exact: true });

/** No horizontal scroll; the card and the buttons inside the viewport; buttons >= 40 px tall on a phone. */
async function checkLayout(page, what, phone) {
  const vw = page.viewportSize().width;
  const { scrollWidth, card } = await page.evaluate(() => {
    const r = document.querySelector('main.card').getBoundingClientRect();
    return { scrollWidth: document.scrollingElement.scrollWidth, card: { left: r.left, right: r.right } };
  });
  assert.ok(scrollWidth <= vw, `${what}: horizontal scroll (scrollWidth ${scrollWidth} > ${vw})`);
  assert.ok(card.left >= 0 && card.right <= vw, `${what}: the card leaves the viewport`);
  for (const b of await revokeButtons(page).all()) {
    const box = await b.boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= vw, `${what}: a Revoke button is cut off`);
    if (phone) assert.ok(box.height >= 40, `${what}: a Revoke button is ${box.height} px tall`);
  }
}

describe('the account page in Chromium', () => {
  test('not signed in: sign in, back to the account page; Revoke ends the application', async () => {
    const context = await newContext(browser, DESKTOP);
    const page = await context.newPage();
    try {
      const res = await page.goto(accountUrl());
      assert.equal(res.status(), 200);
      assert.ok(await isLoginPage(page), 'the sign-in page shows first');
      await signIn(page, USER, PASSWORD);
      assert.equal(page.url(), accountUrl(), 'back to the account page');
      assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Your account');

      const token = await allowClient(page, 'Revoke Me Client');
      assert.equal(await mcpStatus(token), 200, 'the new token works');
      await page.goto(accountUrl());
      const entry = page.locator('li.app', { hasText: 'Revoke Me Client' });
      assert.equal(await entry.count(), 1, 'the application is listed');
      const text = await entry.innerText();
      assert.match(text, /self-registered/);
      assert.match(text, /Scopes\s+mcp/);
      assert.match(text, /Granted\s+\d{4}-\d\d-\d\d \d\d:\d\d UTC/);

      await Promise.all([
        page.waitForNavigation({ waitUntil: 'load' }),
        entry.getByRole('button', { name: 'Revoke', exact: true }).click(),
      ]);
      assert.equal(await page.getByRole('status').textContent(), 'Revoked access for Revoke Me Client.');
      assert.equal(await page.locator('li.app', { hasText: 'Revoke Me Client' }).count(), 0, 'gone from the page');
      assert.equal(await mcpStatus(token), 401, 'its token is refused');

      // Sign out from the account page: the next visit asks to sign in.
      await Promise.all([
        page.waitForNavigation({ waitUntil: 'load' }),
        page.getByRole('button', { name: 'Sign out', exact: true }).click(),
      ]);
      await page.goto(accountUrl());
      assert.ok(await isLoginPage(page), 'signed out');
    } finally {
      await context.close();
    }
  });

  test('layout at phone and desktop widths; screenshots for docs/images/', async () => {
    const dir = env('BROWSER_TEST_SCREENSHOTS');
    await mkdir(dir, { recursive: true });
    const context = await newContext(browser, DESKTOP);
    const page = await context.newPage();
    try {
      await page.goto(accountUrl());
      await signIn(page, USER, PASSWORD);
      await revokeAll(page);
      await allowClient(page, CLIENT_NAME);
      for (const [file, viewport] of [['account-phone.png', PHONE], ['account-desktop.png', DESKTOP]]) {
        await page.setViewportSize(viewport);
        await page.goto(accountUrl());
        await checkLayout(page, file, viewport === PHONE);
        assert.equal(await page.locator('li.app').count(), 1);
        // Fixed dates, so that the pictures do not change from run to run.
        await page.evaluate(() => {
          const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
          for (let n = walker.nextNode(); n; n = walker.nextNode()) {
            n.nodeValue = n.nodeValue.replace(/\d{4}-\d\d-\d\d \d\d:\d\d UTC/g, '2026-12-01 09:30 UTC');
          }
        });
        const png = await page.screenshot({ fullPage: true, animations: 'disabled', caret: 'hide' });
        assert.equal(png.readUInt32BE(16), viewport.width, `${file} width`);
        const target = path.join(dir, file);
        const old = await readFile(target).catch(() => null);
        if (!old || !old.equals(png)) await writeFile(target, png);
      }
      await revokeAll(page);
    } finally {
      await context.close();
    }
  });
});
