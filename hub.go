package pondsocket

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/pondsocket/pondsocket/internal/counter"
	"github.com/pondsocket/pondsocket/internal/wsframe"

	"github.com/google/uuid"

	"github.com/pondsocket/pondsocket/internal/protocol"
	"github.com/pondsocket/pondsocket/internal/ratelog"
)

// newID is a connection's user id: a random (version 4) UUID, as the
// reference server gives. uuid.EnableRandPool would make it cheaper, but it
// changes the uuid package for the whole process, which a library must not
// do on import.
func newID() string { return uuid.NewString() }

// memberConn is what the channel layer needs of a connection: a way to send a
// pre-encoded frame and to close (wsframe.Sink). The engine's WebSocket
// connections, the fallback transports and the benchmarks' virtual
// connections all satisfy it.
type memberConn = wsframe.Sink

// fanouter delivers one frame to many connections at once. The engine
// implements it by grouping recipients per event loop; directFanout simply
// calls Send on each. The hub hands over the recipient list it built under
// the channel's lock, and the engine splits it per loop: one list from the
// channel to the loops.
type fanouter interface {
	Fanout(f *wsframe.Frame, conns []wsframe.Sink)
}

// directFanout sends to each connection in turn.
type directFanout struct{}

// Fanout implements Transport.
func (directFanout) Fanout(f *wsframe.Frame, conns []wsframe.Sink) {
	for _, c := range conns {
		c.Send(f)
	}
}

// Server is the channel layer: endpoints, channels, presence, assigns and
// message dispatch. It is transport-agnostic: a transport calls Connect,
// Open, Message and Disconnect.
type hub struct {
	opts      Options
	log       *slog.Logger
	rlog      *slog.Logger // for lines remote input can trigger (rate limited)
	transport fanouter
	pool      *pool

	// base is the parent of every handler context; cancelled when
	// Shutdown abandons the handlers still running.
	base       context.Context
	cancelBase context.CancelFunc
	// queued is the bytes waiting in all mailboxes (MaxTotalQueuedBytes).
	queued atomic.Int64

	mu        sync.RWMutex
	endpoints []*Endpoint

	stats      hubStats
	stateBytes atomic.Int64 // see charge
	node       clusterNode  // nil on a single node
}

// hubStats are cumulative counters of the channel layer.
type hubStats struct {
	Connections   atomic.Int64 // currently registered connections
	Channels      atomic.Int64 // live channel instances
	Joins         atomic.Int64
	JoinsDeclined atomic.Int64
	Leaves        atomic.Int64
	// Deliveries counts frames fanned out (broadcasts) and frames ×
	// recipients (deliveries), by instance or by the sender's loop: see
	// instance.countDelivery.
	Deliveries    counter.Pair
	InvalidIn     atomic.Int64
	RateLimited   atomic.Int64
	HandlerErrors atomic.Int64
	PresenceSent  atomic.Int64 // presence frames fanned out
	QueueClosed   atomic.Int64 // connections closed because their receive queue stayed full
	TimedOut      atomic.Int64 // handler calls that overran HandlerTimeout
}

// NewServer builds a channel layer that delivers through t (nil means
// DirectTransport).
func newHub(opts Options, t fanouter) *hub {
	opts = mergeOptions(&opts)
	if t == nil {
		t = directFanout{}
	}
	base, cancel := context.WithCancel(context.Background())
	return &hub{opts: opts, log: opts.Logger, rlog: ratelog.New(opts.Logger, 0, 0), transport: t,
		pool: newPool(opts.Handlers.Workers), base: base, cancelBase: cancel}
}

// Options returns the effective options.
func (s *hub) Options() Options { return s.opts }

// hubStats exposes the counters.
func (s *hub) Stats() *hubStats { return &s.stats }

// QueuedBytes is the bytes of client messages waiting for handlers, over
// all connections.
func (s *hub) QueuedBytes() int64 { return s.queued.Load() }

// Close stops the handler workers after the queued work ran (messages of
// closed connections are dropped, their leave handlers run), however long
// that takes.
func (s *hub) Close() { _ = s.Shutdown(context.Background()) }

// Shutdown stops the handler workers after the queued work ran, or when
// ctx ends, whichever comes first. Handlers still running then are
// abandoned: their contexts are cancelled, nothing queued runs any more, and
// the error (an *AbandonedError, errors.Is ErrHandlersAbandoned) says how
// many. Their workers leave as soon as they return.
func (s *hub) Shutdown(ctx context.Context) error {
	n := s.pool.shutdown(ctx)
	s.cancelBase()
	if n > 0 {
		s.log.Warn("handlers abandoned at shutdown", "count", n)
		return &AbandonedError{Count: n}
	}
	return nil
}

// CreateEndpoint registers an endpoint; the path is a route pattern
// (docs/protocol.md §7.1). Endpoints are tried in registration order. It panics
// on an invalid pattern, as registering routes is start-up code.
func (s *hub) CreateEndpoint(path string, handler func(*ConnectionContext) error) *Endpoint {
	p, err := compilePattern(path)
	if err != nil {
		panic(err)
	}
	ep := &Endpoint{srv: s, pattern: p, path: path, handler: handler, clients: newTable[*Client](), instances: newTable[*instance]()}
	s.mu.Lock()
	s.endpoints = append(s.endpoints, ep)
	s.mu.Unlock()
	return ep
}

// Endpoints lists the registered endpoints.
func (s *hub) Endpoints() []*Endpoint {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]*Endpoint(nil), s.endpoints...)
}

// hasEndpoint reports whether path matches an endpoint.
func (s *hub) hasEndpoint(path string) bool {
	s.mu.RLock()
	eps := s.endpoints
	s.mu.RUnlock()
	for _, ep := range eps {
		if _, ok := ep.pattern.Match(path); ok {
			return true
		}
	}
	return false
}

// handshake is the part of an HTTP upgrade request the connection handler
// sees.
type handshake struct {
	Path       string
	RawQuery   string
	Header     http.Header
	RemoteAddr string
	// SSEID is the stream id of a Server-Sent Events connection (empty
	// for a WebSocket): CONNECT carries it as connectionId instead of the
	// user id, because the SSE client sends it back to speak for the
	// connection, so it must be a secret only that client knows.
	SSEID string
}

// decision is the outcome of Connect.
type decision struct {
	Client   *Client          // non-nil when accepted
	Greeting []*wsframe.Frame // frames to send right after the upgrade (CONNECT first); owned by the caller
	Status   int              // HTTP status when declined
	Message  string
}

// Connect runs the connection handler of the first endpoint matching the
// path. It may block (user code). The returned client is not yet visible
// to anyone: call Open once the transport is ready.
func (s *hub) Connect(h *handshake) decision {
	s.mu.RLock()
	eps := s.endpoints
	s.mu.RUnlock()
	for _, ep := range eps {
		route, ok := ep.pattern.Match(h.Path)
		if !ok {
			continue
		}
		route.Query = parseQuery(h.RawQuery)
		return ep.connect(h, route)
	}
	return decision{Status: 404, Message: "Not Found"}
}

// Open makes an accepted client live on conn.
func (s *hub) Open(c *Client, conn memberConn) {
	c.conn = conn
	c.inline, _ = conn.(inlineSink)
	if l, ok := conn.(interface{ LoopIndex() int }); ok {
		c.shard = l.LoopIndex()
	}
	if !c.ep.claim(c) {
		c.gone.Store(true) // joins nothing; its disconnect finds no table entry of its own
		conn.Close(CloseUserConnected, "Too many connections for this user")
		return
	}
	s.stats.Connections.Add(1)
}

// Message handles one client text message. data is only read during the
// call (it may be a network buffer). Safe from any goroutine; messages of
// one client must be passed in order from one goroutine (its event loop).
func (s *hub) Message(c *Client, data []byte) { s.MessageAt(c, data, 0) }

// MessageAt is Message for a message read at the time at (Unix
// nanoseconds; 0: unknown, the clock is read when needed).
func (s *hub) MessageAt(c *Client, data []byte, at int64) {
	sm, err := protocol.ScanClientMessage(data, int(s.opts.MaxMessageSize))
	if err != nil {
		if protocol.IsClientPing(data) {
			return // the npm client's keep-alive: ignored (decision (d))
		}
		s.stats.InvalidIn.Add(1)
		status, reqID := 500, ""
		if de, ok := err.(*protocol.DecodeError); ok {
			status, reqID = de.Status, de.RequestID
		}
		c.sendEndpointError(reqID, status, err.Error())
		return
	}
	// An event's context and the copies of its message share one
	// allocation.
	var ctx *EventContext
	var buf []byte
	if sm.Action == protocol.ActionBroadcast {
		ctx, buf = newEventBox(sm.Size())
	}
	msg := sm.Copy(buf)
	if status, text, reqID, ok := s.checkFields(&msg); !ok {
		s.stats.InvalidIn.Add(1)
		c.sendEndpointError(reqID, status, text)
		return
	}
	c.enqueue(job{msg: msg, size: len(data), at: at, ctx: ctx})
}

// Disconnect removes the client from every channel at once: the other
// members see it leave and receive nothing more for it, and it can join
// nothing any more. Leave handlers and the cluster's notifications run on
// the worker pool after the client's queued messages (which find it in no
// channel). The transport calls it as soon as the connection starts
// closing. Safe from any goroutine.
func (s *hub) Disconnect(c *Client) {
	if c.gone.Swap(true) {
		return
	}
	// leave first: a handler woken by its context's cancellation then
	// finds the connection out of its channels already
	c.ep.leaveAll(c)
	c.cancelRun()
	c.enqueue(job{disconnect: true})
	c.unpark()
}
