// The demo chat page. It talks to the demo application of cmd/pondsocket:
// channel /chat/:roomId tracks {username, status} presence; events
// "message" (to everyone), "typing" (to everyone else) and "status".
import { PondSocket } from './pondsocket.js';

const $ = (id) => document.getElementById(id);
const ui = {
  conn: $('conn'),
  joinView: $('join-view'),
  joinForm: $('join-form'),
  name: $('name'),
  room: $('room'),
  chatView: $('chat-view'),
  roomTitle: $('room-title'),
  status: $('status'),
  leave: $('leave'),
  messages: $('messages'),
  typing: $('typing'),
  sendForm: $('send-form'),
  text: $('text'),
  presence: $('presence'),
  count: $('count'),
  refused: $('refused'),
};

const ROOM = /^[A-Za-z0-9_.-]{1,64}$/;
const TYPING_SHOWN = 3000;
const TYPING_EVERY = 2000;
const MAX_MESSAGES = 500;

let socket = null;
let channel = null;
let me = '';
let lastTyping = 0;
const typers = new Map(); // name → timer

const params = new URLSearchParams(location.search);
if (ROOM.test(params.get('room') ?? '')) ui.room.value = params.get('room');
ui.name.focus();

ui.joinForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const name = ui.name.value.trim();
  const room = ui.room.value.trim();
  if (!name) return ui.name.focus();
  if (!ROOM.test(room)) return ui.room.focus();
  join(name, room);
});

ui.sendForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const text = ui.text.value.trim();
  if (!text || !channel) return;
  channel.send('message', { text, from: me, id: socket.connectionId, at: Date.now() });
  ui.text.value = '';
  lastTyping = 0;
});

ui.text.addEventListener('input', () => {
  const now = Date.now();
  if (channel?.state === 'joined' && ui.text.value.trim() && now - lastTyping > TYPING_EVERY) {
    lastTyping = now;
    channel.send('typing', { from: me });
  }
});

ui.status.addEventListener('change', () => channel?.send('status', { status: ui.status.value }));
ui.leave.addEventListener('click', leave);

function join(name, room) {
  me = name;
  socket = new PondSocket('/api/socket', { username: name });
  socket.addEventListener('state', showState);
  socket.addEventListener('refused', (e) => showRefused(e.detail));
  channel = socket.channel(`/chat/${room}`, { username: name });
  channel.addEventListener('state', showState);
  channel.addEventListener('presence', (e) => onPresence(e.detail));
  channel.addEventListener('message', (e) => onMessage(e.detail));
  channel.addEventListener('declined', (e) => notice(`Could not join: ${e.detail.message ?? 'declined'}`));
  channel.join();
  socket.connect();

  ui.roomTitle.textContent = `#${room}`;
  document.title = `#${room} · PondSocket chat`;
  ui.status.value = 'online';
  ui.joinView.hidden = true;
  ui.chatView.hidden = false;
  history.replaceState(null, '', `?room=${encodeURIComponent(room)}`);
  ui.text.focus();
}

function leave() {
  channel?.leave();
  socket?.disconnect();
  channel = socket = null;
  for (const t of typers.values()) clearTimeout(t);
  typers.clear();
  ui.messages.replaceChildren();
  ui.presence.replaceChildren();
  ui.count.textContent = '';
  ui.typing.textContent = '';
  showRefused(null);
  ui.chatView.hidden = true;
  ui.joinView.hidden = false;
  document.title = 'PondSocket chat';
  showState();
  ui.room.focus();
}

// showRefused says why the server refuses the connection (the socket
// learns it after a few failed attempts, see pondsocket.js), or hides the
// note (null).
function showRefused(r) {
  ui.refused.hidden = !r;
  ui.refused.textContent = !r ? '' :
    r.status ? `The server refused the connection: ${r.message} (HTTP ${r.status}). Trying again…` :
    `Cannot connect: ${r.message}. Trying again…`;
  showState();
}

function showState() {
  const s = socket?.state ?? 'closed';
  const c = channel?.state;
  let label = 'offline';
  let state = 'closed';
  if (s === 'open' && c === 'joined') [label, state] = ['connected', 'open'];
  else if (s === 'open' && c === 'declined') [label, state] = ['not allowed in', 'closed'];
  else if (s === 'open' || s === 'connecting') [label, state] = ['connecting…', 'connecting'];
  else if (s === 'reconnecting' && socket?.refused?.status) [label, state] = ['refused', 'refused'];
  else if (s === 'reconnecting') [label, state] = ['reconnecting…', 'connecting'];
  ui.conn.textContent = label;
  ui.conn.dataset.state = state;
}

function onPresence({ event, changed, presence }) {
  renderPresence(presence);
  const who = changed?.username;
  if (!who || who === me) return;
  if (event === 'JOIN') notice(`${who} joined`);
  if (event === 'LEAVE') {
    notice(`${who} left`);
    stopTyping(who);
  }
}

function renderPresence(list) {
  const people = [...list].sort((a, b) => String(a.username).localeCompare(String(b.username)));
  ui.presence.replaceChildren(
    ...people.map((p) => {
      const li = el('li', 'person');
      li.dataset.status = p.status ?? 'online';
      const name = el('span', 'name', String(p.username ?? '?'));
      if (p.username === me) name.append(el('span', 'you', ' (you)'));
      li.append(el('span', 'dot'), name, el('span', 'status', String(p.status ?? '')));
      return li;
    }),
  );
  ui.count.textContent = `(${people.length})`;
}

function onMessage({ event, payload }) {
  if (event === 'message') {
    const from = String(payload.from ?? 'someone');
    stopTyping(from);
    const mine = payload.id && payload.id === socket?.connectionId;
    const li = el('li', mine ? 'msg mine' : 'msg');
    const meta = el('p', 'meta');
    meta.append(el('span', 'from', mine ? `${from} (you)` : from));
    const at = new Date(Number(payload.at) || Date.now());
    const time = el('time', 'at', at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }));
    time.dateTime = at.toISOString();
    meta.append(time);
    li.append(meta, el('p', 'text', String(payload.text ?? '')));
    append(li);
  } else if (event === 'typing') {
    const from = String(payload.from ?? '');
    if (!from || from === me) return;
    clearTimeout(typers.get(from));
    typers.set(from, setTimeout(() => stopTyping(from), TYPING_SHOWN));
    renderTyping();
  }
}

function stopTyping(name) {
  if (!typers.has(name)) return;
  clearTimeout(typers.get(name));
  typers.delete(name);
  renderTyping();
}

function renderTyping() {
  const names = [...typers.keys()];
  ui.typing.textContent =
    names.length === 0 ? '' :
    names.length === 1 ? `${names[0]} is typing…` :
    names.length === 2 ? `${names[0]} and ${names[1]} are typing…` :
    'Several people are typing…';
}

function notice(text) {
  append(el('li', 'notice', text));
}

function append(li) {
  const list = ui.messages;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(li);
  while (list.children.length > MAX_MESSAGES) list.firstElementChild.remove();
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}
