// The connections page (/connections, issue #19) in a real browser, at a
// third mcpgate (run.sh, step 4c) whose two `auth = "oauth"` upstreams,
// files and calendar, are the first mcpgate: sign in; Connect takes the
// browser to the upstream's own sign-in and consent and back ("Connected to
// files"); the page then shows files connected and calendar not; the
// layout at phone and desktop widths, the screenshots
// docs/images/connections-{phone,desktop}.png; Disconnect ends it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { ISSUER, env, isLoginPage, launchChromium, newContext, signIn } from './lib/harness.mjs';

const USER = env('BROWSER_TEST_USER');
const PASSWORD = env('BROWSER_TEST_PASSWORD');
const PHONE = { width: 360, height: 740 };
const DESKTOP = { width: 1280, height: 800 };

let browser;
before(async () => { browser = await launchChromium(); });
after(async () => { await browser?.close(); });

const connectionsUrl = () => new URL('/connections', env('BROWSER_TEST_CONN_ISSUER')).href;
const row = (page, name) => page.locator('li.connection', { has: page.getByRole('heading', { name, exact: true }) });
const status = async (page, name) => (await row(page, name).locator('p.status').textContent()).trim();

/** No horizontal scroll; the card and every button inside the viewport; buttons >= 40 px tall on a phone. */
async function checkLayout(page, what, phone) {
  const vw = page.viewportSize().width;
  const { scrollWidth, card } = await page.evaluate(() => {
    const r = document.querySelector('main.card').getBoundingClientRect();
    return { scrollWidth: document.scrollingElement.scrollWidth, card: { left: r.left, right: r.right } };
  });
  assert.ok(scrollWidth <= vw, `${what}: horizontal scroll (scrollWidth ${scrollWidth} > ${vw})`);
  assert.ok(card.left >= 0 && card.right <= vw, `${what}: the card leaves the viewport`);
  for (const b of await page.locator('li.connection button').all()) {
    const box = await b.boundingBox();
    assert.ok(box.x >= 0 && box.x + box.width <= vw, `${what}: a button is cut off`);
    if (phone) assert.ok(box.height >= 40, `${what}: a button is ${box.height} px tall`);
  }
}

async function submit(page, name, button) {
  await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    row(page, name).getByRole('button', { name: button, exact: true }).click(),
  ]);
}

describe('the connections page in Chromium', () => {
  test('connect through the upstream, screenshots at phone and desktop widths, disconnect', async () => {
    const dir = env('BROWSER_TEST_SCREENSHOTS');
    await mkdir(dir, { recursive: true });
    const context = await newContext(browser, DESKTOP);
    const page = await context.newPage();
    try {
      // Not signed in: the sign-in page says what it is for, then the page.
      const res = await page.goto(connectionsUrl());
      assert.equal(res.status(), 200);
      assert.ok(await isLoginPage(page), 'the sign-in page shows first');
      assert.match(await page.locator('main').innerText(), /to see your connections/);
      await signIn(page, USER, PASSWORD);
      assert.equal(page.url(), connectionsUrl(), 'back to the connections page');
      assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Connections');
      assert.equal(await status(page, 'files'), 'Not connected');
      assert.equal(await status(page, 'calendar'), 'Not connected');

      // Connect: the upstream's own sign-in and consent, then back.
      await submit(page, 'files', 'Connect');
      assert.ok(page.url().startsWith(ISSUER()), `at the upstream: ${page.url()}`);
      assert.ok(await isLoginPage(page), "the upstream's sign-in page");
      await signIn(page, USER, PASSWORD);
      await Promise.all([
        page.waitForURL((u) => u.href.startsWith(env('BROWSER_TEST_CONN_ISSUER')), { waitUntil: 'load' }),
        page.getByRole('button', { name: 'Allow', exact: true }).click(),
      ]);
      assert.equal(await page.getByRole('heading', { level: 1 }).textContent(), 'Connected to files');
      await Promise.all([
        page.waitForNavigation({ waitUntil: 'load' }),
        page.getByRole('link', { name: 'your connections page' }).click(),
      ]);
      assert.equal(page.url(), connectionsUrl());
      assert.equal(await status(page, 'files'), 'Connected');
      assert.equal(await status(page, 'calendar'), 'Not connected');
      assert.match(await row(page, 'files').innerText(), /Scopes\s+mcp/);
      assert.equal(await row(page, 'files').getByRole('button', { name: 'Disconnect', exact: true }).count(), 1);
      assert.equal(await row(page, 'calendar').getByRole('button', { name: 'Connect', exact: true }).count(), 1);

      for (const [file, viewport] of [['connections-phone.png', PHONE], ['connections-desktop.png', DESKTOP]]) {
        await page.setViewportSize(viewport);
        await page.goto(connectionsUrl());
        await checkLayout(page, file, viewport === PHONE);
        // Fixed dates and ports, so that the pictures do not change from run to run.
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

      // Disconnect: said so, and files is not connected any more.
      await page.setViewportSize(DESKTOP);
      await submit(page, 'files', 'Disconnect');
      assert.equal(await page.getByRole('status').textContent(), 'Disconnected from files.');
      assert.equal(await status(page, 'files'), 'Not connected');
      assert.equal(await status(page, 'calendar'), 'Not connected');
    } finally {
      await context.close();
    }
  });
});
