// browser-admin.mjs drives the admin page of cmd/pondsocket in Chromium;
// run by TestBrowserAdmin (cmd/pondsocket/admin_test.go), which has
// connected USERS to CHANNEL before and sends traffic when asked
// ({"ev":"need","what":"traffic"}).
//
// Environment: ADMIN_URL (http://host:port/admin/), API_KEY, CHANNEL,
// USERS (comma-separated user ids), CHROMIUM, ARTIFACTS, TIMEOUT_MS.
// Output: browser-lib.mjs's lines.

import { budget, emit, fail, main, newPage, shot, step } from './browser-lib.mjs';

const url = process.env.ADMIN_URL;
const key = process.env.API_KEY;
const channel = process.env.CHANNEL;
const users = (process.env.USERS || '').split(',').filter(Boolean);
if (!url || !key || !channel || !users.length) fail('ADMIN_URL, API_KEY, CHANNEL and USERS are required');
budget(120_000);

// number reads a figure as the page shows it ("1,234.5").
const number = async (loc) => Number((await loc.textContent()).replace(/,/g, ''));

await main([new URL(url).port], async (browser) => {
  const { page } = await newPage(browser, 'admin', (t) => t.includes('401'));
  const row = page.locator(`#channel-list tr[data-channel="${channel}"]`);

  await step('the page asks for the key', async () => {
    await page.goto(url);
    await page.getByRole('heading', { name: 'API key' }).waitFor();
    await page.locator('#dash').waitFor({ state: 'hidden' });
  });

  await step('a wrong key is refused and said so', async () => {
    await page.getByLabel("The server's api.key").fill('not-the-key');
    await page.getByRole('button', { name: 'Open' }).click();
    await page.locator('#key-error', { hasText: 'Wrong API key' }).waitFor();
    await page.locator('#dash').waitFor({ state: 'hidden' });
  });

  await step('the right key opens the dashboard', async () => {
    await page.getByLabel("The server's api.key").fill(key);
    await page.getByRole('button', { name: 'Open' }).click();
    await page.locator('#dash').waitFor();
    await page.locator('#live', { hasText: 'live' }).waitFor();
  });

  await step(`it shows ${users.length} connections and ${channel} with ${users.length} members`, async () => {
    await page.locator('#connections', { hasText: new RegExp(`^${users.length}$`) }).waitFor();
    await row.locator('td.members', { hasText: new RegExp(`^${users.length}$`) }).waitFor();
    await page.locator('#channels', { hasText: /^1$/ }).waitFor();
  });

  await step('choosing the channel lists its presence by user id', async () => {
    await row.getByRole('button', { name: channel }).click();
    await page.locator('#pres-channel', { hasText: channel }).waitFor();
    for (const u of users) await page.locator(`#presence li[data-id="${u}"]`).waitFor();
    const n = await page.locator('#presence li').count();
    if (n !== users.length) throw new Error(`presence lists ${n} ids, want ${users.length}`);
  });

  await step('the node list shows this node, ready', async () => {
    await page.locator('#nodes li', { hasText: 'this node' }).filter({ hasText: 'ready' }).waitFor();
  });

  await step('rates are zero while nothing happens', async () => {
    await page.locator('#rate-in', { hasText: /^0$/ }).waitFor();
  });

  await step('screenshot', () => shot(page, 'admin-idle.png'));

  await step('rates become non-zero with traffic', async () => {
    emit({ ev: 'need', what: 'traffic' });
    await page.waitForFunction(() => {
      const v = (id) => Number(document.getElementById(id).textContent.replace(/,/g, ''));
      return v('rate-in') > 0 && v('rate-out') > 0;
    }, null, { timeout: 30_000 });
    // the plot has drawn lines
    await page.waitForFunction(() => document.querySelector('#plot polyline.in')?.getAttribute('points')?.split(' ').length > 3);
    emit({ ev: 'rates', in: await number(page.locator('#rate-in')), out: await number(page.locator('#rate-out')) });
  });

  await step('screenshot with traffic', () => shot(page, 'admin-traffic.png'));

  await step('a reload keeps the key (this tab only)', async () => {
    await page.reload();
    await page.locator('#dash').waitFor();
    await page.locator('#connections', { hasText: new RegExp(`^${users.length}$`) }).waitFor();
  });

  await step('"Forget key" signs out', async () => {
    await page.getByRole('button', { name: 'Forget key' }).click();
    await page.getByRole('heading', { name: 'API key' }).waitFor();
    const stored = await page.evaluate(() => sessionStorage.length);
    if (stored !== 0) throw new Error(`sessionStorage still holds ${stored} items`);
  });
});
