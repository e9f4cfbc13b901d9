package engine

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"
)

// The fallback transport. TLS connections cannot ride gnet's plain-byte
// loops, so each one gets a small goroutine-based stand-in: a "loop"
// goroutine that owns the connection's state exactly as a gnet loop would,
// a reader goroutine feeding it the decrypted bytes, and a writer goroutine
// draining an outbound buffer. The stand-in implements the part of
// gnet.Conn and gnet.EventLoop the engine uses, so the very same code runs
// on top of it: the upgrade parser, the frame parser, the timers, the
// limits, the outbound limit and the close handshake.
//
// The price is three goroutines and their stacks per TLS connection. For
// very large deployments terminate TLS at a proxy and let the event loops
// serve plain sockets.

var errStreamClosed = errors.New("engine: connection closed")

// streamLoop is the per-connection stand-in for a gnet event loop.
type streamLoop struct {
	e    *Engine
	sc   *streamConn
	l    *loop
	mu   sync.Mutex
	task []gnet.Runnable
	wake chan struct{}
	done bool
}

// Execute queues r to run on the connection's goroutine.
func (sl *streamLoop) Execute(_ context.Context, r gnet.Runnable) error {
	sl.mu.Lock()
	if sl.done {
		sl.mu.Unlock()
		return errStreamClosed
	}
	sl.task = append(sl.task, r)
	sl.mu.Unlock()
	select {
	case sl.wake <- struct{}{}:
	default:
	}
	return nil
}

// closeSocket closes the connection; like gnet's Close, it runs on the loop.
func (sl *streamLoop) closeSocket(socket) error {
	sl.sc.closeNow(nil)
	return nil
}

// streamConn is the stand-in for a gnet connection over a net.Conn.
type streamConn struct {
	sl   *streamLoop
	c    *Conn
	nc   net.Conn
	in   []byte        // loop-owned inbound bytes
	wait time.Duration // write deadline

	omu    sync.Mutex
	out    []byte
	owake  chan struct{}
	closed bool

	reads  chan []byte
	errs   chan error
	quit   chan struct{}
	wg     sync.WaitGroup
	closer sync.Once
}

func (sc *streamConn) Peek(n int) ([]byte, error) {
	if n <= 0 || n > len(sc.in) {
		if n > len(sc.in) {
			return sc.in, io.ErrShortBuffer
		}
		return sc.in, nil
	}
	return sc.in[:n], nil
}

func (sc *streamConn) Discard(n int) (int, error) {
	if n <= 0 || n >= len(sc.in) {
		n = len(sc.in)
		sc.in = sc.in[:0]
		return n, nil
	}
	sc.in = append(sc.in[:0], sc.in[n:]...)
	return n, nil
}

func (sc *streamConn) Write(b []byte) (int, error) {
	sc.omu.Lock()
	if sc.closed {
		sc.omu.Unlock()
		return 0, errStreamClosed
	}
	sc.out = append(sc.out, b...)
	sc.omu.Unlock()
	select {
	case sc.owake <- struct{}{}:
	default:
	}
	return len(b), nil
}

func (sc *streamConn) Writev(bs [][]byte) (int, error) {
	n := 0
	for _, b := range bs {
		m, err := sc.Write(b)
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func (sc *streamConn) OutboundBuffered() int {
	sc.omu.Lock()
	defer sc.omu.Unlock()
	return len(sc.out)
}

func (sc *streamConn) RemoteAddr() net.Addr { return sc.nc.RemoteAddr() }

// adoptStream hands an upgraded connection that cannot ride the event
// loops (a *tls.Conn from an HTTPS server, a framework's wrapped
// connection) to the fallback transport, after the 101 was written. Like
// adopt, the caller has taken the MaxConnections slot.
func (e *Engine) adoptStream(nc net.Conn, prefix []byte, r *Request, d Decision, deflate bool) error {
	if e.draining.Load() || e.stopped.Load() {
		return errors.New("engine: shutting down")
	}
	ad := &adoption{d: d, prefix: append([]byte(nil), prefix...), request: r, deflate: deflate}
	e.streams.Add(1)
	go func() {
		defer e.streams.Done()
		e.runStream(nc, ad)
	}()
	return nil
}

// serveStream runs one fallback connection until it closes.
func (e *Engine) serveStream(nc net.Conn) {
	if tc, ok := nc.(*tls.Conn); ok {
		_ = tc.SetDeadline(time.Now().Add(e.cfg.HandshakeTimeout))
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.HandshakeTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err != nil {
			e.stats.TLSFailures.Add(1)
			e.rlog.Warn("TLS handshake failed", "remote", nc.RemoteAddr(), "err", err)
			_ = nc.Close()
			return
		}
		_ = tc.SetDeadline(time.Time{})
	}
	e.runStream(nc, nil)
}

// runStream serves nc on its own stand-in loop; ad is set for a
// connection whose upgrade another server already answered.
func (e *Engine) runStream(nc net.Conn, ad *adoption) {
	sl := &streamLoop{e: e, wake: make(chan struct{}, 1)}
	sc := &streamConn{sl: sl, nc: nc, wait: e.cfg.CloseTimeout, owake: make(chan struct{}, 1),
		reads: make(chan []byte, 4), errs: make(chan error, 1), quit: make(chan struct{})}
	sl.sc = sc
	sl.l = &loop{e: e, el: sl, idx: -1, stream: true}
	e.addStream(sl)
	defer e.removeStream(sl)

	var ctx any
	if ad != nil {
		ctx = ad // open takes the adoption path
	}
	c, out, act := e.open(sc, sl.l, ctx)
	sc.c = c
	if len(out) > 0 {
		_, _ = sc.Write(out)
	}
	sc.wg.Add(2)
	go sc.readLoop()
	go sc.writeLoop()
	if act == gnet.Close {
		sc.closeNow(nil)
	}
	for !sc.isClosed() {
		select {
		case <-sl.wake:
			sl.runTasks()
		case b := <-sc.reads:
			sc.in = append(sc.in, b...)
			if c.traffic() == gnet.Close {
				sc.closeNow(nil)
			}
		case err := <-sc.errs:
			sc.closeNow(err)
		}
	}
	sl.runTasks() // release what was posted before the close
	sc.wg.Wait()
}

func (sl *streamLoop) runTasks() {
	sl.mu.Lock()
	ts := sl.task
	sl.task = nil
	sl.mu.Unlock()
	for _, t := range ts {
		_ = t.Run(context.Background())
	}
}

func (sc *streamConn) isClosed() bool {
	sc.omu.Lock()
	defer sc.omu.Unlock()
	return sc.closed
}

// closeNow ends the connection (on its loop): the engine's OnClose runs,
// what is buffered is flushed (bounded by the write deadline), the socket
// closes and the goroutines end.
func (sc *streamConn) closeNow(err error) {
	sc.closer.Do(func() {
		sc.sl.mu.Lock()
		sc.sl.done = true
		sc.sl.mu.Unlock()
		sc.c.socketClosed(err)
		sc.omu.Lock()
		sc.closed = true
		sc.omu.Unlock()
		close(sc.quit)
		select {
		case sc.owake <- struct{}{}:
		default:
		}
	})
}

func (sc *streamConn) readLoop() {
	defer sc.wg.Done()
	buf := make([]byte, 16<<10)
	for {
		n, err := sc.nc.Read(buf)
		if n > 0 {
			b := append([]byte(nil), buf[:n]...)
			select {
			case sc.reads <- b:
			case <-sc.quit:
				return
			}
		}
		if err != nil {
			select {
			case sc.errs <- err:
			case <-sc.quit:
			}
			return
		}
	}
}

func (sc *streamConn) writeLoop() {
	defer sc.wg.Done()
	defer sc.nc.Close() // also ends readLoop's Read
	for {
		sc.omu.Lock()
		b := sc.out
		sc.out = nil
		closed := sc.closed
		sc.omu.Unlock()
		if len(b) > 0 {
			_ = sc.nc.SetWriteDeadline(time.Now().Add(sc.wait))
			if _, err := sc.nc.Write(b); err != nil {
				if !closed {
					select {
					case sc.errs <- err:
					default:
					}
				}
				sc.omu.Lock()
				sc.out = nil
				sc.omu.Unlock()
				if closed {
					return
				}
			}
			continue
		}
		if closed {
			return
		}
		select {
		case <-sc.owake:
		case <-sc.quit:
		}
	}
}

// ServeListener serves every connection accepted from ln (for example a
// tls.Listener) on the fallback transport, in the background, until the
// engine stops (Stop closes ln and waits for every connection's goroutines).
func (e *Engine) ServeListener(ln net.Listener) {
	e.streamLn.Store(&ln)
	e.streams.Add(1)
	go func() {
		defer e.streams.Done()
		e.acceptStreams(ln)
	}()
}

func (e *Engine) acceptStreams(ln net.Listener) {
	backoff := 5 * time.Millisecond
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || e.stopped.Load() {
				return
			}
			e.rlog.Warn("accept failed", "err", err)
			time.Sleep(backoff)
			if backoff < time.Second {
				backoff *= 2
			}
			continue
		}
		backoff = 5 * time.Millisecond
		if e.live.Load() >= e.fdHard {
			// at the descriptor limit (accept.go); before the TLS
			// handshake there is no way to answer, so close at once
			e.stats.Declined.Add(1)
			_ = nc.Close()
			continue
		}
		e.streams.Add(1)
		go func() {
			defer e.streams.Done()
			e.serveStream(nc)
		}()
	}
}

func (e *Engine) addStream(sl *streamLoop) {
	e.loopsMu.Lock()
	if e.streamSet == nil {
		e.streamSet = make(map[*streamLoop]struct{})
	}
	e.streamSet[sl] = struct{}{}
	e.loopsMu.Unlock()
}

func (e *Engine) removeStream(sl *streamLoop) {
	e.loopsMu.Lock()
	delete(e.streamSet, sl)
	e.loopsMu.Unlock()
}

// streamLoops lists the live fallback connections' loops.
func (e *Engine) streamLoops() []*loop {
	e.loopsMu.RLock()
	defer e.loopsMu.RUnlock()
	out := make([]*loop, 0, len(e.streamSet))
	for sl := range e.streamSet {
		out = append(out, sl.l)
	}
	return out
}
