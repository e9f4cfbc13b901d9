// Package ceiling is the physical limit the load tool divides the other
// figures by: a bare gnet WebSocket server with no channel layer at all.
//
// It speaks just enough of the PondSocket protocol for the generator's
// fan-out code to run unchanged against it: after the upgrade it sends the
// precompiled CONNECT frame; a JOIN_CHANNEL is answered with an ACKNOWLEDGE
// (same channelName and requestId); any other text message is broadcast,
// byte for byte, to every connection: the frame is built once, and each
// connection gets it with one Write on its own event loop (one task per loop,
// no batching of several messages into one write). Rooms do not exist: every
// connection receives everything.
//
// With Config.Batch, frames that wait for a loop are written together: a
// loop that is still busy with earlier broadcasts finds several frames
// queued and writes them to each connection in one Write. That is the
// limit for a server that batches its writes (as ours does), where the
// unbatched mode is the limit for one write per message.
//
// With Config.Echo, a text message other than a join is written back to
// its sender only, as it came: the bare limit of the request/reply (`echo`)
// scenario, one write per request on the connection's own loop.
//
// Concurrency: gnet callbacks run on the connection's loop. The per-loop
// connection lists are only touched by their loop; the map from loop to list
// is guarded by a RWMutex because a broadcast on one loop reads it to reach
// the others.
package ceiling

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/pondsocket/pondsocket/bench/client"
)

// Config configures a Server.
type Config struct {
	Addr       string // host:port; port 0 picks one
	EventLoops int    // default 2
	Batch      bool   // coalesce frames waiting for a loop into one write per connection
	Echo       bool   // answer each message to its sender only (the echo scenario's ceiling)
	Logger     *slog.Logger
}

// Server is a running ceiling server.
type Server struct {
	cfg  Config
	addr string
	eng  gnet.Engine

	mu    sync.RWMutex
	loops map[gnet.EventLoop]*loopConns
	list  []*loopConns

	booted chan error
	done   chan error

	conns      atomic.Int64
	broadcasts atomic.Int64
	writes     atomic.Int64
}

type loopConns struct {
	el    gnet.EventLoop
	conns []gnet.Conn

	// Batch mode: frames waiting for this loop, and whether a drain task
	// is already queued.
	mu        sync.Mutex
	pending   []byte
	scheduled bool
}

type connState struct {
	open bool
	idx  int // position in its loop's list
	fr   client.FrameReader
	lc   *loopConns
}

var connectFrame = client.AppendServerFrame(nil, client.OpText,
	[]byte(`{"action":"CONNECT","event":"CONNECTION","channelName":"ENDPOINT","requestId":"ceiling","payload":{}}`))

// Start listens and returns once the server accepts connections.
func Start(cfg Config) (*Server, error) {
	if cfg.EventLoops <= 0 {
		cfg.EventLoops = 2
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	// gnet does not report the port it bound for ":0"; bind a probe first.
	addr := cfg.Addr
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("ceiling: addr %q: %w", addr, err)
	}
	if port == "0" {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, err
		}
		addr = l.Addr().String()
		l.Close()
	}
	s := &Server{
		cfg:    cfg,
		addr:   addr,
		loops:  map[gnet.EventLoop]*loopConns{},
		booted: make(chan error, 1),
		done:   make(chan error, 1),
	}
	go func() {
		err := gnet.Run(s, "tcp://"+addr,
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(cfg.EventLoops),
			gnet.WithReuseAddr(true),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithLogger(discardLogger{}),
		)
		select {
		case s.booted <- err:
		default:
		}
		s.done <- err
	}()
	if err := <-s.booted; err != nil {
		return nil, fmt.Errorf("ceiling: listen %s: %w", addr, err)
	}
	return s, nil
}

// Addr is the listening address.
func (s *Server) Addr() string { return s.addr }

// Conns is the number of upgraded connections.
func (s *Server) Conns() int64 { return s.conns.Load() }

// Stop closes every connection and stops the loops.
func (s *Server) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.eng.Stop(ctx)
	select {
	case <-s.done:
	case <-ctx.Done():
	}
	return err
}

// OnBoot implements gnet.EventHandler.
func (s *Server) OnBoot(eng gnet.Engine) gnet.Action {
	s.eng = eng
	select {
	case s.booted <- nil:
	default:
	}
	return gnet.None
}

// OnShutdown implements gnet.EventHandler.
func (s *Server) OnShutdown(gnet.Engine) {}

// OnTick implements gnet.EventHandler.
func (s *Server) OnTick() (time.Duration, gnet.Action) { return time.Hour, gnet.None }

// OnOpen implements gnet.EventHandler.
func (s *Server) OnOpen(c gnet.Conn) ([]byte, gnet.Action) {
	st := &connState{}
	st.fr.AllowMasked = true
	st.fr.MaxFrame = 1 << 20
	c.SetContext(st)
	return nil, gnet.None
}

// OnClose implements gnet.EventHandler.
func (s *Server) OnClose(c gnet.Conn, _ error) gnet.Action {
	st, _ := c.Context().(*connState)
	if st == nil || !st.open {
		return gnet.None
	}
	lc := st.lc
	last := len(lc.conns) - 1
	moved := lc.conns[last]
	lc.conns[st.idx] = moved
	moved.Context().(*connState).idx = st.idx
	lc.conns[last] = nil
	lc.conns = lc.conns[:last]
	st.open = false
	s.conns.Add(-1)
	return gnet.None
}

func (s *Server) loopOf(el gnet.EventLoop) *loopConns {
	s.mu.RLock()
	lc := s.loops[el]
	s.mu.RUnlock()
	if lc != nil {
		return lc
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if lc = s.loops[el]; lc == nil {
		lc = &loopConns{el: el}
		s.loops[el] = lc
		s.list = append(s.list, lc)
	}
	return lc
}

// OnTraffic implements gnet.EventHandler.
func (s *Server) OnTraffic(c gnet.Conn) gnet.Action {
	st := c.Context().(*connState)
	buf, _ := c.Peek(-1)
	if !st.open {
		end := bytes.Index(buf, []byte("\r\n\r\n"))
		if end < 0 {
			if len(buf) > 8<<10 {
				return gnet.Close
			}
			return gnet.None
		}
		key := headerValue(buf[:end], "sec-websocket-key")
		if key == "" {
			_, _ = c.Write([]byte("HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
			return gnet.Close
		}
		resp := make([]byte, 0, 160+len(connectFrame))
		resp = append(resp, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: "...)
		resp = append(resp, client.AcceptKey(key)...)
		resp = append(resp, "\r\n\r\n"...)
		resp = append(resp, connectFrame...)
		_, _ = c.Discard(end + 4)
		st.open = true
		st.lc = s.loopOf(c.EventLoop())
		st.idx = len(st.lc.conns)
		st.lc.conns = append(st.lc.conns, c)
		s.conns.Add(1)
		_, _ = c.Write(resp)
		buf, _ = c.Peek(-1)
	}
	if len(buf) == 0 {
		return gnet.None
	}
	closing := false
	n, err := st.fr.Feed(buf, func(op byte, p []byte) error {
		switch op {
		case client.OpText, client.OpBinary:
			s.onMessage(c, p)
		case client.OpPing:
			_, _ = c.Write(client.AppendServerFrame(nil, client.OpPong, p))
		case client.OpClose:
			body := p
			if len(body) > 2 {
				body = body[:2]
			}
			_, _ = c.Write(client.AppendServerFrame(nil, client.OpClose, body))
			closing = true
			return errStop
		}
		return nil
	})
	_, _ = c.Discard(n)
	if closing || (err != nil && !errors.Is(err, errStop)) {
		return gnet.Close
	}
	return gnet.None
}

var errStop = errors.New("stop")

func (s *Server) onMessage(c gnet.Conn, p []byte) {
	var m client.Message
	if client.ParseMessage(p, &m) == nil && string(m.Action) == "JOIN_CHANNEL" {
		ack := make([]byte, 0, 96+len(m.ChannelName)+len(m.RequestID))
		ack = append(ack, `{"action":"SYSTEM","event":"ACKNOWLEDGE","channelName":"`...)
		ack = append(ack, m.ChannelName...)
		ack = append(ack, `","requestId":"`...)
		ack = append(ack, m.RequestID...)
		ack = append(ack, `","payload":{}}`...)
		_, _ = c.Write(client.AppendServerFrame(nil, client.OpText, ack))
		return
	}
	if s.cfg.Echo {
		_, _ = c.Write(client.AppendServerFrame(make([]byte, 0, len(p)+10), client.OpText, p))
		return
	}
	s.broadcast(c.EventLoop(), client.AppendServerFrame(make([]byte, 0, len(p)+10), client.OpText, p))
}

// broadcast writes frame to every connection: inline for the caller's loop,
// one Execute task for each other loop.
func (s *Server) broadcast(from gnet.EventLoop, frame []byte) {
	s.broadcasts.Add(1)
	s.mu.RLock()
	loops := append([]*loopConns(nil), s.list...)
	s.mu.RUnlock()
	if s.cfg.Batch {
		for _, lc := range loops {
			lc.mu.Lock()
			lc.pending = append(lc.pending, frame...)
			schedule := !lc.scheduled
			lc.scheduled = true
			lc.mu.Unlock()
			if schedule {
				_ = lc.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
					lc.mu.Lock()
					batch := lc.pending
					lc.pending, lc.scheduled = nil, false
					lc.mu.Unlock()
					s.writeAll(lc, batch)
					return nil
				}))
			}
		}
		return
	}
	// Hand the other loops their task first, so they write in parallel
	// with this one instead of after it.
	var own *loopConns
	for _, lc := range loops {
		if lc.el == from {
			own = lc
			continue
		}
		_ = lc.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
			s.writeAll(lc, frame)
			return nil
		}))
	}
	if own != nil {
		s.writeAll(own, frame)
	}
}

func (s *Server) writeAll(lc *loopConns, frame []byte) {
	for _, c := range lc.conns {
		_, _ = c.Write(frame)
	}
	s.writes.Add(int64(len(lc.conns)))
}

func headerValue(head []byte, name string) string {
	for _, line := range bytes.Split(head, []byte("\r\n"))[1:] {
		k, v, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(k), []byte(name)) {
			return string(bytes.TrimSpace(v))
		}
	}
	return ""
}

type discardLogger struct{}

func (discardLogger) Debugf(string, ...any) {}
func (discardLogger) Infof(string, ...any)  {}
func (discardLogger) Warnf(string, ...any)  {}
func (discardLogger) Errorf(string, ...any) {}
func (discardLogger) Fatalf(f string, a ...any) {
	panic(fmt.Sprintf(f, a...))
}
