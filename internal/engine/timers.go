package engine

import (
	"time"

	"github.com/pondsocket/pondsocket/internal/wsframe"
)

// Timers. There is no timer per connection: gnet's single ticker posts a
// sweep to every loop each tick (Config.tickInterval), and the sweep walks
// the loop's dense connection slice comparing timestamps. At 15k
// connections per loop this is a few tens of microseconds per tick.

var pingFrame = wsframe.Append(nil, wsframe.Fin|wsframe.OpPing, nil)

// overCapHandshake bounds the handshake of a connection accepted near the
// open-files limit (accept.go).
const overCapHandshake = time.Second

func (l *loop) sweep() {
	e := l.e
	cfg := &e.cfg
	now := time.Now().UnixNano()
	l.now = now
	hs := int64(cfg.HandshakeTimeout)
	ping := int64(cfg.PingInterval)
	pong := int64(cfg.PongWait)
	idle := int64(cfg.IdleTimeout)
	closeTO := int64(cfg.CloseTimeout)

	kill := l.closing[:0]
	// An index loop: a write below can fail and close a connection at once
	// (gnet closes on write errors), which removes it from l.conns while it
	// is walked; the one moved into its slot waits for the next sweep.
	for i := 0; i < len(l.conns); i++ {
		c := l.conns[i]
		switch c.state {
		case stateHandshake, stateDeciding, stateHTTP:
			limit := hs
			if c.overCap && limit > int64(overCapHandshake) {
				// the band near the open-files limit is kept for health
				// checks, which send their request at once
				limit = int64(overCapHandshake)
			}
			if now-c.since > limit {
				e.stats.HandshakeTimeouts.Add(1)
				kill = append(kill, c)
			}
		case stateOpen:
			switch {
			case c.sse:
				// An event stream's client never writes on it: no pong to
				// wait for. A dead peer shows by the keep-alives piling up
				// (the outbound limits) or by a write error.
				switch {
				case idle > 0 && now-c.lastData > idle:
					e.stats.IdleTimeouts.Add(1)
					c.startClose(1001, "idle timeout")
				case now-c.lastPing >= ping && c.pending <= cfg.MaxOutboundBytes:
					c.lastPing = now
					c.writeNow(sseKeepalive)
				}
			case now-c.lastRead > pong:
				e.stats.PongTimeouts.Add(1)
				e.log.Debug("peer missed pong wait", "remote", c.remote)
				c.closeCode = 1006
				kill = append(kill, c)
			case idle > 0 && now-c.lastData > idle:
				e.stats.IdleTimeouts.Add(1)
				c.startClose(1001, "idle timeout")
			case now-c.lastRead >= ping && now-c.lastPing >= ping && c.pending <= cfg.MaxOutboundBytes:
				c.lastPing = now
				c.writeNow(pingFrame)
			}
			if c.state == stateOpen && (c.pending > 0 || c.pongDue) {
				c.observe(now) // gnet drains its buffer without telling us
				c.flushPong()
			}
		case stateClosing, stateDone:
			if c.pending > 0 {
				c.observe(now)
			}
			if now-c.since > closeTO {
				kill = append(kill, c)
			}
		}
	}
	l.closeAll(kill)
}

// closeAll closes the sockets in kill (those not closed meanwhile) and
// keeps the slice for the next sweep.
func (l *loop) closeAll(kill []*Conn) {
	for i, c := range kill {
		if c.state != stateClosed {
			_ = l.el.closeSocket(c.gc)
		}
		kill[i] = nil
	}
	l.closing = kill[:0]
}

// drainAll is the graceful-stop step on one loop: every WebSocket gets
// close 1001, connections still in the handshake are closed.
func (l *loop) drainAll() {
	kill := l.closing[:0]
	for i := 0; i < len(l.conns); i++ { // index loop: see sweep
		c := l.conns[i]
		switch c.state {
		case stateOpen:
			c.startClose(1001, "Server shutting down")
		case stateHandshake:
			kill = append(kill, c)
		}
	}
	l.closeAll(kill)
}
