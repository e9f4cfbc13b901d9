package engine

import (
	"encoding/binary"
	"time"
	"unicode/utf8"

	"github.com/pondsocket/pondsocket/internal/wsframe"

	"github.com/gobwas/ws"
	"github.com/panjf2000/gnet/v2"
)

// readFrames parses every complete frame in gnet's inbound buffer, in place:
// headers are read from the peeked bytes, payloads are unmasked where they
// lie, and only the bytes of complete frames are discarded. A partial frame
// stays in gnet's buffer until the rest arrives; only a fragmented message
// is copied, into a pooled buffer that is returned when the message ends.
func (c *Conn) readFrames() gnet.Action {
	// While the read's messages are handed to the Handler, replies it
	// makes on this loop (SendInline) are queued here directly, and they
	// leave together right after the read.
	c.inMsg = true
	act := c.parseRead()
	c.inMsg = false
	if l := c.loop; len(l.inline) > 0 {
		l.flushInline()
	}
	c.flushPong()
	return act
}

func (c *Conn) parseRead() gnet.Action {
	gc := c.gc
	buf, _ := gc.Peek(-1)
	if c.pre != nil {
		// bytes handed over with an adopted connection come first
		c.pre = append(c.pre, buf...)
		_, _ = gc.Discard(-1)
		n, act := c.parseFrames(c.pre)
		c.pre = c.pre[n:]
		if len(c.pre) == 0 {
			c.pre = nil
		}
		return act
	}
	n, act := c.parseFrames(buf)
	if n > 0 {
		_, _ = gc.Discard(n)
	}
	return act
}

// parseFrames handles every complete frame at the start of buf and
// returns how many bytes it consumed.
func (c *Conn) parseFrames(buf []byte) (off int, _ gnet.Action) {
	now := time.Now().UnixNano()
	c.loop.now = now // the loop clock for what this read's messages queue (flushInline)
	e := c.e
	for c.state == stateOpen || c.state == stateClosing {
		if c.skip > 0 {
			n := uint64(len(buf) - off)
			if n > c.skip {
				n = c.skip
			}
			off += int(n)
			c.skip -= n
			if c.skip > 0 {
				return off, gnet.None
			}
		}
		rest := buf[off:]
		if len(rest) < 2 {
			return off, gnet.None
		}
		b0, b1 := rest[0], rest[1]
		fin := b0&0x80 != 0
		rsv := b0 & 0x70
		op := ws.OpCode(b0 & 0x0f)
		masked := b1&0x80 != 0
		hl := 2
		var n uint64
		switch l7 := b1 & 0x7f; l7 {
		case 126:
			if len(rest) < 4 {
				return off, gnet.None
			}
			n = uint64(binary.BigEndian.Uint16(rest[2:4]))
			hl = 4
		case 127:
			if len(rest) < 10 {
				return off, gnet.None
			}
			n = binary.BigEndian.Uint64(rest[2:10])
			hl = 10
			if n>>63 != 0 {
				c.protocolError(1002, "invalid payload length")
				return off, gnet.Close
			}
		default:
			n = uint64(l7)
		}
		if masked {
			hl += 4
		}
		if len(rest) < hl {
			return off, gnet.None
		}

		// Validate the header before waiting for the payload, so a bad or
		// oversized frame is refused without buffering it. A refused frame
		// is skipped (its length is known) so that the peer's close frame
		// that follows can still be read.
		skipFrame := func() {
			avail := uint64(len(rest) - hl)
			if avail > n {
				avail = n
			}
			off += hl + int(avail)
			c.skip = n - avail
		}
		reject := func(code uint16, reason string) {
			skipFrame()
			c.protocolError(code, reason)
		}
		if c.state == stateClosing {
			// Only the peer's close frame matters now; frames that break the
			// rules end the connection at once, others are skipped without
			// being buffered.
			if rsv != 0 || !masked || op.IsReserved() || (op == ws.OpClose && n > 125) {
				return off, gnet.Close
			}
			if op != ws.OpClose {
				skipFrame()
				continue
			}
		} else {
			// RSV1 marks a compressed message (permessage-deflate), on
			// its first frame only
			if rsv != 0 && (rsv != 0x40 || !c.deflate || (op != ws.OpText && op != ws.OpBinary)) {
				reject(1002, "reserved bits set")
				continue
			}
			if op.IsReserved() {
				reject(1002, "reserved opcode")
				continue
			}
			if !masked {
				reject(1002, "client frames must be masked")
				continue
			}
			if op.IsControl() {
				if !fin {
					reject(1002, "fragmented control frame")
					continue
				}
				if n > 125 {
					reject(1002, "control frame payload too long")
					continue
				}
			} else {
				total := n
				switch {
				case op == ws.OpContinuation && c.fragOp == 0:
					reject(1002, "continuation frame without a message")
					continue
				case op != ws.OpContinuation && c.fragOp != 0:
					reject(1002, "new message inside a fragmented message")
					continue
				case op == ws.OpContinuation:
					total += uint64(c.frag.Len())
				}
				if total > uint64(e.cfg.MaxMessageSize) {
					// Drop the rest of this frame, then wait for the close echo.
					reject(1009, "message too big")
					continue
				}
			}
		}
		if uint64(len(rest)-hl) < n {
			return off, gnet.None
		}
		payload := rest[hl : hl+int(n)]
		if masked {
			var mask [4]byte
			copy(mask[:], rest[hl-4:hl])
			ws.Cipher(payload, mask, 0)
		}
		off += hl + int(n)
		c.lastRead = now
		e.stats.BytesIn.Add(c.loop.idx, int64(hl)+int64(n))

		if c.state == stateClosing {
			if op == ws.OpClose {
				return off, gnet.Close
			}
			continue
		}

		switch op {
		case ws.OpPing:
			c.setPong(payload)
		case ws.OpPong:
		case ws.OpClose:
			return off, c.peerClose(payload)
		case ws.OpText, ws.OpBinary:
			rsv1 := rsv == 0x40
			if !fin {
				c.fragOp = byte(op)
				c.fragRSV1 = rsv1
				c.frag = fragPool.Get()
				c.frag.B = append(c.frag.B[:0], payload...)
				continue
			}
			if a := c.deliver(byte(op), payload, rsv1); a != gnet.None {
				return off, a
			}
		case ws.OpContinuation:
			c.frag.B = append(c.frag.B, payload...)
			if !fin {
				continue
			}
			op, rsv1 := c.fragOp, c.fragRSV1
			fb := c.frag
			c.frag, c.fragOp, c.fragRSV1 = nil, 0, false
			a := c.deliver(op, fb.B, rsv1)
			fragPool.Put(fb)
			if a != gnet.None {
				return off, a
			}
		}
	}
	// Closed while parsing (for example by a write error): drop the rest.
	off = len(buf)
	return off, gnet.None
}

func (c *Conn) deliver(op byte, data []byte, compressed bool) gnet.Action {
	if compressed {
		if !c.inflateAllowed() {
			c.protocolError(1008, "compressed input rate exceeded")
			return gnet.None
		}
		out, tooBig, ok := inflate(data, c.e.cfg.MaxMessageSize)
		switch {
		case tooBig:
			c.protocolError(1009, "message too big once decompressed")
			return gnet.None
		case !ok:
			c.protocolError(1007, "invalid compressed data")
			return gnet.None
		}
		defer fragPool.Put(out)
		data = out.B
		c.inflate.tokens -= float64(len(data))
	}
	if op == wsframe.OpText && !utf8.Valid(data) {
		c.protocolError(1007, "invalid UTF-8 in text message")
		return gnet.None
	}
	c.lastData = c.lastRead
	c.e.stats.MessagesIn.Add(c.loop.idx, 1)
	c.e.h.OnMessage(c, op, data)
	return gnet.None
}

// peerClose answers the peer's close frame by echoing its code, then closes
// the socket (the server closes TCP first, as RFC 6455 recommends).
func (c *Conn) peerClose(payload []byte) gnet.Action {
	switch {
	case len(payload) == 0:
		c.closeCode = 1005
		c.writeNow(wsframe.Close(0, ""))
	case len(payload) == 1:
		return c.failClosed(1002, "invalid close frame")
	default:
		code, reason := ws.ParseCloseFrameData(payload)
		if !validCloseCode(uint16(code)) {
			return c.failClosed(1002, "invalid close code")
		}
		if !utf8.ValidString(reason) {
			return c.failClosed(1007, "invalid UTF-8 in close reason")
		}
		c.closeCode = uint16(code)
		c.writeNow(wsframe.Close(uint16(code), ""))
	}
	c.state = stateDone
	return gnet.Close
}

// protocolError fails the connection: a close frame with code is sent and
// the connection waits (bounded by CloseTimeout) for the peer's close
// frame; the caller has arranged for the offending frame to be skipped.
func (c *Conn) protocolError(code uint16, reason string) {
	c.e.stats.ProtocolErrors.Add(1)
	c.e.log.Debug("websocket protocol error", "remote", c.remote, "code", code, "reason", reason)
	c.releaseFrag()
	c.startClose(code, reason)
}

// failClosed answers a bad close frame: the peer has already closed its
// side, so after our close frame the socket closes at once.
func (c *Conn) failClosed(code uint16, reason string) gnet.Action {
	c.protocolError(code, reason)
	c.state = stateDone
	return gnet.Close
}

// validCloseCode reports whether a peer may send code in a close frame
// (RFC 6455 §7.4, plus the IANA-registered 1012–1014).
func validCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// startClose sends a close frame and enters the closing state.
func (c *Conn) startClose(code uint16, reason string) {
	if c.state != stateOpen {
		return
	}
	if c.sse {
		c.endStream(code) // no close frame on an event stream
		return
	}
	c.writeNow(wsframe.Close(code, reason))
	c.closeCode = code
	c.state = stateClosing
	c.since = time.Now().UnixNano()
	// The connection takes no more messages: the layer above learns it now,
	// not when the peer's close frame or CloseTimeout ends it, so a member
	// being cut leaves its channels at once.
	c.notifyClosed(int(code), nil)
}

// notifyClosed runs Handler.OnClose once for an opened connection.
func (c *Conn) notifyClosed(code int, err error) {
	if !c.opened || c.notified {
		return
	}
	c.notified = true
	c.e.h.OnClose(c, code, err)
}
