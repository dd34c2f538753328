// The admin console (/admin) in a real browser: sign-in first and back to the
// console, every page of it for an admin (alice, made admin by run.sh), an
// action with its notice, a user's open MCP session and GET stream listed under
// their grant and ended from the page, the 403 page for a user without the role (bob), the
// layout at phone width (nothing wider than the screen but the tables' own
// scroll boxes), and the screenshots docs/images/admin-*.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import {
  ISSUER, RESOURCE, authorizeRequest, env, exchangeCode, launchChromium, newContext, registerClient, signIn,
  startCallbackServer,
} from './lib/harness.mjs';

const ADMIN = env('BROWSER_TEST_USER');
const ADMIN_PASSWORD = env('BROWSER_TEST_PASSWORD');
const OTHER = env('BROWSER_TEST_REMOTE_USER');
const OTHER_PASSWORD = env('BROWSER_TEST_REMOTE_PASSWORD');

const PHONE = { width: 360, height: 740 };
const DESKTOP = { width: 1280, height: 800 };

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

const url = (p) => new URL(p, ISSUER()).href;

async function h1(page) {
  return (await page.getByRole('heading', { level: 1 }).textContent()).trim();
}

/** A fresh profile signed in at /admin as `user`. */
async function signedIn(user, password, viewport = DESKTOP) {
  const context = await newContext(browser, viewport);
  const page = await context.newPage();
  const res = await page.goto(url('/admin'));
  assert.equal(res.status(), 200);
  assert.equal(await h1(page), 'Sign in', 'the sign-in page shows first');
  await signIn(page, user, password);
  return { context, page };
}

/** `user` signs in at the authorization endpoint and allows a new client named `name`; its access token. */
async function allowClient(user, password, name) {
  const callback = await startCallbackServer();
  const context = await newContext(browser, DESKTOP);
  try {
    const page = await context.newPage();
    const client = await registerClient({ clientName: name, redirectUri: callback.redirectUri });
    const request = authorizeRequest(client.client_id, callback.redirectUri);
    await page.goto(request.url.href);
    await signIn(page, user, password);
    await Promise.all([
      page.waitForURL((u) => u.href.startsWith(callback.redirectUri), { waitUntil: 'load' }),
      page.getByRole('button', { name: 'Allow', exact: true }).click(),
    ]);
    const code = new URL(page.url()).searchParams.get('code');
    const tok = await exchangeCode({ clientId: client.client_id, code, redirectUri: callback.redirectUri, verifier: request.verifier });
    assert.equal(tok.status, 200, JSON.stringify(tok.body));
    return tok.body.access_token;
  } finally {
    await context.close();
    await callback.close();
  }
}

/**
 * Opens a Streamable HTTP session with `token` (initialize, initialized) and
 * its GET stream, left open; returns a function that closes the stream.
 */
async function openSession(token) {
  const headers = {
    authorization: `Bearer ${token}`,
    accept: 'application/json, text/event-stream',
    'content-type': 'application/json',
  };
  const init = await fetch(RESOURCE(), {
    method: 'POST',
    headers,
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'browser-test', version: '1' } },
    }),
  });
  assert.equal(init.status, 200);
  const session = init.headers.get('mcp-session-id');
  await init.text();
  const more = { ...headers, 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' };
  const done = await fetch(RESOURCE(), {
    method: 'POST', headers: more, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }),
  });
  assert.equal(done.status, 202);
  const abort = new AbortController();
  const stream = await fetch(RESOURCE(), {
    headers: { ...more, accept: 'text/event-stream' }, signal: abort.signal,
  });
  assert.equal(stream.status, 200);
  return () => abort.abort();
}

/** Whether the page is no wider than its viewport. */
async function fitsWidth(page) {
  return page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
}

describe('admin console in Chromium', () => {
  test('an admin signs in, lands on the console and walks every page', async () => {
    const { context, page } = await signedIn(ADMIN, ADMIN_PASSWORD);
    try {
      assert.equal(new URL(page.url()).pathname, '/admin', 'back at the console after signing in');
      assert.equal(await h1(page), 'Users');
      const main = await page.locator('main').innerText();
      assert.ok(main.includes(ADMIN) && main.includes(OTHER), `both users are listed:\n${main}`);
      await page.getByRole('link', { name: OTHER, exact: true }).click();
      assert.equal(await h1(page), OTHER);
      for (const [link, title] of [['Clients', 'Clients'], ['Upstreams', 'Upstreams'], ['Audit log', 'Audit log'], ['Users', 'Users']]) {
        await page.getByRole('navigation').getByRole('link', { name: link, exact: true }).click();
        assert.equal(await h1(page), title, `the ${link} page`);
      }
      // Search, then an action with its notice: bob joins and leaves a group.
      await page.getByLabel('Search').fill(OTHER);
      await page.getByRole('button', { name: 'Search' }).click();
      assert.equal(await page.locator('tbody tr').count(), 1, 'one user matches');
      await page.getByRole('link', { name: OTHER, exact: true }).click();
      await page.getByLabel('Add to group').fill('browser-testers');
      await page.getByRole('button', { name: 'Add', exact: true }).click();
      assert.match(await page.getByRole('status').textContent(), /Added bob to group browser-testers\./);
      await page.getByRole('listitem').filter({ hasText: 'browser-testers' }).getByRole('button', { name: 'Remove' }).click();
      assert.match(await page.getByRole('status').textContent(), /Removed bob from group browser-testers\./);
      // The audit log shows both, filtered by user.
      await page.goto(url(`/admin/audit?user=${OTHER}`));
      const audit = await page.locator('tbody').innerText();
      assert.ok(audit.includes('user.group_add') && audit.includes('user.group_remove'), audit);
    } finally {
      await context.close();
    }
  });

  test('a user without the admin role gets the 403 page', async () => {
    const { context, page } = await signedIn(OTHER, OTHER_PASSWORD);
    try {
      assert.equal(await h1(page), 'Admins only');
      const res = await page.goto(url('/admin/clients'));
      assert.equal(res.status(), 403);
      assert.equal(await page.locator('form').count(), 0, 'no forms');
    } finally {
      await context.close();
    }
  });

  test('every page fits a phone; screenshots for docs/images/', async () => {
    const dir = env('BROWSER_TEST_SCREENSHOTS');
    await mkdir(dir, { recursive: true });
    const { context, page } = await signedIn(ADMIN, ADMIN_PASSWORD, PHONE);
    const shoot = async (file, pathname, viewport) => {
      await page.setViewportSize(viewport);
      const res = await page.goto(url(pathname));
      assert.equal(res.status(), 200, pathname);
      assert.ok(await fitsWidth(page), `${pathname} fits ${viewport.width} px`);
      const png = await page.screenshot({ fullPage: true, animations: 'disabled', caret: 'hide' });
      const target = path.join(dir, file);
      const old = await readFile(target).catch(() => null);
      if (!old || !old.equals(png)) await writeFile(target, png);
      assert.equal(png.subarray(1, 4).toString(), 'PNG');
    };
    // bob has a client with an open MCP session and its GET stream.
    const token = await allowClient(OTHER, OTHER_PASSWORD, 'Session Viewer');
    const closeStream = await openSession(token);
    try {
      await page.goto(url(`/admin/user?name=${OTHER}`));
      const main = await page.locator('main').innerText();
      assert.ok(main.includes('Open MCP sessions') && main.includes('Streamable HTTP GET stream'), main);
      assert.ok(main.includes('2025-06-18'), main);
      await shoot('admin-users-phone.png', '/admin', PHONE);
      await shoot('admin-users-desktop.png', '/admin', DESKTOP);
      await shoot('admin-user-phone.png', `/admin/user?name=${OTHER}`, PHONE);
      await shoot('admin-user-desktop.png', `/admin/user?name=${OTHER}`, DESKTOP);
      await shoot('admin-clients-desktop.png', '/admin/clients', DESKTOP);
      await shoot('admin-upstreams-desktop.png', '/admin/upstreams', DESKTOP);
      await shoot('admin-audit-desktop.png', '/admin/audit', DESKTOP);
      // End the session: the notice, and it is gone from the page.
      await page.goto(url(`/admin/user?name=${OTHER}`));
      await page.locator('form').filter({ has: page.locator('input[name="session"]') })
        .getByRole('button', { name: 'End' }).click();
      assert.match(await page.getByRole('status').textContent(), /MCP session ended\./);
      assert.ok(!(await page.locator('main').innerText()).includes('Open MCP sessions'));
    } finally {
      closeStream();
      await context.close();
    }
  });
});
