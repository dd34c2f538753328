// The "browser" mcp-remote opens: mcp-remote hands the authorization URL to
// the `open` package, whose xdg-open runs `$BROWSER <url>` (the test points
// $BROWSER at a two-line shell wrapper that runs this file). It drives
// headless Chromium through mcpgate's sign-in and consent pages and follows
// the redirect to mcp-remote's own localhost callback, then writes what it saw
// as JSON to $BROWSER_TEST_OPEN_LOG (its stdout and stderr go nowhere: xdg-open
// is started detached with stdio ignored).
//
//   node open-browser.mjs <authorization URL>
// Environment: BROWSER_TEST_REMOTE_USER, BROWSER_TEST_REMOTE_PASSWORD,
//   BROWSER_TEST_OPEN_LOG, BROWSER_TEST_CHROMIUM (optional).
import { appendFile } from 'node:fs/promises';
import { launchChromium, newContext } from './harness.mjs';

const url = process.argv[2];
const log = process.env.BROWSER_TEST_OPEN_LOG;
const report = { url, steps: [] };
let browser;
try {
  if (!url) throw new Error('usage: open-browser.mjs <url>');
  browser = await launchChromium();
  const page = await (await newContext(browser)).newPage();
  const step = async (name) => {
    report.steps.push({
      name,
      url: page.url(),
      heading: (await page.locator('h1').first().textContent({ timeout: 1000 }).catch(() => null)),
      clientName: await page.locator('.client-name').first().textContent({ timeout: 1000 }).catch(() => null),
    });
  };
  await page.goto(url);
  await step('authorize');
  await page.getByLabel('Username').fill(process.env.BROWSER_TEST_REMOTE_USER ?? '');
  await page.getByLabel('Password').fill(process.env.BROWSER_TEST_REMOTE_PASSWORD ?? '');
  await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    page.getByRole('button', { name: 'Sign in', exact: true }).click(),
  ]);
  await step('after sign-in');
  const issuerOrigin = new URL(url).origin;
  await Promise.all([
    page.waitForURL((u) => u.origin !== issuerOrigin, { waitUntil: 'load', timeout: 20_000 }),
    page.getByRole('button', { name: 'Allow', exact: true }).click(),
  ]);
  report.callbackUrl = page.url();
  report.callbackText = (await page.locator('body').innerText()).trim();
  report.ok = true;
} catch (e) {
  report.ok = false;
  report.error = String(e?.stack ?? e);
} finally {
  await browser?.close().catch(() => {});
  if (log) await appendFile(log, `${JSON.stringify(report)}\n`);
}
process.exit(report.ok ? 0 : 1);
