package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pondsocket/pondsocket/internal/wsframe"

	"github.com/panjf2000/gnet/v2"

	"github.com/pondsocket/pondsocket/internal/prefetch"
	"github.com/pondsocket/pondsocket/internal/ratelog"
)

// Handler is what the layer above the engine supplies.
//
// Upgrade runs on a fresh goroutine (or on the event loop with
// Config.InlineUpgrade) and may block. State it creates must only become
// visible to others in OnOpen: a connection can die before the decision is
// applied, and then OnOpen and OnClose are never called for it.
//
// OnOpen, OnMessage and OnClose run on the connection's event loop and must
// not block. The data given to OnMessage is only valid during the call.
type Handler interface {
	Upgrade(r *Request) Decision
	OnOpen(c *Conn)
	OnMessage(c *Conn, op byte, data []byte)
	OnClose(c *Conn, code int, err error)
}

// Engine is the gnet reactor: a few event loops own every socket, parse the
// HTTP upgrade and WebSocket frames in place, and write pre-encoded frames.
type Engine struct {
	cfg Config
	h   Handler
	log *slog.Logger

	cli  *gnet.Client // the event loops (gnet's client mode: no gnet listener)
	acc  *acceptor    // the listener (accept.go); nil with NoListener
	addr net.Addr
	done chan struct{}

	loopsMu   sync.RWMutex
	loops     map[gnet.EventLoop]*loop
	loopList  []*loop
	streamSet map[*streamLoop]struct{}     // fallback connections (stream.go)
	streams   sync.WaitGroup               // their goroutines
	streamLn  atomic.Pointer[net.Listener] // ServeListener's listener

	draining atomic.Bool
	started  atomic.Bool
	stopped  atomic.Bool

	live     atomic.Int64 // every accepted TCP connection
	fdCap    int64        // beyond this many live connections: plain HTTP only (accept.go)
	fdHard   int64        // beyond this many: refused on the acceptor
	upgraded atomic.Int64 // connections deciding or open (MaxConnections)
	deciding atomic.Int64 // Handler.Upgrade calls running (MaxPendingUpgrades)
	drained  chan struct{}
	drainMu  sync.Mutex

	sse   sseStreams // open event streams by id (sse.go)
	stats Stats
	ctx   context.Context
	rlog  *slog.Logger // for lines remote input can trigger (rate-limited)
}

// New builds an engine; Start runs it.
func New(cfg Config, h Handler) *Engine {
	cfg = cfg.withDefaults()
	if cfg.PongWait <= cfg.PingInterval {
		cfg.Logger.Warn("PongWait should exceed PingInterval; using 1.5×PingInterval", "pingInterval", cfg.PingInterval, "pongWait", cfg.PongWait)
		cfg.PongWait = cfg.PingInterval + cfg.PingInterval/2
	}
	fdCap, fdHard := int64(1<<62), int64(1<<62)
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil && rl.Cur < 1<<62 {
		fdCap = max(int64(rl.Cur)-int64(cfg.FDHeadroom), 16)
		fdHard = max(int64(rl.Cur)-int64(cfg.FDHeadroom)/2, fdCap+1)
	}
	return &Engine{
		fdCap:  fdCap,
		fdHard: fdHard,
		rlog:   ratelog.New(cfg.Logger, 0, 0),
		cfg:    cfg,
		h:      h,
		log:    cfg.Logger,
		done:   make(chan struct{}),
		loops:  make(map[gnet.EventLoop]*loop),
		ctx:    context.Background(),
	}
}

// Config returns the effective configuration (defaults applied).
func (e *Engine) Config() Config { return e.cfg }

// Start binds the listener and starts the event loops. It returns once the
// engine accepts connections, or with the bind error.
func (e *Engine) Start() error {
	if !e.started.CompareAndSwap(false, true) {
		return errors.New("engine: already started")
	}
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		// Adopt registers connections from other goroutines: round robin
		// is not safe for that, least-connections is.
		gnet.WithLoadBalancing(gnet.LeastConnections),
		gnet.WithNumEventLoop(e.cfg.EventLoops),
		gnet.WithReuseAddr(true),
		gnet.WithReusePort(e.cfg.ReusePort),
		gnet.WithTicker(true),
		// Sockets reach the loops from Go's listener or an application's
		// HTTP server, both of which set TCP_NODELAY already (accept.go).
		gnet.WithTCPNoDelay(gnet.TCPDelay),
		gnet.WithLogger(gnetLogger{e.log}),
		gnet.WithReadBufferCap(64 << 10),
	}
	// The event loops run in gnet's client mode: gnet owns no listener,
	// connections arrive through the acceptor (accept.go) or Adopt.
	cli, err := gnet.NewClient(&gnetHandler{e}, opts...)
	if err == nil {
		err = cli.Start()
	}
	if err != nil {
		close(e.done)
		return fmt.Errorf("engine: start event loops: %w", err)
	}
	e.cli = cli
	if e.cfg.NoListener {
		return nil
	}
	ln, err := e.listen()
	if err != nil {
		_ = cli.Stop()
		close(e.done)
		return fmt.Errorf("engine: listen %s: %w", e.cfg.Addr, err)
	}
	e.addr = ln.Addr()
	e.acc = e.startAcceptor(ln)
	return nil
}

// Addr is the bound listen address (useful with ":0").
func (e *Engine) Addr() net.Addr { return e.addr }

// Done is closed when the engine has fully stopped.
func (e *Engine) Done() <-chan struct{} { return e.done }

// Connections is the number of live TCP connections.
func (e *Engine) Connections() int { return int(e.live.Load()) }

// Stop shuts the engine down gracefully: new upgrades are refused with 503,
// every WebSocket gets close 1001 "Server shutting down", and the engine
// waits for the close handshakes until ctx ends; then the rest are closed,
// the listener is closed and the event loops exit. When Stop returns no
// goroutine or file descriptor of the engine remains.
func (e *Engine) Stop(ctx context.Context) error {
	if !e.started.Load() {
		return nil
	}
	if !e.stopped.CompareAndSwap(false, true) {
		<-e.done
		return nil
	}
	e.drainMu.Lock()
	e.draining.Store(true)
	e.drained = make(chan struct{})
	if e.live.Load() == 0 {
		close(e.drained)
	}
	drained := e.drained
	e.drainMu.Unlock()

	if ln := e.streamLn.Load(); ln != nil {
		_ = (*ln).Close() // stop accepting fallback connections
	}
	for _, l := range e.loopSnapshot() {
		l.post(cmd{kind: cmdDrain})
	}
	for _, l := range e.streamLoops() {
		l.post(cmd{kind: cmdDrain})
	}
	var err error
	select {
	case <-drained:
	case <-ctx.Done():
		err = ctx.Err()
	case <-e.done:
	}
	// Cut the fallback connections still open and wait for their goroutines.
	for _, l := range e.streamLoops() {
		sl := l.el.(*streamLoop)
		_ = sl.Execute(context.Background(), runFunc(func(context.Context) error { sl.sc.closeNow(nil); return nil }))
	}
	e.streams.Wait()
	// Stop accepting, then stop the loops (gnet closes what is left).
	if e.acc != nil {
		e.acc.stop()
	}
	if stopErr := e.cli.Stop(); err == nil && stopErr != nil {
		err = stopErr
	}
	close(e.done)
	return err
}

func (e *Engine) loopSnapshot() []*loop {
	e.loopsMu.RLock()
	defer e.loopsMu.RUnlock()
	return append([]*loop(nil), e.loopList...)
}

func (e *Engine) loopOf(el gnet.EventLoop) *loop {
	e.loopsMu.RLock()
	l := e.loops[el]
	e.loopsMu.RUnlock()
	if l != nil {
		return l
	}
	e.loopsMu.Lock()
	defer e.loopsMu.Unlock()
	if l = e.loops[el]; l == nil {
		l = newLoop(e, gnetLoop{el}, len(e.loopList))
		e.loops[el] = l
		e.loopList = append(e.loopList, l)
	}
	return l
}

func (e *Engine) connGone() {
	if e.live.Add(-1) == 0 && e.draining.Load() {
		e.drainMu.Lock()
		if e.drained != nil {
			select {
			case <-e.drained:
			default:
				close(e.drained)
			}
		}
		e.drainMu.Unlock()
	}
}

type runFunc func(ctx context.Context) error

func (f runFunc) Run(ctx context.Context) error { return f(ctx) }

// gnetHandler adapts the engine to gnet's callbacks; every method runs on an
// event loop except OnTick (gnet's ticker goroutine) and OnBoot/OnShutdown.
type gnetHandler struct{ e *Engine }

func (g *gnetHandler) OnBoot(gnet.Engine) gnet.Action { return gnet.None }

func (g *gnetHandler) OnShutdown(gnet.Engine) {}

func (g *gnetHandler) OnOpen(gc gnet.Conn) ([]byte, gnet.Action) {
	c, out, act := g.e.open(gc, g.e.loopOf(gc.EventLoop()), gc.Context())
	gc.SetContext(c)
	return out, act
}

func (g *gnetHandler) OnClose(gc gnet.Conn, err error) gnet.Action {
	if c, _ := gc.Context().(*Conn); c != nil {
		c.socketClosed(err)
	}
	return gnet.None
}

func (g *gnetHandler) OnTraffic(gc gnet.Conn) gnet.Action {
	c, _ := gc.Context().(*Conn)
	if c == nil {
		return gnet.Close
	}
	return c.traffic()
}

// open runs when a socket reaches its loop: accepted (ctx nil or
// overCap) or adopted (ctx *adoption). Both transports call it.
func (e *Engine) open(s socket, l *loop, ctx any) (*Conn, []byte, gnet.Action) {
	e.live.Add(1)
	now := time.Now().UnixNano()
	c := &Conn{gc: s, loop: l, e: e, state: stateHandshake, since: now, lastRead: now, lastData: now, qhead: -1, qtail: -1}
	c.remote = s.RemoteAddr()
	l.add(c)
	switch v := ctx.(type) {
	case *adoption:
		c.adopted(v)
		return c, nil, gnet.None
	case overCap:
		// close to the open-files limit (accept.go): plain HTTP only
		c.overCap = true
	}
	if e.draining.Load() {
		c.state = stateDone
		return c, httpResponse(503, "Server shutting down", nil), gnet.Close
	}
	return c, nil, gnet.None
}

// socketClosed runs once the socket is closed, on its loop.
func (c *Conn) socketClosed(err error) {
	e := c.e
	c.state = stateClosed
	c.loop.remove(c)
	c.releaseFrag()
	if c.reserved {
		c.reserved = false
		e.upgraded.Add(-1)
	}
	c.forget()
	if c.sse {
		e.sse.remove(c.sseID, c)
	}
	code := int(c.closeCode)
	if code == 0 {
		code = 1006
	}
	c.notifyClosed(code, err)
	e.connGone()
}

// traffic handles the bytes waiting in the socket's inbound buffer.
func (c *Conn) traffic() gnet.Action {
	switch c.state {
	case stateHandshake:
		return c.readHandshake()
	case stateOpen, stateClosing:
		if c.sse {
			// an event stream's client has nothing more to say on it
			_, _ = c.gc.Discard(-1)
			return gnet.None
		}
		// The handler's state for this connection is read once the
		// frames are parsed: start loading it now.
		prefetch.Any(c.ctx, 2)
		return c.readFrames()
	default:
		// Deciding, serving plain HTTP or done: a client must not send
		// before the answer; drop what arrives rather than buffer it.
		_, _ = c.gc.Discard(-1)
		return gnet.None
	}
}

func (g *gnetHandler) OnTick() (time.Duration, gnet.Action) {
	e := g.e
	for _, l := range e.loopSnapshot() {
		l.post(cmd{kind: cmdSweep})
	}
	for _, l := range e.streamLoops() {
		l.post(cmd{kind: cmdSweep})
	}
	return e.cfg.tickInterval(), gnet.None
}

// gnetLogger routes gnet's own logs to slog; gnet's debug chatter is dropped.
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(string, ...any) {}
func (g gnetLogger) Infof(format string, args ...any) {
	g.l.Debug(fmt.Sprintf(format, args...), "component", "gnet")
}
func (g gnetLogger) Warnf(format string, args ...any) {
	g.l.Warn(fmt.Sprintf(format, args...), "component", "gnet")
}
func (g gnetLogger) Errorf(format string, args ...any) {
	g.l.Error(fmt.Sprintf(format, args...), "component", "gnet")
}
func (g gnetLogger) Fatalf(format string, args ...any) {
	g.l.Error(fmt.Sprintf(format, args...), "component", "gnet", "fatal", true)
}

// keep protocol imported for the Frame type used across the package API.
var _ = wsframe.Headroom
