// browser-lib.mjs: what the browser drivers (browser-admin.mjs,
// browser-sse.mjs, browser-refused.mjs) share: the line protocol to the Go
// test on stdout, steps with a time budget, Chromium's launch and pages
// whose console errors fail the run.
//
// Output: one JSON object per line: {"ev":"step","name","ms"},
// {"ev":"console"|"pageerror","page","type","text"},
// {"ev":"screenshot","path"}, {"ev":"need","what"} (the Go test acts),
// last {"ev":"done"} or {"ev":"fail","step","message"}.

import { chromium } from 'playwright-core';
import path from 'node:path';

export const STEP = 15_000;
export const emit = (o) => process.stdout.write(JSON.stringify(o) + '\n');

let current = 'start';
const problems = [];
let deadline = 0;

export function fail(message, code = 1) {
  emit({ ev: 'fail', step: current, message: String(message) });
  process.exit(code);
}

// budget fails the run after ms (TIMEOUT_MS overrides).
export function budget(ms) {
  const total = Number(process.env.TIMEOUT_MS) || ms;
  deadline = setTimeout(() => fail(`the whole run took longer than ${total} ms`, 2), total);
}

export async function step(name, fn) {
  current = name;
  const t0 = Date.now();
  const r = await fn();
  if (problems.length) throw new Error(`page problems: ${problems.join(' | ')}`);
  emit({ ev: 'step', name, ms: Date.now() - t0 });
  return r;
}

// launch starts Chromium allowed to reach the given ports (a random port
// may be on its list of unsafe ones).
export function launch(ports) {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      `--explicitly-allowed-ports=${ports.join(',')}`,
    ],
    timeout: 30_000,
  });
}

// newPage opens a tab in a context of its own (own storage). Console
// errors and page errors fail the run unless allowed(text) says they are
// expected (a refused connection logs one).
export async function newPage(browser, who, allowed = () => false) {
  const ctx = await browser.newContext({
    viewport: { width: 1100, height: 800 },
    colorScheme: 'light',
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  const page = await ctx.newPage();
  page.setDefaultTimeout(STEP);
  page.on('console', (m) => {
    if (m.type() !== 'error' && m.type() !== 'warning') return;
    emit({ ev: 'console', page: who, type: m.type(), text: m.text() });
    if (m.type() === 'error' && !allowed(m.text())) problems.push(`${who} console: ${m.text()}`);
  });
  page.on('pageerror', (e) => {
    emit({ ev: 'pageerror', page: who, text: String(e) });
    problems.push(`${who} page error: ${e}`);
  });
  return { ctx, page };
}

export async function shot(page, name) {
  const file = path.join(process.env.ARTIFACTS || process.cwd(), name);
  await page.screenshot({ path: file, fullPage: true });
  emit({ ev: 'screenshot', path: file });
}

// main runs body(browser) and reports done or the failure.
export async function main(ports, body) {
  let browser;
  try {
    browser = await step('launch chromium', () => launch(ports));
    await body(browser);
    await step('close chromium', () => browser.close());
    clearTimeout(deadline);
    emit({ ev: 'done' });
  } catch (e) {
    clearTimeout(deadline);
    await browser?.close().catch(() => {});
    fail(e?.stack || e);
  }
}
