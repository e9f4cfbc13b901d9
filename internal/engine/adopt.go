package engine

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// Adoption: an application's own HTTP server (net/http, chi, echo, gin…)
// answers the upgrade, then hands the connection to the event loops. From
// then on it is served exactly like a connection accepted by the engine's
// listener: same frame parser, timers, limits and batched writes.

// adoption travels through gnet's registration to OnOpen.
type adoption struct {
	d       Decision
	prefix  []byte
	request *Request
	deflate bool
	sseID   string // an event stream (sse.go), its head already written
}

// ErrNotAdoptable is returned for connections the event loops cannot own
// (anything but a plain TCP or Unix socket, for example a *tls.Conn).
var ErrNotAdoptable = errors.New("engine: only plain TCP/Unix connections can be handed to the event loops")

// Adoptable reports whether conn can be handed to the event loops: a plain
// TCP or Unix socket (not TLS, not a wrapper).
func Adoptable(conn net.Conn) bool {
	switch conn.(type) {
	case *net.TCPConn, *net.UnixConn:
		return true
	}
	return false
}

// Reserve takes one MaxConnections slot for a connection about to be
// handed over by an HTTP server (the SSE streams of Manager); Unreserve
// gives back one that was not used. The package is internal: these are
// not the library's API.
func (e *Engine) Reserve() bool { return e.reserve() }

// Unreserve releases a slot taken by Reserve that was not used.
func (e *Engine) Unreserve() { e.upgraded.Add(-1) }

// adopt hands an upgraded connection (the 101 already written) to an
// event loop (ServeUpgrade). prefix holds bytes the HTTP server had
// already read past the request (frames the client sent early); d supplies
// the context and the greeting frames, as for Handler.Upgrade; deflate
// says the 101 accepted permessage-deflate on the terms of
// DeflateExtension. The caller has taken a MaxConnections slot. On success
// the engine owns conn (its descriptor is duplicated and the original
// closed); on error the caller still owns it.
func (e *Engine) adopt(conn net.Conn, prefix []byte, r *Request, d Decision, deflate bool) error {
	if !Adoptable(conn) {
		return fmt.Errorf("%w (got %T)", ErrNotAdoptable, conn)
	}
	if e.draining.Load() {
		return errors.New("engine: shutting down")
	}
	ad := &adoption{d: d, prefix: append([]byte(nil), prefix...), request: r, deflate: deflate}
	_, err := e.cli.EnrollContext(conn, ad)
	return err
}

// AdoptSSE hands an accepted event stream (its head, SSEHead with id,
// already written) to an event loop, or to the fallback transport when
// conn cannot ride the loops; the caller has taken the MaxConnections slot (Reserve).
// From then on the stream is served as one the engine's listener opened.
func (e *Engine) AdoptSSE(conn net.Conn, r *Request, d Decision, id string) error {
	if e.draining.Load() || e.stopped.Load() {
		return errors.New("engine: shutting down")
	}
	ad := &adoption{d: d, request: r, sseID: id}
	if !Adoptable(conn) {
		e.streams.Add(1)
		go func() {
			defer e.streams.Done()
			e.runStream(conn, ad)
		}()
		return nil
	}
	_, err := e.cli.EnrollContext(conn, ad)
	return err
}

// adopted runs in OnOpen for an adopted connection: it is open at once.
func (c *Conn) adopted(ad *adoption) {
	e := c.e
	now := time.Now().UnixNano()
	c.state = stateOpen
	c.opened = true
	c.reserved = true
	c.deflate = ad.deflate
	if c.deflate {
		e.stats.Deflate.Add(1)
	}
	c.req = ad.request
	c.ctx = ad.d.Context
	c.since, c.lastRead, c.lastData, c.lastPing = now, now, now, now
	if ad.sseID != "" {
		c.sse, c.sseID = true, ad.sseID
		e.sse.add(c.sseID, c) // as in openStream
	}
	if len(ad.d.Greeting) > 0 {
		iov := make([][]byte, 0, len(ad.d.Greeting))
		for _, f := range ad.d.Greeting {
			iov = append(iov, c.frameBytes(f))
		}
		e.stats.Writes.Add(c.loop.idx, 1)
		_, _ = c.gc.Writev(iov)
		for _, f := range ad.d.Greeting {
			f.Release()
		}
	}
	e.stats.Accepted.Add(1)
	e.h.OnOpen(c)
	c.req = nil
	if len(ad.prefix) > 0 && c.state == stateOpen && !c.sse {
		c.pre = ad.prefix
		n, act := c.parseFrames(c.pre)
		c.pre = c.pre[n:]
		if len(c.pre) == 0 {
			c.pre = nil
		}
		c.flushPong()
		if act == gnet.Close {
			_ = c.loop.el.closeSocket(c.gc)
		}
	}
}
