#!/usr/bin/env node
// ws-driver.mjs drives one WebSocket connection made with the npm `ws`
// client, following the line protocol of internal/testenv: one JSON command
// per line on stdin, one JSON event per line on stdout, logs on stderr.
//
// Commands:
//   {"op":"connect","url":"ws://...","headers":{...},"deflate":false}
//   {"op":"send","data":"...","b64":false,"binary":false,"fin":true}
//   {"op":"ping","data":"..."}
//   {"op":"close","code":1000,"reason":"bye"}
//   {"op":"raw","b64":"..."}          (bytes written as-is to the TCP socket)
//   {"op":"exit"}
// Events:
//   {"ev":"open"} {"ev":"message","data":"...","binary":false}
//   {"ev":"pong","data":"..."} {"ev":"close","code":1000,"reason":"..."}
//   {"ev":"error","message":"...","status":401,"op":"..."} {"ev":"ack","op":"..."}
//
// Commands are handled one at a time, in order; a command that follows
// "connect" waits until the opening handshake has finished. Each command is
// answered by exactly one "ack" or one "error" carrying its op. A connection
// that fails to open reports "error" (with the HTTP status of a refused
// upgrade) followed by "close" with code 1006. Binary payloads are base64.
// The driver exits when stdin closes, on "exit", or after 120 s.

import { createInterface } from 'node:readline';
import WebSocket from 'ws';

const LIFETIME_MS = 120_000;

setTimeout(() => {
  log('lifetime of 120 s exceeded, exiting');
  process.exit(3);
}, LIFETIME_MS);

function log(...args) {
  process.stderr.write(`[ws-driver] ${args.join(' ')}\n`);
}

function emit(ev) {
  // Writes to a pipe are synchronous on Linux, so a later process.exit()
  // cannot lose events.
  process.stdout.write(JSON.stringify(ev) + '\n');
}

function payload(cmd) {
  const data = cmd.data ?? '';
  return cmd.b64 ? Buffer.from(data, 'base64') : Buffer.from(String(data), 'utf8');
}

let ws = null;
let refused = false;

function connect(cmd) {
  return new Promise((resolve) => {
    let settled = false;
    const done = () => {
      if (!settled) {
        settled = true;
        resolve();
      }
    };
    refused = false;
    const headers = { ...(cmd.headers || {}) };
    ws = new WebSocket(cmd.url, {
      headers,
      perMessageDeflate: !!cmd.deflate,
      handshakeTimeout: 10_000,
      maxPayload: 0, // no client-side limit: the server is under test
    });
    const sock = ws;
    sock.on('open', () => {
      emit({ ev: 'open' });
      done();
    });
    sock.on('unexpected-response', (req, res) => {
      refused = true;
      emit({
        ev: 'error',
        message: `Unexpected server response: ${res.statusCode}`,
        status: res.statusCode,
      });
      res.resume();
      // terminate() aborts the handshake; ws then emits "error" (ignored
      // below because refused is set) and "close" with 1006.
      sock.terminate();
    });
    sock.on('message', (data, isBinary) => {
      const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
      emit({
        ev: 'message',
        data: isBinary ? buf.toString('base64') : buf.toString('utf8'),
        binary: !!isBinary,
      });
    });
    sock.on('pong', (data) => emit({ ev: 'pong', data: data.toString('utf8') }));
    sock.on('error', (err) => {
      if (refused && sock.readyState !== WebSocket.OPEN) return;
      emit({ ev: 'error', message: String(err && err.message ? err.message : err) });
    });
    sock.on('close', (code, reason) => {
      emit({ ev: 'close', code, reason: reason.toString('utf8') });
      done();
    });
  });
}

function requireOpen(op) {
  if (!ws || ws.readyState !== WebSocket.OPEN) {
    emit({ ev: 'error', op, message: 'not connected' });
    return false;
  }
  return true;
}

function run(cmd) {
  const op = cmd.op;
  switch (op) {
    case 'connect': {
      if (ws && ws.readyState !== WebSocket.CLOSED) {
        emit({ ev: 'error', op, message: 'already connected' });
        return null;
      }
      emit({ ev: 'ack', op });
      return connect(cmd);
    }
    case 'send': {
      if (!requireOpen(op)) return null;
      ws.send(payload(cmd), {
        binary: !!cmd.binary,
        fin: cmd.fin !== false,
      }, (err) => {
        if (err) emit({ ev: 'error', op, message: `send failed: ${err.message}` });
      });
      emit({ ev: 'ack', op });
      return null;
    }
    case 'ping': {
      if (!requireOpen(op)) return null;
      ws.ping(payload(cmd));
      emit({ ev: 'ack', op });
      return null;
    }
    case 'close': {
      if (!ws || ws.readyState === WebSocket.CLOSED) {
        emit({ ev: 'error', op, message: 'not connected' });
        return null;
      }
      if (cmd.code === undefined || cmd.code === null) ws.close();
      else ws.close(cmd.code, cmd.reason ?? '');
      emit({ ev: 'ack', op });
      return null;
    }
    case 'raw': {
      if (!ws || !ws._socket || ws._socket.destroyed) {
        emit({ ev: 'error', op, message: 'not connected' });
        return null;
      }
      ws._socket.write(Buffer.from(cmd.b64 ?? '', 'base64'));
      emit({ ev: 'ack', op });
      return null;
    }
    case 'exit':
      process.exit(0);
      return null;
    default:
      emit({ ev: 'error', op, message: `unknown op ${JSON.stringify(op)}` });
      return null;
  }
}

let queue = Promise.resolve();

function enqueue(line) {
  queue = queue.then(() => {
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (err) {
      emit({ ev: 'error', message: `bad command line: ${err.message}` });
      return null;
    }
    try {
      return run(cmd);
    } catch (err) {
      emit({ ev: 'error', op: cmd.op, message: String(err && err.message ? err.message : err) });
      return null;
    }
  });
}

const rl = createInterface({ input: process.stdin, crlfDelay: Infinity });
rl.on('line', (line) => {
  if (line.trim() !== '') enqueue(line);
});
rl.on('close', () => {
  queue.then(() => process.exit(0));
});
