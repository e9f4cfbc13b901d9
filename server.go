package pondsocket

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"
	"unsafe"

	"github.com/pondsocket/pondsocket/internal/prefetch"
	"github.com/pondsocket/pondsocket/internal/wsframe"

	"github.com/pondsocket/pondsocket/cluster"
	"github.com/pondsocket/pondsocket/internal/engine"
)

// Server is a standalone PondSocket server: the event-loop engine listening
// on ServerAddr, serving the endpoints created on it.
type Server struct {
	*core
	opts    ServerOptions
	tlsAddr net.Addr
}

// NewServer builds a server; endpoints are added with CreateEndpoint and it
// starts with Listen or Start. It reads no environment variable: the
// address is ServerAddr (default ":8080").
func NewServer(opts *ServerOptions) *Server {
	if opts == nil {
		opts = &ServerOptions{}
	}
	so := *opts
	if so.ServerAddr == "" {
		so.ServerAddr = ":8080"
	}
	o := mergeOptions(so.Options)
	cfg := engineConfig(so.ServerAddr, so, o)
	if so.ServerTLSConfig != nil {
		// TLS cannot ride the event loops: Start's listener feeds the
		// goroutine-based fallback transport (same framing and limits).
		cfg.NoListener = true
	}
	return &Server{core: newCore(o, cfg), opts: so}
}

func engineConfig(addr string, so ServerOptions, o Options) engine.Config {
	max := int(o.MaxMessageSize) * 2
	if max < int(o.MaxMessageSize)+64<<10 {
		max = int(o.MaxMessageSize) + 64<<10
	}
	cfg := engine.Config{
		Addr:                  addr,
		EventLoops:            o.Transport.EventLoops,
		MaxMessageSize:        max,
		MaxConnections:        o.MaxConnections,
		MaxOutboundBytes:      o.Outbound.MaxBytes,
		MaxOutboundBurst:      o.Outbound.MaxBurst,
		MaxTotalOutboundBytes: o.Outbound.MaxTotalBytes,
		SlowConsumerTimeout:   o.Outbound.SlowConsumerTimeout,
		MaxInflateRate:        o.Inbound.MaxInflateRate,
		MaxPendingUpgrades:    o.Transport.MaxPendingUpgrades,
		FDHeadroom:            o.Transport.FDHeadroom,
		HandshakeTimeout:      o.Transport.HandshakeTimeout,
		PingInterval:          o.PingInterval,
		PongWait:              o.PongWait,
		IdleTimeout:           o.Transport.IdleTimeout,
		CloseTimeout:          o.WriteWait,
		CheckOrigin:           o.CheckOrigin,
		AllowedOrigins:        o.AllowedOrigins,
		EnableCompression:     o.EnableCompression,
		HTTP:                  o.HTTPHandler,
		Logger:                o.Logger,
	}
	if so.ServerReadTimeout > 0 {
		cfg.HandshakeTimeout = so.ServerReadTimeout
	}
	if so.ServerWriteTimeout > 0 {
		cfg.CloseTimeout = so.ServerWriteTimeout
	}
	if so.ServerIdleTimeout > 0 {
		cfg.IdleTimeout = so.ServerIdleTimeout
	}
	return cfg
}

// CreateEndpoint registers a WebSocket endpoint (a route pattern such as
// "/api/socket") with its connection handler.
func (s *Server) CreateEndpoint(path string, handler func(*ConnectionContext) error) *Endpoint {
	return s.hub.CreateEndpoint(path, handler)
}

// Start listens and serves in the background.
func (s *Server) Start() error {
	if s.running() {
		return errors.New("pondsocket: server already started")
	}
	var ln net.Listener
	if s.opts.ServerTLSConfig != nil {
		l, err := net.Listen("tcp", s.opts.ServerAddr)
		if err != nil {
			return fmt.Errorf("pondsocket: listen %s: %w", s.opts.ServerAddr, err)
		}
		ln = tls.NewListener(l, s.opts.ServerTLSConfig)
		s.tlsAddr = ln.Addr()
	}
	if err := s.start(ln); err != nil {
		if ln != nil {
			_ = ln.Close()
		}
		return err
	}
	return nil
}

// Listen starts the server and blocks until SIGINT or SIGTERM, then stops
// gracefully (30 s drain) and returns Stop's error.
func (s *Server) Listen() error {
	if err := s.Start(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	select {
	case <-ctx.Done():
	case <-s.eng.Done():
		return errors.New("pondsocket: engine stopped unexpectedly")
	}
	s.log.Info("shutting down")
	return s.Stop(30 * time.Second)
}

// Stop shuts down gracefully: every client gets close 1001, messages still
// queued for closed connections are dropped, leave handlers run, the
// cluster node leaves, and the call returns when all is done or by the
// deadline. Then remaining connections are cut, and handlers still running
// are abandoned: their contexts are cancelled and the error says how many
// (errors.Is ErrHandlersAbandoned; errors.As *AbandonedError).
func (s *Server) Stop(timeout time.Duration) error { return s.stop(timeout) }

// Done is closed when the server has stopped, by Stop or because its
// listener failed (a process should then exit and be restarted).
func (s *Server) Done() <-chan struct{} { return s.eng.Done() }

// ClusterNode is the cluster node when Options.PubSub is set (nil
// otherwise): its ID, Stats and the nodes it sees.
func (s *Server) ClusterNode() *cluster.Node { return s.node }

// Ready reports whether the server can serve its part of the cluster: nil
// while it runs and, when Options.PubSub is set, the bus is reachable
// (publishing and receiving); otherwise what is wrong. cmd/pondsocket
// serves it as /readyz. Local delivery goes on while the bus is away.
func (s *Server) Ready() error { return s.ready() }

// Addr is the bound address once started.
func (s *Server) Addr() net.Addr {
	if s.tlsAddr != nil {
		return s.tlsAddr
	}
	return s.eng.Addr()
}

// IsRunning reports whether the server serves.
func (s *Server) IsRunning() bool { return s.running() }

// Stats returns a snapshot of the server counters.
func (s *Server) Stats() Stats { return s.stats() }

// Stats is a snapshot of server counters (for metrics).
type Stats struct {
	Connections, Channels                                          int64
	Accepted, Declined, HTTPRequests                               int64
	MessagesIn, BytesIn, FramesOut, BytesOut, Writes               int64
	SlowConsumers, ProtocolErrors, PongTimeouts, HandshakeTimeouts int64
	IdleTimeouts, AcceptErrors, PongsCollapsed                     int64
	CompressedConnections, TLSFailures                             int64
	Joins, JoinsDeclined, Leaves, InvalidMessages, RateLimited     int64
	HandlerErrors, Broadcasts, Deliveries, PresenceMessages        int64
	QueueClosed, HandlerTimeouts                                   int64
	StateBytes                                                     int64 // channel names, presence, assigns held for clients
}

func collectStats(e *engine.Engine, c *hub) Stats {
	var st Stats
	cs := c.Stats()
	st.Connections = cs.Connections.Load()
	st.Channels = cs.Channels.Load()
	st.Joins = cs.Joins.Load()
	st.JoinsDeclined = cs.JoinsDeclined.Load()
	st.Leaves = cs.Leaves.Load()
	st.InvalidMessages = cs.InvalidIn.Load()
	st.RateLimited = cs.RateLimited.Load()
	st.HandlerErrors = cs.HandlerErrors.Load()
	st.Broadcasts, st.Deliveries = cs.Deliveries.Load()
	st.PresenceMessages = cs.PresenceSent.Load()
	st.QueueClosed = cs.QueueClosed.Load()
	st.HandlerTimeouts = cs.TimedOut.Load()
	st.StateBytes = c.StateBytes()
	if e != nil {
		es := e.Stats()
		st.Accepted = es.Accepted.Load()
		st.Declined = es.Declined.Load()
		st.HTTPRequests = es.HTTPRequests.Load()
		st.MessagesIn = es.MessagesIn.Load()
		st.BytesIn = es.BytesIn.Load()
		st.FramesOut = es.FramesOut.Load()
		st.BytesOut = es.BytesOut.Load()
		st.Writes = es.Writes.Load()
		st.SlowConsumers = es.SlowConsumers.Load()
		st.ProtocolErrors = es.ProtocolErrors.Load()
		st.PongTimeouts = es.PongTimeouts.Load()
		st.HandshakeTimeouts = es.HandshakeTimeouts.Load()
		st.IdleTimeouts = es.IdleTimeouts.Load()
		st.AcceptErrors = es.AcceptErrors.Load()
		st.PongsCollapsed = es.PongsCollapsed.Load()
		st.CompressedConnections = es.Deflate.Load()
		st.TLSFailures = es.TLSFailures.Load()
	}
	return st
}

// bridge connects the engine (sockets) to the channel layer (PondSocket).
type bridge struct {
	ch  *hub
	eng *engine.Engine
	log *slog.Logger
}

func (b *bridge) Upgrade(r *engine.Request) engine.Decision {
	d := b.ch.Connect(&handshake{Path: r.Path, RawQuery: r.RawQuery, Header: r.Header, RemoteAddr: r.RemoteAddr.String(), SSEID: r.SSEID})
	if d.Client == nil {
		return engine.Decision{Status: d.Status, Message: d.Message}
	}
	return engine.Decision{Accept: true, Context: d.Client, Greeting: d.Greeting}
}

func (b *bridge) OnOpen(c *engine.Conn) {
	b.ch.Open(c.Context().(*Client), c)
}

func (b *bridge) OnMessage(c *engine.Conn, _ byte, data []byte) {
	// Binary frames carry the same JSON, as the reference server accepts.
	cl := c.Context().(*Client)
	// The channel is looked up after the message is decoded: its first
	// two cache lines (name; lobby and route) load meanwhile.
	prefetch.Lines(unsafe.Pointer(cl.hint.Load()), 2)
	b.ch.MessageAt(cl, data, c.ReadTime())
}

func (b *bridge) OnClose(c *engine.Conn, _ int, _ error) {
	b.ch.Disconnect(c.Context().(*Client))
}

// Fanout hands a broadcast to the engine, which groups it per event loop
// and sends to other connection kinds (virtual, fallback) directly.
func (b *bridge) Fanout(f *wsframe.Frame, conns []wsframe.Sink) { b.eng.Fanout(f, conns) }
