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
// Output: one JSON object per line on stdout: {"ev":"step","name","ms"},
// {"ev":"console",...} and {"ev":"pageerror",...} from the pages,
// {"ev":"screenshot","path"}, and last {"ev":"done"} or
// {"ev":"fail","step","message"}. Exit status 0 only after "done".

import { chromium } from 'playwright-core';
import path from 'node:path';

const url = process.env.PONDSOCKET_URL;
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const artifacts = process.env.ARTIFACTS || process.cwd();
const room = process.env.ROOM || `room-${Math.random().toString(36).slice(2, 8)}`;
const total = Number(process.env.TIMEOUT_MS) || 90_000;
const STEP = 15_000;

const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');
let current = 'start';
const problems = [];

function fail(message, code = 1) {
  emit({ ev: 'fail', step: current, message: String(message) });
  process.exit(code);
}

if (!url) fail('PONDSOCKET_URL is not set');
const deadline = setTimeout(() => fail(`the whole run took longer than ${total} ms`, 2), total);

async function step(name, fn) {
  current = name;
  const t0 = Date.now();
  const r = await fn();
  if (problems.length) throw new Error(`page problems: ${problems.join(' | ')}`);
  emit({ ev: 'step', name, ms: Date.now() - t0 });
  return r;
}

// open a tab in a context of its own (its own cookies and storage), join
// the room as who and wait until the page shows who in the room.
async function open(browser, who) {
  const ctx = await browser.newContext({
    viewport: { width: 1100, height: 700 },
    colorScheme: 'light',
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  const page = await ctx.newPage();
  page.setDefaultTimeout(STEP);
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    emit({ ev: 'console', page: who, type: m.type(), text: m.text() });
    if (m.type() === 'error') problems.push(`${who} console: ${m.text()}`);
  });
  page.on('pageerror', (e) => {
    emit({ ev: 'pageerror', page: who, text: String(e) });
    problems.push(`${who} page error: ${e}`);
  });
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

async function shot(page, name) {
  const file = path.join(artifacts, name);
  await page.screenshot({ path: file });
  emit({ ev: 'screenshot', path: file });
}

let browser;
try {
  browser = await step('launch chromium', () =>
    chromium.launch({
      executablePath,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        // The server's random port may be on Chromium's list of unsafe ports.
        `--explicitly-allowed-ports=${new URL(url).port || 80}`,
      ],
      timeout: 30_000,
    }),
  );
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

  await step('close chromium', () => browser.close());
  clearTimeout(deadline);
  emit({ ev: 'done' });
} catch (e) {
  clearTimeout(deadline);
  await browser?.close().catch(() => {});
  fail(e?.stack || e);
}
