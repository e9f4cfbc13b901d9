#!/usr/bin/python3
"""Drive one WebSocket connection made with Python's ``websockets`` client.

This follows the line protocol of internal/testenv: one JSON command per line
on stdin, one JSON event per line on stdout, logs on stderr.

Commands::

    {"op":"connect","url":"ws://...","headers":{...},"deflate":false}
    {"op":"send","data":"...","b64":false,"binary":false,"fin":true}
    {"op":"ping","data":"..."}
    {"op":"close","code":1000,"reason":"bye"}
    {"op":"raw","b64":"..."}          (bytes written as-is to the transport)
    {"op":"exit"}

Events::

    {"ev":"open"} {"ev":"message","data":"...","binary":false}
    {"ev":"pong","data":"..."} {"ev":"close","code":1000,"reason":"..."}
    {"ev":"error","message":"...","status":401,"op":"..."} {"ev":"ack","op":"..."}

Commands are handled one at a time, in order; a command that follows
"connect" waits until the opening handshake has finished. Each command is
answered by exactly one "ack" or one "error" carrying its op. A connection
that fails to open reports "error" (with the HTTP status of a refused upgrade)
followed by "close" with code 1006. Binary payloads are base64.

Fragments: a "send" with "fin": false starts (or continues) a fragmented
message, streamed through websockets' asynchronous-iterator send, so each
fragment is written as its own frame when it is sent. The "send" with
"fin": true that follows gives the last data fragment; websockets then ends
the message with an empty continuation frame carrying FIN, so a message sent
as N fragments is N+1 frames on the wire.

The asyncio ("legacy") client API of websockets 10.x is used; the driver runs
under the Debian package python3-websockets with /usr/bin/python3. It exits
when stdin closes, on "exit", or after 120 s.
"""

import asyncio
import base64
import json
import os
import signal
import sys

try:
    from websockets.legacy.client import connect as ws_connect
except ImportError:  # very old releases without the legacy package
    from websockets import connect as ws_connect
from websockets.exceptions import ConnectionClosed, InvalidStatusCode

LIFETIME_S = 120


def log(*args):
    print("[ws_driver]", *args, file=sys.stderr, flush=True)


def emit(ev):
    sys.stdout.write(json.dumps(ev, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def hard_exit(code):
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def payload(cmd):
    """Return the payload as str for text frames and bytes for binary ones."""
    data = cmd.get("data") or ""
    raw = base64.b64decode(data) if cmd.get("b64") else data.encode("utf-8")
    if cmd.get("binary"):
        return raw
    return raw.decode("utf-8")  # websockets only sends text frames from str


def ctrl_payload(cmd):
    data = cmd.get("data") or ""
    return base64.b64decode(data) if cmd.get("b64") else data.encode("utf-8")


class Driver:
    def __init__(self):
        self.ws = None
        self.reader = None
        self.stream = None  # asyncio.Queue feeding a fragmented message
        self.stream_task = None
        self.stream_binary = False
        self.tasks = set()

    def spawn(self, coro):
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    def is_open(self):
        return self.ws is not None and self.ws.open

    async def connect(self, cmd):
        if self.ws is not None and not self.ws.closed:
            emit({"ev": "error", "op": "connect", "message": "already connected"})
            return
        headers = dict(cmd.get("headers") or {})
        origin = None
        for name in list(headers):
            if name.lower() == "origin":
                origin = headers.pop(name)
        emit({"ev": "ack", "op": "connect"})
        try:
            self.ws = await ws_connect(
                cmd["url"],
                origin=origin,
                extra_headers=list(headers.items()),
                compression="deflate" if cmd.get("deflate") else None,
                open_timeout=10,
                ping_interval=None,  # no keepalive pings: the server is under test
                close_timeout=10,
                max_size=None,  # no client-side limit: the server is under test
            )
        except InvalidStatusCode as e:
            emit({"ev": "error", "message": str(e), "status": e.status_code})
            emit({"ev": "close", "code": 1006, "reason": ""})
            return
        except Exception as e:  # noqa: BLE001 - every failure is reported
            emit({"ev": "error", "message": f"{type(e).__name__}: {e}"})
            emit({"ev": "close", "code": 1006, "reason": ""})
            return
        emit({"ev": "open"})
        self.reader = self.spawn(self.read_loop(self.ws))

    async def read_loop(self, ws):
        try:
            while True:
                msg = await ws.recv()
                if isinstance(msg, str):
                    emit({"ev": "message", "data": msg, "binary": False})
                else:
                    emit({"ev": "message", "data": base64.b64encode(msg).decode("ascii"), "binary": True})
        except ConnectionClosed:
            pass
        except Exception as e:  # noqa: BLE001
            emit({"ev": "error", "message": f"{type(e).__name__}: {e}"})
        await ws.wait_closed()
        emit({"ev": "close", "code": ws.close_code, "reason": ws.close_reason or ""})

    async def fragments(self, queue):
        while True:
            item = await queue.get()
            if item is None:
                return
            yield item

    async def send(self, cmd):
        if self.stream is not None:
            # A continuation has the type of the message's first fragment.
            cmd = dict(cmd, binary=self.stream_binary)
        data = payload(cmd)
        fin = cmd.get("fin", True) is not False
        if self.stream is None and fin:
            await self.ws.send(data)
            emit({"ev": "ack", "op": "send"})
            return
        if self.stream is None:
            self.stream = asyncio.Queue()
            self.stream_binary = bool(cmd.get("binary"))
            self.stream_task = self.spawn(self.ws.send(self.fragments(self.stream)))
        self.stream.put_nowait(data)
        if fin:
            self.stream.put_nowait(None)
            task, self.stream, self.stream_task = self.stream_task, None, None
            await task  # surfaces errors of the whole fragmented message
        emit({"ev": "ack", "op": "send"})

    async def ping(self, cmd):
        data = ctrl_payload(cmd)
        waiter = await self.ws.ping(data)
        emit({"ev": "ack", "op": "ping"})

        async def wait_pong():
            try:
                await waiter
            except (ConnectionClosed, asyncio.CancelledError):
                return
            emit({"ev": "pong", "data": data.decode("utf-8", "replace")})

        self.spawn(wait_pong())

    async def close(self, cmd):
        code = cmd.get("code")
        reason = cmd.get("reason") or ""
        ws = self.ws
        # close() waits for the closing handshake; run it in the background
        # so later commands (exit) are not held up. The read loop reports
        # the resulting "close" event.
        if code is None:
            self.spawn(ws.close())
        else:
            self.spawn(ws.close(code, reason))
        emit({"ev": "ack", "op": "close"})

    async def raw(self, cmd):
        self.ws.transport.write(base64.b64decode(cmd.get("b64") or ""))
        emit({"ev": "ack", "op": "raw"})

    async def handle(self, cmd):
        op = cmd.get("op")
        if op == "connect":
            await self.connect(cmd)
            return
        if op == "exit":
            hard_exit(0)
        handler = {"send": self.send, "ping": self.ping, "close": self.close, "raw": self.raw}.get(op)
        if handler is None:
            emit({"ev": "error", "op": op, "message": f"unknown op {op!r}"})
            return
        if op == "raw":
            if self.ws is None or self.ws.transport is None or self.ws.transport.is_closing():
                emit({"ev": "error", "op": op, "message": "not connected"})
                return
        elif op == "close":
            if self.ws is None or self.ws.closed:
                emit({"ev": "error", "op": op, "message": "not connected"})
                return
        elif not self.is_open():
            emit({"ev": "error", "op": op, "message": "not connected"})
            return
        try:
            await handler(cmd)
        except Exception as e:  # noqa: BLE001
            emit({"ev": "error", "op": op, "message": f"{type(e).__name__}: {e}"})


async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 30)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    driver = Driver()
    while True:
        line = await reader.readline()
        if not line:
            break
        line = line.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
        except ValueError as e:
            emit({"ev": "error", "message": f"bad command line: {e}"})
            continue
        await driver.handle(cmd)


if __name__ == "__main__":
    # Bound the driver's life whatever happens: SIGALRM's default action
    # terminates the process.
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(LIFETIME_S)
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    hard_exit(0)
