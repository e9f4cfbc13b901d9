// browser-test.mjs drives the demo chat page of cmd/pondsocket in Debian's
// Chromium through playwright-core. It is run by the Go test
// cmd/pondsocket/browser_test.go; by hand:
//
//   PONDSOCKET_URL=http://127.0.0.1:8080/ ARTIFACTS=/tmp node testdata/js/browser-test.mjs
//
// Environment: PONDSOCKET_URL (the page), CHROMIUM (default
// /usr/bin/chromium), ARTIFACTS (folder for the screenshots, default the
// working directory), ROOM (default a random one), TIMEOUT_MS (the whole
// run, default 90000).
//
// Output: browser-lib.mjs's lines, one JSON object per line on stdout, last
// {"ev":"done"} or {"ev":"fail","step","message"}. Exit status 0 only
// after "done".

import { budget, fail, main, newPage, shot, step } from './browser-lib.mjs';

const url = process.env.PONDSOCKET_URL;
const room = process.env.ROOM || `room-${Math.random().toString(36).slice(2, 8)}`;

if (!url) fail('PONDSOCKET_URL is not set');
budget(90_000);

// open a tab in a context of its own (its own cookies and storage), join
// the room as who and wait until the page shows who in the room.
async function open(browser, who) {
  const { ctx, page } = await newPage(browser, who);
  await page.goto(url);
  await page.getByLabel('Your name', { exact: true }).fill(who);
  await page.getByLabel('Room', { exact: true }).fill(room);
  await page.getByRole('button', { name: 'Join' }).click();
  await person(page, who).waitFor();
  await page.locator('#conn', { hasText: 'connected' }).waitFor();
  return { ctx, page };
}

const person = (page, name) => page.locator('#presence li').filter({ has: page.locator('.name', { hasText: new RegExp(`^${name}\\b`) }) });
const message = (page, text) => page.locator('#messages li.msg', { hasText: text });

await main([new URL(url).port || 80], async (browser) => {
  const alice = await step('alice joins', () => open(browser, 'alice'));
  const bob = await step('bob joins', () => open(browser, 'bob'));

  await step('each sees the other in the presence list', async () => {
    await person(alice.page, 'bob').waitFor();
    await person(bob.page, 'alice').waitFor();
    await alice.page.locator('#messages .notice', { hasText: 'bob joined' }).waitFor();
  });

  await step('alice sees bob typing', async () => {
    await bob.page.getByLabel('Message', { exact: true }).pressSequentially('hello from bob');
    await alice.page.locator('#typing', { hasText: 'bob is typing' }).waitFor();
  });

  await step("bob's message reaches alice", async () => {
    await bob.page.getByLabel('Message', { exact: true }).press('Enter');
    await message(alice.page, 'hello from bob').waitFor();
    await message(bob.page, 'hello from bob').and(bob.page.locator('.mine')).waitFor();
    await alice.page.locator('#typing:empty').waitFor();
  });

  await step("alice's reply reaches bob", async () => {
    await alice.page.getByLabel('Message', { exact: true }).fill('hi bob, alice here');
    await alice.page.getByRole('button', { name: 'Send' }).click();
    await message(bob.page, 'hi bob, alice here').waitFor();
  });

  await step("alice's status reaches bob's presence list", async () => {
    await alice.page.getByLabel('Status', { exact: true }).selectOption('away');
    await person(bob.page, 'alice').and(bob.page.locator('[data-status="away"]')).waitFor();
  });

  await step('screenshot', () => shot(alice.page, 'chat.png'));

  await step("closing bob's tab removes bob from alice's presence list", async () => {
    await bob.ctx.close();
    await person(alice.page, 'bob').waitFor({ state: 'detached' });
    await alice.page.locator('#messages .notice', { hasText: 'bob left' }).waitFor();
    await person(alice.page, 'alice').waitFor();
  });

  await step('screenshot after bob left', () => shot(alice.page, 'after-leave.png'));

  await step('alice leaves', async () => {
    await alice.page.getByRole('button', { name: 'Leave' }).click();
    await alice.page.getByRole('heading', { name: 'Join a room' }).waitFor();
    await alice.page.locator('#conn', { hasText: 'offline' }).waitFor();
  });
});
