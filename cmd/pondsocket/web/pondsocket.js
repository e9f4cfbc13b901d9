// pondsocket.js: a small PondSocket client for browsers, over the
// browser's own WebSocket (the protocol is shared/PROTOCOL.md §1–§3).
//
//   const socket = new PondSocket('/api/socket', { username: 'ann' });
//   const room = socket.channel('/chat/lobby', { username: 'ann' });
//   room.addEventListener('message', (e) => console.log(e.detail.event, e.detail.payload));
//   room.addEventListener('presence', (e) => console.log(e.detail.presence));
//   room.join();
//   socket.connect();
//   room.send('message', { text: 'hi' });
//
// The socket reconnects with back-off (1 s, 2 s, 4 s … 30 s) and joined
// channels join again; messages sent meanwhile wait (the last 100).
//
// A browser hides why a WebSocket upgrade was refused. After PROBE_AFTER
// attempts in a row that ended before the server's CONNECT, the socket asks
// the same URL once more as an event stream (the SSE transport runs the
// same checks and the same connection handler, and its refusal is an
// ordinary response a page can read) and reports the answer as a "refused"
// event: detail {status, message}, or null once a connection succeeds.

const MAX_BACKOFF = 30_000;
const CONNECT_TIMEOUT = 10_000;
const MAX_QUEUED = 100;
const PROBE_AFTER = 3;
const PROBE_TIMEOUT = 5_000;

// uuid returns a random RFC 4122 v4 id. crypto.randomUUID exists only in
// secure contexts; getRandomValues works on plain http too.
function uuid() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// PondSocket is one connection to an endpoint. Events: "state" (detail:
// "connecting", "open", "reconnecting" or "closed").
export class PondSocket extends EventTarget {
  #url;
  #ws = null;
  #state = 'closed';
  #wanted = false;
  #attempt = 0;
  #retry = 0;
  #channels = new Map();
  #failures = 0; // attempts in a row that ended before CONNECT
  #probeURL;
  #refused = null;

  // connectionId is the id other users see this connection as (from the
  // server's CONNECT message), or "" before it.
  connectionId = '';

  constructor(endpoint, params = {}) {
    super();
    const u = new URL(endpoint, location.href);
    if (u.protocol === 'http:') u.protocol = 'ws:';
    if (u.protocol === 'https:') u.protocol = 'wss:';
    u.search = new URLSearchParams(params).toString();
    this.#url = u.href;
    u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
    this.#probeURL = u.href;
  }

  get state() {
    return this.#state;
  }

  // refused is the server's last answer to the probe ({status, message}),
  // or null.
  get refused() {
    return this.#refused;
  }

  connect() {
    if (!this.#wanted) {
      this.#wanted = true;
      this.#open();
    }
    return this;
  }

  disconnect() {
    this.#wanted = false;
    this.#failures = 0;
    this.#setRefused(null);
    clearTimeout(this.#retry);
    for (const ch of this.#channels.values()) ch._close();
    this.#channels.clear();
    const ws = this.#ws;
    this.#ws = null;
    ws?.close(1000);
    this.#setState('closed');
  }

  // channel returns the channel called name, created with the join
  // parameters params on first use. Nothing is sent before join().
  channel(name, params = {}) {
    let ch = this.#channels.get(name);
    if (!ch) {
      ch = new Channel(this, name, params);
      this.#channels.set(name, ch);
    }
    return ch;
  }

  #open() {
    this.#setState(this.#attempt ? 'reconnecting' : 'connecting');
    const ws = new WebSocket(this.#url);
    this.#ws = ws;
    const timeout = setTimeout(() => ws.close(), CONNECT_TIMEOUT);
    ws.onmessage = (e) => {
      if (this.#ws !== ws || typeof e.data !== 'string') return;
      // A frame may hold several messages, one JSON object per line.
      for (const line of e.data.split('\n')) {
        if (!line.trim()) continue;
        let msg;
        try {
          msg = JSON.parse(line);
        } catch {
          continue;
        }
        if (msg.action === 'CONNECT' && msg.event === 'CONNECTION') clearTimeout(timeout);
        this.#dispatch(msg);
      }
    };
    let greeted = false;
    ws.addEventListener('message', () => { greeted = true; }, { once: true });
    ws.onclose = () => {
      clearTimeout(timeout);
      if (this.#ws !== ws) return;
      this.#ws = null;
      this.#failures = greeted ? 0 : this.#failures + 1;
      if (this.#wanted && this.#failures >= PROBE_AFTER) this.#probe();
      for (const ch of this.#channels.values()) ch._stall();
      if (!this.#wanted) {
        this.#setState('closed');
        return;
      }
      const delay = Math.min(1000 * 2 ** this.#attempt, MAX_BACKOFF);
      this.#attempt++;
      this.#setState('reconnecting');
      this.#retry = setTimeout(() => this.#open(), delay);
    };
  }

  // #probe asks the endpoint why it refuses: an event-stream GET runs the
  // checks and the handler an upgrade runs, and its refusal is readable.
  // An accepted stream (the WebSocket is blocked on the way, by a proxy)
  // is closed at once.
  async #probe() {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), PROBE_TIMEOUT);
    let refused = null;
    try {
      const r = await fetch(this.#probeURL, { headers: { Accept: 'text/event-stream' }, cache: 'no-store', signal: ctl.signal });
      if (r.ok) {
        refused = { status: 0, message: 'the server accepts the connection over HTTP, but the WebSocket fails on the way (a proxy?)' };
      } else {
        refused = { status: r.status, message: (await r.text()).trim() || r.statusText };
      }
    } catch {
      refused = { status: 0, message: 'the server cannot be reached' };
    } finally {
      clearTimeout(timer);
      ctl.abort();
    }
    if (!this.#wanted || this.#state === 'open') return;
    this.#setRefused(refused);
  }

  #setRefused(r) {
    if (r === this.#refused) return;
    this.#refused = r;
    this.dispatchEvent(new CustomEvent('refused', { detail: r }));
  }

  #dispatch(msg) {
    if (msg.action === 'CONNECT' && msg.event === 'CONNECTION') {
      this.#attempt = 0;
      this.#setRefused(null);
      this.connectionId = msg.payload?.connectionId ?? '';
      this.#setState('open');
      for (const ch of this.#channels.values()) ch._connected();
      return;
    }
    this.#channels.get(msg.channelName)?._receive(msg);
  }

  // _send writes one message if the connection is open (the server has
  // sent CONNECT) and reports whether it did.
  _send(msg) {
    if (this.#state !== 'open' || !this.#ws) return false;
    this.#ws.send(JSON.stringify(msg));
    return true;
  }

  _forget(ch) {
    if (this.#channels.get(ch.name) === ch) this.#channels.delete(ch.name);
  }

  #setState(s) {
    if (s === this.#state) return;
    this.#state = s;
    this.dispatchEvent(new CustomEvent('state', { detail: s }));
  }
}

// Channel is one channel of a PondSocket. Events: "state" (detail: "idle",
// "joining", "joined", "stalled", "declined" or "closed"), "message"
// (detail: {action, event, payload, requestId}), "presence" (detail:
// {event, changed, presence}, presence being the complete list) and
// "declined" (detail: the server's error payload).
export class Channel extends EventTarget {
  #socket;
  #params;
  #state = 'idle';
  #joinId = '';
  #queue = [];

  // presence is the latest complete presence list of the channel.
  presence = [];

  constructor(socket, name, params) {
    super();
    this.#socket = socket;
    this.name = name;
    this.#params = params;
  }

  get state() {
    return this.#state;
  }

  join() {
    if (this.#state === 'idle' || this.#state === 'declined') {
      this.#setState('joining');
      this.#sendJoin();
    }
    return this;
  }

  leave() {
    if (this.#state === 'joined') {
      this.#socket._send({ action: 'LEAVE_CHANNEL', event: 'LEAVE_CHANNEL', channelName: this.name, requestId: uuid(), payload: {} });
    }
    this._close();
    this.#socket._forget(this);
  }

  // send broadcasts event with payload (an object) on the channel; before
  // the channel is joined the message waits.
  send(event, payload = {}) {
    const msg = { action: 'BROADCAST', event, channelName: this.name, requestId: uuid(), payload };
    if (this.#state === 'joined' && this.#socket._send(msg)) return;
    this.#queue.push(msg);
    if (this.#queue.length > MAX_QUEUED) this.#queue.shift();
  }

  #sendJoin() {
    this.#joinId = uuid();
    this.#socket._send({ action: 'JOIN_CHANNEL', event: 'JOIN_CHANNEL', channelName: this.name, requestId: this.#joinId, payload: this.#params });
  }

  _connected() {
    if (this.#state === 'joining' || this.#state === 'stalled') {
      this.#setState('joining');
      this.#sendJoin();
    }
  }

  _stall() {
    if (this.#state === 'joined' || this.#state === 'joining') this.#setState('stalled');
  }

  _close() {
    this.#queue = [];
    this.presence = [];
    this.#setState('closed');
  }

  _receive(msg) {
    if (this.#state === 'joining') {
      // Only the answer to our join counts; nothing precedes it.
      if (msg.requestId !== this.#joinId) return;
      if (msg.action === 'SYSTEM' && msg.event === 'ACKNOWLEDGE') {
        this.#setState('joined');
        const queued = this.#queue;
        this.#queue = [];
        for (const m of queued) this.send(m.event, m.payload);
      } else if (msg.action === 'ERROR' || msg.event === 'UNAUTHORIZED') {
        this.#setState('declined');
        this.dispatchEvent(new CustomEvent('declined', { detail: msg.payload ?? {} }));
      }
      return;
    }
    if (this.#state !== 'joined') return;
    if (msg.action === 'PRESENCE') {
      const p = msg.payload ?? {};
      this.presence = Array.isArray(p.presence) ? p.presence : [];
      this.dispatchEvent(new CustomEvent('presence', { detail: { event: msg.event, changed: p.changed ?? {}, presence: this.presence } }));
      return;
    }
    const { action, event, payload, requestId } = msg;
    this.dispatchEvent(new CustomEvent('message', { detail: { action, event, payload: payload ?? {}, requestId } }));
  }

  #setState(s) {
    if (s === this.#state) return;
    this.#state = s;
    this.dispatchEvent(new CustomEvent('state', { detail: s }));
  }
}
