// browser-sse.mjs: the published client's SSEClient on Chromium's own
// EventSource, from pages of other origins than the server's; run by
// TestBrowserSSECrossOrigin (cmd/pondsocket/browser_sse_test.go).
//
// Environment: SERVER (the endpoint, http://127.0.0.1:P/api/socket),
// ALLOWED_PAGE and REFUSED_PAGE (pages on two other origins, the first in
// the server's allowed origins, both loading the bundled client as the
// global PondSocketSSE), ROOM, CHROMIUM, ARTIFACTS, TIMEOUT_MS.
// Output: browser-lib.mjs's lines.

import { budget, fail, main, newPage, shot, step } from './browser-lib.mjs';

const server = process.env.SERVER;
const allowedPage = process.env.ALLOWED_PAGE;
const refusedPage = process.env.REFUSED_PAGE;
const room = process.env.ROOM || '/chat/cors';
if (!server || !allowedPage || !refusedPage) fail('SERVER, ALLOWED_PAGE and REFUSED_PAGE are required');
budget(120_000);

// start runs in the page: an SSEClient to server, its events kept in
// window.st and listed on the page (for the screenshot).
function start([server, username]) {
  const st = { conn: [], errors: 0, users: [], messages: [], channel: '' };
  window.st = st;
  const show = (text) => {
    const li = document.createElement('li');
    li.textContent = text;
    document.getElementById('log').append(li);
  };
  document.getElementById('origin').textContent = `${username}: page on ${location.origin}, server ${server}`;
  const client = new PondSocketSSE.SSEClient(server, { username });
  window.client = client;
  client.onConnectionChange((s) => { st.conn.push(s); show(`connection: ${s}`); });
  client.onError(() => { st.errors++; });
  client.connect();
}

function join([room, username]) {
  const st = window.st;
  const ch = window.client.createChannel(room, { username });
  window.ch = ch;
  ch.onChannelStateChange((s) => { st.channel = s; });
  ch.onUsersChange((users) => {
    st.users = users.map((u) => u.username).sort();
    document.getElementById('users').textContent = `in ${room}: ${st.users.join(', ')}`;
  });
  ch.onMessage((event, payload) => {
    if (event !== 'message') return;
    st.messages.push(payload.text);
    const li = document.createElement('li');
    li.textContent = `${payload.from}: ${payload.text}`;
    document.getElementById('log').append(li);
  });
  ch.join();
}

// probe POSTs a client message with an unknown id: the JSON POST with a
// custom header needs the CORS preflight; the answer's status is readable
// only when the server allowed the origin.
async function probe(server) {
  try {
    const r = await fetch(server, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Connection-ID': 'no-such-stream' }, body: '{}' });
    return `status ${r.status}`;
  } catch (e) {
    return `refused: ${e.name}`;
  }
}

// Chromium logs a 404 as an error: the probe's is meant, and the client's
// DELETE may arrive after its closed stream is gone (both are 404 by the
// protocol).
const notFound = (t) => t.includes('status of 404');
const connected = (page) => page.waitForFunction(() => window.st.conn.at(-1) === 'connected');
const users = (page, list) => page.waitForFunction((want) => window.st.users.join() === want, list.join());

await main([server, allowedPage, refusedPage].map((u) => new URL(u).port), async (browser) => {
  const open = async (who, url, allowed) => {
    const p = await newPage(browser, who, allowed);
    await p.page.goto(url);
    await p.page.waitForFunction(() => typeof PondSocketSSE?.SSEClient === 'function');
    if (new URL(p.page.url()).origin === new URL(server).origin) throw new Error('the page is on the server origin');
    return p;
  };

  const alice = await step('alice connects from an allowed origin', async () => {
    const p = await open('alice', allowedPage, notFound);
    await p.page.evaluate(start, [server, 'alice']);
    await connected(p.page);
    return p;
  });
  await step('alice joins', async () => {
    await alice.page.evaluate(join, [room, 'alice']);
    await alice.page.waitForFunction(() => window.st.channel === 'JOINED');
    await users(alice.page, ['alice']);
  });
  const bob = await step('bob connects and joins', async () => {
    const p = await open('bob', allowedPage, notFound);
    await p.page.evaluate(start, [server, 'bob']);
    await connected(p.page);
    await p.page.evaluate(join, [room, 'bob']);
    await p.page.waitForFunction(() => window.st.channel === 'JOINED');
    return p;
  });
  await step('each sees both in the presence list', async () => {
    await users(alice.page, ['alice', 'bob']);
    await users(bob.page, ['alice', 'bob']);
  });
  await step("alice's broadcast (a cross-origin POST) reaches both", async () => {
    await alice.page.evaluate(() => window.ch.sendMessage('message', { text: 'hello across origins', from: 'alice' }));
    for (const p of [alice, bob]) await p.page.waitForFunction(() => window.st.messages.includes('hello across origins'));
  });
  await step("bob's broadcast reaches alice", async () => {
    await bob.page.evaluate(() => window.ch.sendMessage('message', { text: 'hi alice', from: 'bob' }));
    await alice.page.waitForFunction(() => window.st.messages.includes('hi alice'));
  });
  await step('the preflight passes: a POST with an unknown id reads its 404', async () => {
    const got = await alice.page.evaluate(probe, server);
    if (got !== 'status 404') throw new Error(`POST from the allowed origin: ${got}`);
  });
  await step("bob disconnects (DELETE): he leaves alice's presence", async () => {
    await bob.page.evaluate(() => window.client.disconnect());
    await users(alice.page, ['alice']);
    await bob.ctx.close();
  });
  await step('screenshot', () => shot(alice.page, 'sse-cross-origin.png'));
  await step('alice disconnects', async () => {
    await alice.page.evaluate(() => window.client.disconnect());
    await alice.ctx.close();
  });

  // the refused origin: Chromium logs the CORS failures, which are the point
  const cors = (t) => /CORS|Failed to load resource|ERR_FAILED/.test(t);
  const eve = await step('a refused origin never connects', async () => {
    const p = await open('eve', refusedPage, cors);
    await p.page.evaluate(start, [server, 'eve']);
    // the client retries after 1 s and 2 s: three refusals
    await p.page.waitForFunction(() => window.st.errors >= 3, null, { timeout: 30_000 });
    const seen = await p.page.evaluate(() => window.st.conn);
    if (seen.includes('connected')) throw new Error(`states ${seen}`);
    await p.page.evaluate(() => window.client.disconnect());
    return p;
  });
  await step('the preflight is refused: the POST fails in the browser', async () => {
    const got = await eve.page.evaluate(probe, server);
    if (!got.startsWith('refused')) throw new Error(`POST from the refused origin: ${got}`);
  });
  await step('screenshot of the refused origin', () => shot(eve.page, 'sse-refused-origin.png'));
});
