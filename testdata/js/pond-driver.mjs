// pond-driver.mjs drives the published PondSocket client
// (@eleven-am/pondsocket-client) for Go tests, over the same line protocol as
// ws-driver.mjs: one JSON command per stdin line, one JSON event per stdout
// line.
//
// Commands:
//   {"op":"connect","url":"ws://127.0.0.1:1/api/socket","params":{"token":"x"}}
//   {"op":"connect","transport":"sse","url":"http://127.0.0.1:1/api/socket",...}
//       the client's SSEClient instead of PondClient; it needs a global
//       EventSource (Node: run with --experimental-eventsource)
//   {"op":"join","channel":"/chat/a","params":{...}}
//   {"op":"send","channel":"/chat/a","event":"message","payload":{...}}
//   {"op":"request","channel":"/chat/a","event":"ping","payload":{},"id":"r1"}
//   {"op":"leave","channel":"/chat/a"}
//   {"op":"disconnect"}   {"op":"exit"}
// Events:
//   {"ev":"conn","state":"CONNECTED"}
//   {"ev":"state","channel":c,"state":"JOINED"}
//   {"ev":"message","channel":c,"event":e,"payload":{...}}
//   {"ev":"join"|"leave","channel":c,"presence":{...}}      (onJoin/onLeave)
//   {"ev":"users","channel":c,"users":[...]}                (onUsersChange)
//   {"ev":"presence","channel":c,"payload":{...}}           (onPresenceChange)
//   {"ev":"response","id":r,"payload":{...}}                (sendForResponse)
//   {"ev":"ack","op":op} after each command; {"ev":"error","message":m}
import { createRequire } from 'node:module';
import readline from 'node:readline';

const require = createRequire(import.meta.url);
const { PondClient, SSEClient } = require('@eleven-am/pondsocket-client');

const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
process.on('uncaughtException', (e) => out({ ev: 'error', message: 'uncaught: ' + (e && e.message) }));
setTimeout(() => process.exit(0), 120000).unref();

let client = null;
const channels = new Map();

function watch(name, ch) {
  ch.onChannelStateChange((state) => out({ ev: 'state', channel: name, state }));
  ch.onMessage((event, payload) => out({ ev: 'message', channel: name, event, payload }));
  ch.onJoin((presence) => out({ ev: 'join', channel: name, presence }));
  ch.onLeave((presence) => out({ ev: 'leave', channel: name, presence }));
  ch.onUsersChange((users) => out({ ev: 'users', channel: name, users }));
  ch.onPresenceChange((payload) => out({ ev: 'presence', channel: name, payload }));
}

function handle(cmd) {
  switch (cmd.op) {
    case 'connect':
      if (cmd.transport === 'sse') {
        if (typeof EventSource === 'undefined') throw new Error('no global EventSource (run node with --experimental-eventsource)');
        client = new SSEClient(cmd.url, cmd.params || {}, cmd.options || {});
      } else {
        client = new PondClient(cmd.url, cmd.params || {}, cmd.options || {});
      }
      client.onConnectionChange((state) => out({ ev: 'conn', state }));
      client.connect();
      break;
    case 'join': {
      let ch = channels.get(cmd.channel);
      if (!ch) {
        ch = client.createChannel(cmd.channel, cmd.params || {});
        channels.set(cmd.channel, ch);
        watch(cmd.channel, ch);
      }
      ch.join();
      break;
    }
    case 'send':
      channels.get(cmd.channel).sendMessage(cmd.event, cmd.payload || {});
      break;
    case 'request':
      channels.get(cmd.channel).sendForResponse(cmd.event, cmd.payload || {})
        .then((payload) => out({ ev: 'response', id: cmd.id, payload }));
      break;
    case 'leave':
      channels.get(cmd.channel).leave();
      break;
    case 'disconnect':
      client.disconnect();
      break;
    case 'exit':
      process.exit(0);
      break;
    default:
      out({ ev: 'error', op: cmd.op, message: 'unknown op' });
      return;
  }
  out({ ev: 'ack', op: cmd.op });
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (!line.trim()) return;
  try {
    handle(JSON.parse(line));
  } catch (e) {
    out({ ev: 'error', message: String(e && e.message) });
  }
});
rl.on('close', () => process.exit(0));
