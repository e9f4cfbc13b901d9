package engine

import (
	"errors"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// The acceptor.
//
// gnet's own listener gives up on the first accept error other than EAGAIN:
// when the process runs out of file descriptors (EMFILE) or the system does
// (ENFILE), its main reactor returns and the whole engine stops, dropping
// every socket. Checking a live count in OnOpen cannot prevent that,
// because gnet accepts a whole backlog before the first OnOpen runs. So the
// engine accepts by itself, on a few goroutines blocked in Go's netpoller,
// and hands each socket to an event loop (gnet's Enroll): the count is
// checked before each accept is handed over, and an accept that fails for
// lack of descriptors pauses briefly and resumes, as net/http and nginx do.
//
// Descriptor budget, with L the process's open-files limit and H
// Config.FDHeadroom:
//
//	live < L-H       served normally
//	L-H ≤ live < L-H/2   plain HTTP only (health checks and metrics keep
//	                 answering); upgrades are answered 503
//	live ≥ L-H/2     answered 503 and closed at once, on the acceptor
//
// When accept fails anyway (the application holds descriptors the engine
// does not see), the acceptor closes a spare descriptor it keeps for this
// purpose, accepts one connection, answers it 503 and closes it, takes the
// spare back, and waits before accepting again, so the backlog is answered
// rather than left hanging and the loop never spins.
//
// The price: gnet registers only sockets it accepted itself or gets as a
// net.Conn, which it duplicates; so each connection costs a dup, a close
// and Go's poller registration on top of the accept. Measured with
// `pondbench conns` on the 2-core machine, the connect rate of a saturated
// machine drops by about a third (bench/results). A hook for accept errors
// in gnet would let the engine go back to gnet's own acceptor.

// acceptors is how many goroutines accept: the hand-over to an event loop
// waits for the loop, so one goroutine per loop keeps the loops fed.
func (e *Engine) acceptors() int {
	n := e.cfg.EventLoops
	if n < 2 {
		n = 2
	}
	return n
}

// overCap travels through Enroll to OnOpen for a connection accepted in the
// plain-HTTP-only band.
type overCap struct{}

type acceptor struct {
	e     *Engine
	ln    *net.TCPListener
	wg    sync.WaitGroup
	spare sync.Mutex // serialises use of the spare descriptor
	sfd   *os.File
}

func (e *Engine) listen() (*net.TCPListener, error) {
	// Go's defaults for accepted sockets cost syscalls per connection the
	// engine does not want: keep-alive probes (the engine pings), so they
	// are off; TCP_NODELAY stays on (Go sets it, and the descriptor gnet
	// gets is a duplicate of the same socket, so gnet need not set it again).
	lc := net.ListenConfig{KeepAlive: -1}
	if e.cfg.ReusePort {
		lc.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, 0xf /* SO_REUSEPORT */, 1)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	ln, err := lc.Listen(e.ctx, "tcp", e.cfg.Addr)
	if err != nil {
		return nil, err
	}
	return ln.(*net.TCPListener), nil
}

func (e *Engine) startAcceptor(ln *net.TCPListener) *acceptor {
	a := &acceptor{e: e, ln: ln}
	a.sfd, _ = os.Open(os.DevNull)
	for range e.acceptors() {
		a.wg.Add(1)
		go a.run()
	}
	return a
}

// stop closes the listener and waits for the accepting goroutines.
func (a *acceptor) stop() {
	_ = a.ln.Close()
	a.wg.Wait()
	if a.sfd != nil {
		_ = a.sfd.Close()
	}
}

func (a *acceptor) run() {
	defer a.wg.Done()
	e := a.e
	backoff := time.Duration(0)
	for {
		nc, err := a.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue // another acceptor is shedding (shedOne)
			}
			if backoff == 0 {
				backoff = 5 * time.Millisecond
			} else if backoff < 500*time.Millisecond {
				backoff *= 2
			}
			e.stats.AcceptErrors.Add(1)
			if isFDExhaustion(err) {
				e.rlog.Warn("out of file descriptors: accepting paused", "err", err, "pause", backoff, "live", e.live.Load())
				a.shedOne()
			} else {
				e.rlog.Warn("accept failed", "err", err, "pause", backoff)
			}
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		a.handOver(nc)
	}
}

func (a *acceptor) handOver(nc *net.TCPConn) {
	e := a.e
	live := e.live.Load()
	switch {
	case e.draining.Load():
		refuseNow(nc, 503, "Server shutting down")
		return
	case live >= e.fdHard:
		e.stats.Declined.Add(1)
		refuseNow(nc, 503, "Server at its connection limit")
		return
	}
	var ctx any
	if live >= e.fdCap {
		ctx = overCap{}
	}
	if _, err := e.cli.EnrollContext(nc, ctx); err != nil {
		// EnrollContext closed nc; a failed dup means no descriptors
		e.stats.AcceptErrors.Add(1)
		e.rlog.Warn("cannot hand a connection to an event loop", "err", err)
	}
}

// shedOne answers one waiting connection with 503 using the spare
// descriptor, so that clients in the backlog learn the server is full.
func (a *acceptor) shedOne() {
	a.spare.Lock()
	defer a.spare.Unlock()
	if a.sfd == nil {
		return
	}
	_ = a.sfd.Close()
	a.sfd = nil
	if err := a.ln.SetDeadline(time.Now().Add(time.Millisecond)); err == nil {
		if nc, err := a.ln.AcceptTCP(); err == nil {
			a.e.stats.Declined.Add(1)
			refuseNow(nc, 503, "Server at its connection limit")
		}
		_ = a.ln.SetDeadline(time.Time{})
	}
	a.sfd, _ = os.Open(os.DevNull)
}

// refuseNow answers a connection that never reaches an event loop. The
// socket is fresh, so the short response fits its send buffer at once.
func refuseNow(nc *net.TCPConn, status int, msg string) {
	_ = nc.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	_, _ = nc.Write(httpResponse(status, msg, nil))
	_ = nc.Close()
}

func isFDExhaustion(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) || errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)
}
