// The admin page of cmd/pondsocket. It polls the server API once a second
// with the key the operator entered (kept in this tab's sessionStorage):
// GET /api/stats for the counters, channels and nodes, and GET
// /api/presence for the chosen channel. Rates are the differences between
// successive counter snapshots, so the plot covers the time this page has
// been open (at most the last five minutes).

const $ = (id) => document.getElementById(id);
const STORE = 'pondsocket-admin-key';
const EVERY = 1000;
const HISTORY_MS = 5 * 60 * 1000;
const SVG = 'http://www.w3.org/2000/svg';

let key = sessionStorage.getItem(STORE) || '';
let timer = 0;
let run = 0; // bumped on sign-out: a late answer of an older run is ignored
let last = null; // previous /api/stats snapshot
let history = []; // {t, in, out} rates
let chosen = null; // {endpoint, name}

class AuthError extends Error {}

async function call(path) {
  const r = await fetch(path, { headers: { Authorization: `apikey ${key}` }, cache: 'no-store' });
  if (r.status === 401) throw new AuthError('wrong key');
  let body = {};
  try {
    body = await r.json();
  } catch {
    // a proxy's page, not the API
  }
  if (!r.ok) throw Object.assign(new Error(body.error || `HTTP ${r.status}`), { status: r.status });
  return body;
}

$('key-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  key = $('key').value.trim();
  if (!key) return;
  $('key-error').textContent = '';
  try {
    await call('/api/stats');
  } catch (err) {
    key = '';
    $('key-error').textContent = err instanceof AuthError
      ? 'Wrong API key: the server answered 401. Use the value of api.key in its configuration.'
      : `The server API did not answer: ${err.message}`;
    $('key').select();
    return;
  }
  sessionStorage.setItem(STORE, key);
  $('key').value = '';
  start();
});

$('forget').addEventListener('click', () => signOut(''));

function start() {
  run++;
  last = null;
  history = [];
  $('key-view').hidden = true;
  $('dash').hidden = false;
  $('forget').hidden = false;
  tick(run);
}

function signOut(message) {
  run++;
  clearTimeout(timer);
  key = '';
  sessionStorage.removeItem(STORE);
  $('dash').hidden = true;
  $('forget').hidden = true;
  $('key-view').hidden = false;
  $('key-error').textContent = message;
  setLive('off', 'not signed in');
  $('key').focus();
}

async function tick(mine) {
  try {
    const st = await call('/api/stats');
    if (mine !== run) return;
    show(st);
    await showPresence(mine);
    if (mine !== run) return;
    setLive('live', 'live');
  } catch (err) {
    if (mine !== run) return;
    if (err instanceof AuthError) {
      signOut('The server no longer accepts this key (401).');
      return;
    }
    setLive('error', `no answer: ${err.message}`);
  }
  timer = setTimeout(() => tick(mine), EVERY);
}

function setLive(state, text) {
  $('live').dataset.state = state;
  $('live').textContent = text;
}

const fmt = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });

function show(st) {
  $('connections').textContent = fmt.format(st.connections);
  $('channels').textContent = fmt.format(st.channels);
  if (last && st.time_ms > last.time_ms) {
    const dt = (st.time_ms - last.time_ms) / 1000;
    // a restarted server's counters start again: no negative rate
    const rin = Math.max(0, st.messages_in - last.messages_in) / dt;
    const rout = Math.max(0, st.messages_out - last.messages_out) / dt;
    history.push({ t: st.time_ms, in: rin, out: rout });
    while (history.length && history[0].t < st.time_ms - HISTORY_MS) history.shift();
    $('rate-in').textContent = fmt.format(rin);
    $('rate-out').textContent = fmt.format(rout);
    plot(st.time_ms);
  }
  last = st;
  channels(st.channel_list, st.more_channels);
  nodes(st);
  $('uptime').textContent = `Up ${duration(st.uptime_s)}; ${st.connections_accepted} connections accepted, ${st.connections_declined} declined.`;
}

function channels(list, more) {
  const rows = list.map((c) => {
    const tr = document.createElement('tr');
    tr.dataset.channel = c.name;
    const sel = chosen && chosen.name === c.name && chosen.endpoint === c.endpoint;
    tr.setAttribute('aria-selected', String(Boolean(sel)));
    const b = el('button', '', c.name);
    b.type = 'button';
    b.title = `${c.endpoint} ${c.name}`;
    b.addEventListener('click', () => {
      chosen = { endpoint: c.endpoint, name: c.name };
      for (const r of $('channel-list').children) r.setAttribute('aria-selected', String(r === tr));
      $('pres-channel').textContent = c.name;
      $('presence').replaceChildren();
      $('pres-note').textContent = '';
      showPresence(run).catch(() => {}); // a 401 shows at the next tick
    });
    const name = document.createElement('td');
    name.append(b);
    tr.append(name, el('td', 'n members', fmt.format(c.members)));
    return tr;
  });
  $('channel-list').replaceChildren(...rows);
  $('no-channels').hidden = list.length > 0;
  $('chan-more').textContent = more > 0 ? `(the ${list.length} busiest; ${more} more)` : '';
}

async function showPresence(mine) {
  if (!chosen) return;
  const want = chosen;
  const q = new URLSearchParams({ endpoint: want.endpoint, channel: want.name });
  let p;
  try {
    p = await call(`/api/presence?${q}`);
  } catch (err) {
    if (err instanceof AuthError) throw err;
    if (mine !== run || want !== chosen) return;
    $('presence').replaceChildren();
    $('pres-note').textContent = err.status === 404 ? 'The channel has no members on this node any more.' : err.message;
    return;
  }
  if (mine !== run || want !== chosen) return;
  const ids = Object.keys(p.presence || {}).sort();
  $('presence').replaceChildren(...ids.map((id) => {
    const li = el('li', '');
    li.dataset.id = id;
    const rest = { ...p.presence[id] };
    delete rest.id;
    li.append(el('span', 'id', id));
    if (Object.keys(rest).length) li.append(el('span', 'info', JSON.stringify(rest)));
    return li;
  }));
  $('pres-note').textContent = ids.length ? `${ids.length} present` : 'Nobody tracked in this channel (presence off, or no member).';
}

function nodes(st) {
  $('nodes').replaceChildren(...st.nodes.map((n) => {
    const li = el('li', '');
    li.dataset.node = n.id;
    li.append(el('span', 'id', n.id));
    if (n.self) {
      li.append(el('span', 'badge', 'this node'));
      li.append(st.ready ? el('span', 'badge ok', 'ready') : el('span', 'badge bad', st.ready_error || 'not ready'));
    } else {
      li.append(el('span', 'badge ok', 'heard from'));
    }
    return li;
  }));
}

// plot draws the rate history as two polylines, scaled to the largest rate
// seen, over the history's time (one to five minutes) ending at now (Unix
// ms).
function plot(now) {
  const svg = $('plot');
  const W = 600;
  const H = 160;
  const top = Math.max(1, ...history.map((h) => Math.max(h.in, h.out)));
  const scale = niceCeil(top);
  // the time axis grows with the history, from one minute to five
  const span = Math.min(HISTORY_MS, Math.max(60_000, now - history[0].t));
  const x = (t) => W - ((now - t) / span) * W;
  const y = (v) => H - 4 - (v / scale) * (H - 12);
  const line = (field, cls) => {
    const pl = document.createElementNS(SVG, 'polyline');
    pl.setAttribute('class', cls);
    pl.setAttribute('points', history.map((h) => `${x(h.t).toFixed(1)},${y(h[field]).toFixed(1)}`).join(' '));
    return pl;
  };
  const grid = [0.25, 0.5, 0.75].map((f) => {
    const g = document.createElementNS(SVG, 'line');
    g.setAttribute('class', 'grid');
    g.setAttribute('x1', '0');
    g.setAttribute('x2', String(W));
    g.setAttribute('y1', String(y(scale * f)));
    g.setAttribute('y2', String(y(scale * f)));
    return g;
  });
  svg.replaceChildren(...grid, line('out', 'out'), line('in', 'in'));
  $('plot-max').textContent = `last ${Math.round(span / 60_000)} min; top ${fmt.format(scale)}/s, lines every ${fmt.format(scale / 4)}/s`;
}

// niceCeil rounds v up to 1, 2 or 5 times a power of ten.
function niceCeil(v) {
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function duration(s) {
  s = Math.floor(s);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  if (m) return `${m} min ${s % 60} s`;
  return `${s} s`;
}

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

if (key) start();
else $('key').focus();
