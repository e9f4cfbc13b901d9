// browser-refused.mjs: the demo chat page when the server refuses its
// connection; run by TestBrowserDemoRefused (cmd/pondsocket), whose server
// is at its connection limit until the driver asks
// ({"ev":"need","what":"free"}).
//
// Environment: PONDSOCKET_URL (the page), REASON (text the page must show),
// CHROMIUM, ARTIFACTS, TIMEOUT_MS. Output: browser-lib.mjs's lines.

import { budget, emit, fail, main, newPage, shot, step } from './browser-lib.mjs';

const url = process.env.PONDSOCKET_URL;
const reason = process.env.REASON;
if (!url || !reason) fail('PONDSOCKET_URL and REASON are required');
budget(120_000);

// Chromium logs each refused upgrade and the probe's answer as errors:
// here they are the point.
const refusals = (t) => /WebSocket connection to .* failed|status of 503/.test(t);

await main([new URL(url).port], async (browser) => {
  const { page } = await newPage(browser, 'zoe', refusals);

  await step('zoe joins while the server is full', async () => {
    await page.goto(url);
    await page.getByLabel('Your name', { exact: true }).fill('zoe');
    await page.getByLabel('Room', { exact: true }).fill('full');
    await page.getByRole('button', { name: 'Join' }).click();
  });

  await step('after a few attempts the page says why', async () => {
    // attempts at 0, 1 and 3 s (the back-off), then the probe
    const note = page.locator('#refused', { hasText: reason });
    await note.waitFor({ timeout: 30_000 });
    const text = await note.textContent();
    if (!text.includes('The server refused the connection') || !text.includes('HTTP 503')) throw new Error(`note: ${text}`);
    await page.locator('#conn', { hasText: 'refused' }).waitFor();
  });

  await step('screenshot', () => shot(page, 'demo-refused.png'));

  await step('once the server has room the page connects and the note goes', async () => {
    emit({ ev: 'need', what: 'free' });
    // the back-off is at 4 s, then 8 s
    await page.locator('#conn', { hasText: 'connected' }).waitFor({ timeout: 30_000 });
    await page.locator('#refused').waitFor({ state: 'hidden' });
    await page.locator('#presence li', { hasText: 'zoe' }).waitFor();
  });

  await step('screenshot after connecting', () => shot(page, 'demo-refused-then-connected.png'));
});
