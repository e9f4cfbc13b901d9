package pondsocket

import (
	"crypto/tls"
	"log/slog"
	"net/http"
	"reflect"
	"runtime"
	"strings"
	"time"
)

// Options configures connections and channels. Start from DefaultOptions;
// a zero field means "the default" for every field below.
type Options struct {
	// CheckOrigin enables the Origin allow-list (AllowedOrigins; "*" allows
	// any). Requests without an Origin header (non-browser clients) pass.
	CheckOrigin    bool
	AllowedOrigins []string

	// ReadBufferSize and WriteBufferSize are accepted for compatibility with
	// the original PondSocket Go API; the event-loop engine has no per-connection I/O buffers
	// (reads use one buffer per event loop, writes go straight to the socket
	// or to a pooled overflow buffer), so they have no effect.
	ReadBufferSize  int
	WriteBufferSize int

	// MaxMessageSize bounds a client message. A larger message gets the
	// protocol's 413 error and the connection stays open, as in the
	// reference server; a frame larger than twice this size is refused
	// before it is read, with WebSocket close 1009.
	MaxMessageSize int64

	// PingInterval: a connection silent for this long is pinged. PongWait:
	// a connection silent for this long is dropped (it must exceed
	// PingInterval). WriteWait bounds the closing handshake.
	PingInterval time.Duration
	PongWait     time.Duration
	WriteWait    time.Duration

	// EnableCompression negotiates permessage-deflate (RFC 7692) with
	// clients that offer it, without context takeover: each broadcast is
	// compressed once and shared, no compression state is kept per
	// connection, and messages under 256 bytes go uncompressed.
	EnableCompression bool

	// MaxConnections refuses upgrades beyond this many live connections
	// with HTTP 503 (0 = unlimited).
	MaxConnections int

	// SendChannelBuffer × 16 KiB is the per-connection outbound limit when
	// Outbound.MaxBytes is not set: a connection that falls further behind is
	// a slow consumer and is closed with 1008.
	SendChannelBuffer int
	// ReceiveChannelBuffer bounds the messages queued for one connection's
	// handlers; beyond it messages are refused with status 429.
	ReceiveChannelBuffer int
	// InternalQueueTimeout is accepted for compatibility; nothing in the
	// engine waits on a queue, so it has no effect.
	InternalQueueTimeout time.Duration

	// --- beyond the original PondSocket Go API, in sections ---

	// Transport: event loops, the upgrade and idle connections.
	Transport TransportOptions
	// Outbound bounds what the server holds for clients that read slowly.
	Outbound OutboundOptions
	// Inbound bounds what clients make the server receive and queue.
	Inbound InboundOptions
	// Handlers: the workers that run user handlers, and their fairness.
	Handlers HandlerOptions
	// State bounds the channel state (names, presence, assigns) clients
	// make the server hold.
	State StateOptions
	// Presence bounds the presence traffic of storms and chatty clients.
	Presence PresenceOptions

	// HTTPHandler serves plain HTTP requests on the same port (for example
	// /healthz, /metrics, a web page). Nil answers 404.
	HTTPHandler http.Handler
	// Logger receives operational logs (default slog.Default()).
	Logger *slog.Logger

	// PubSub makes this server one node of a cluster (NewRedisPubSub,
	// NewKafkaPubSub); nil is a single node.
	PubSub PubSub
	// Cluster tunes the node when PubSub is set.
	Cluster ClusterOptions

	now         func() time.Time // the clock (tests); time.Now
	clockIsReal bool             // now is time.Now: a transport's read time may stand for it
}

// TransportOptions: event loops, the upgrade and idle connections.
type TransportOptions struct {
	// EventLoops is the number of event loops (default: one per core).
	EventLoops int
	// HandshakeTimeout bounds the HTTP upgrade (slowloris protection).
	HandshakeTimeout time.Duration
	// IdleTimeout closes connections that sent no message for this long
	// (0 = never).
	IdleTimeout time.Duration
	// MaxPendingUpgrades bounds the connection handlers running at once
	// (they may block); further upgrades get HTTP 503 (default 1024).
	MaxPendingUpgrades int
	// FDHeadroom: this many file descriptors below the open-files limit
	// the server stops upgrading (503); the upper half of it is kept for
	// plain HTTP such as /healthz and /metrics (default 256).
	FDHeadroom int
	// MaxConnectionsPerUser bounds the live connections of one user id
	// (set with ConnectionContext.SetUserID) on an endpoint of this node;
	// an upgrade beyond it is declined with StatusUserConnected (409).
	// Default 16.
	MaxConnectionsPerUser int
}

// OutboundOptions bounds what the server holds for clients that read
// slowly: bytes written that the kernel has not taken yet.
type OutboundOptions struct {
	// MaxBytes is the per-connection limit (default 4 MiB; without it,
	// Options.SendChannelBuffer × 16 KiB when that is larger). A
	// connection that stays over it for SlowConsumerTimeout (default 5 s)
	// is a slow consumer, closed with 1008; one over MaxBurst (default 4 ×
	// MaxBytes) is closed at once, and so is one over MaxBytes while all
	// connections together hold more than MaxTotalBytes (default 1 GiB).
	MaxBytes            int
	MaxBurst            int
	MaxTotalBytes       int64
	SlowConsumerTimeout time.Duration
}

// InboundOptions bounds what clients make the server receive and queue.
type InboundOptions struct {
	// MessageRate/MessageBurst: per-connection token bucket for events
	// (negative rate disables). JoinRate/JoinBurst: the same for joins.
	MessageRate  float64
	MessageBurst int
	JoinRate     float64
	JoinBurst    int
	// MaxQueuedBytes bounds the bytes of one connection's messages waiting
	// for its handlers (default 4 MiB, at least MaxMessageSize): beyond it
	// messages get status 429, and a connection that keeps it exceeded is
	// closed with 1008. MaxTotalQueuedBytes bounds the same over all
	// connections (default 256 MiB): beyond it messages get status 429.
	MaxQueuedBytes      int
	MaxTotalQueuedBytes int
	// MaxInflateRate bounds the decompressed bytes per second one
	// permessage-deflate connection may cause (default 32 MiB/s, burst of
	// 8 × MaxMessageSize); beyond it the connection is closed with 1008.
	MaxInflateRate int
}

// HandlerOptions: the workers that run user handlers, and their fairness.
type HandlerOptions struct {
	// Workers bounds the goroutines running handlers (default 256 per
	// core).
	Workers int
	// MaxPerHandler bounds the workers one handler (one OnEvent handler of
	// a channel pattern, a pattern's join or leave handler) may occupy at
	// once (default: half of Workers); connections waiting for a busier
	// handler hold no worker.
	MaxPerHandler int
	// Timeout is the deadline of each handler's context (0 = none); a
	// handler that overruns it answers the client with status 504.
	Timeout time.Duration
	// Inline runs handlers on the event loops: only for handlers that
	// never block.
	Inline bool
}

// StateOptions bounds the channel state clients make the server hold.
type StateOptions struct {
	// MaxChannelsPerConnection bounds the channels one connection joins.
	MaxChannelsPerConnection int
	// MaxChannelNameBytes, MaxEventNameBytes, MaxRequestIDBytes bound those
	// fields of a client message (protocol error 413 beyond).
	MaxChannelNameBytes int
	MaxEventNameBytes   int
	MaxRequestIDBytes   int
	// MaxPresenceBytes bounds one presence entry, MaxAssignsBytes one
	// user's assigns (JSON bytes; status 413 beyond).
	MaxPresenceBytes int
	MaxAssignsBytes  int
	// MaxPerConnectionBytes bounds the channel names, presence and channel
	// assigns one connection makes the server hold (status 429 beyond);
	// MaxTotalBytes the same over all connections (status 503).
	MaxPerConnectionBytes int
	MaxTotalBytes         int64
}

// PresenceOptions bounds presence traffic.
type PresenceOptions struct {
	// Budget bounds the bytes per second a channel spends on presence
	// messages during a storm (changes are coalesced).
	Budget int
	// Rate/Burst: per-connection token bucket for the presence changes a
	// client's event handlers make (negative rate disables); beyond it the
	// change fails with status 429.
	Rate  float64
	Burst int
}

// Defaults: DefaultOptions and mergeOptions are the only places they are
// applied (the engine keeps fallbacks of its own for its tests; a test
// checks they agree).
const (
	DefaultMaxMessageSize           = 1 << 20
	DefaultMaxChannelsPerConnection = 1000
	DefaultMaxConnectionsPerUser    = 16
	DefaultMessageRate              = 1000
	DefaultMessageBurst             = 2000
	DefaultJoinRate                 = 100
	DefaultJoinBurst                = 200
	DefaultReceiveQueue             = 1024
	DefaultPresenceBudget           = 4 << 20
	DefaultPresenceRate             = 10
	DefaultPresenceBurst            = 20
	DefaultMaxChannelNameBytes      = 1 << 10
	DefaultMaxEventNameBytes        = 1 << 10
	DefaultMaxRequestIDBytes        = 256
	DefaultMaxPresenceBytes         = 8 << 10
	DefaultMaxAssignsBytes          = 64 << 10
	DefaultMaxConnectionStateBytes  = 1 << 20
	DefaultMaxStateBytes            = 4 << 30
	DefaultMaxQueuedBytes           = 4 << 20
	DefaultMaxTotalQueuedBytes      = 256 << 20
	DefaultPingInterval             = 30 * time.Second
	DefaultPongWait                 = 60 * time.Second
	DefaultWriteWait                = 10 * time.Second
	DefaultHandshakeTimeout         = 10 * time.Second
	DefaultMaxOutboundBytes         = 4 << 20
	DefaultMaxTotalOutboundBytes    = 1 << 30
	DefaultSlowConsumerTimeout      = 5 * time.Second
	DefaultMaxInflateRate           = 32 << 20
	DefaultMaxPendingUpgrades       = 1024
	DefaultFDHeadroom               = 256
	DefaultWorkersPerCore           = 256
)

// DefaultOptions returns every default: 1 MiB messages, pings every 30 s
// with a 60 s pong wait, one event loop per core, and the limits of the
// table in docs/configuration.md.
func DefaultOptions() *Options {
	workers := DefaultWorkersPerCore * runtime.GOMAXPROCS(0)
	return &Options{
		ReadBufferSize:       1024,
		WriteBufferSize:      1024,
		MaxMessageSize:       DefaultMaxMessageSize,
		PingInterval:         DefaultPingInterval,
		PongWait:             DefaultPongWait,
		WriteWait:            DefaultWriteWait,
		SendChannelBuffer:    256,
		ReceiveChannelBuffer: DefaultReceiveQueue,
		InternalQueueTimeout: time.Second,

		Transport: TransportOptions{EventLoops: runtime.GOMAXPROCS(0), MaxPendingUpgrades: DefaultMaxPendingUpgrades, FDHeadroom: DefaultFDHeadroom, HandshakeTimeout: DefaultHandshakeTimeout, MaxConnectionsPerUser: DefaultMaxConnectionsPerUser},
		Outbound:  OutboundOptions{MaxBytes: DefaultMaxOutboundBytes, MaxTotalBytes: DefaultMaxTotalOutboundBytes, SlowConsumerTimeout: DefaultSlowConsumerTimeout},
		Inbound:   InboundOptions{MaxInflateRate: DefaultMaxInflateRate, MessageRate: DefaultMessageRate, MessageBurst: DefaultMessageBurst, JoinRate: DefaultJoinRate, JoinBurst: DefaultJoinBurst, MaxQueuedBytes: DefaultMaxQueuedBytes, MaxTotalQueuedBytes: DefaultMaxTotalQueuedBytes},
		State:     StateOptions{MaxChannelsPerConnection: DefaultMaxChannelsPerConnection, MaxChannelNameBytes: DefaultMaxChannelNameBytes, MaxEventNameBytes: DefaultMaxEventNameBytes, MaxRequestIDBytes: DefaultMaxRequestIDBytes, MaxPresenceBytes: DefaultMaxPresenceBytes, MaxAssignsBytes: DefaultMaxAssignsBytes, MaxPerConnectionBytes: DefaultMaxConnectionStateBytes, MaxTotalBytes: DefaultMaxStateBytes},
		Handlers:  HandlerOptions{Workers: workers},
		Presence:  PresenceOptions{Budget: DefaultPresenceBudget, Rate: DefaultPresenceRate, Burst: DefaultPresenceBurst},
	}
}

// mergeOptions is the one place defaults are applied: every zero (or
// negative, for sizes and durations) field of o takes DefaultOptions'
// value, then the rules between fields hold. Negative rates stay: they
// disable their limit.
func mergeOptions(o *Options) Options {
	if o == nil {
		o = &Options{}
	}
	r := *o
	if r.Outbound.MaxBytes <= 0 && r.SendChannelBuffer > 0 && r.SendChannelBuffer*16<<10 > DefaultMaxOutboundBytes {
		r.Outbound.MaxBytes = r.SendChannelBuffer * 16 << 10 // SendChannelBuffer, the original API's outbound setting, in bytes
	}
	fillDefaults(reflect.ValueOf(&r).Elem(), reflect.ValueOf(DefaultOptions()).Elem())
	// derived defaults: DefaultOptions leaves them 0 so that they follow
	// the field they derive from
	if r.Handlers.MaxPerHandler <= 0 {
		r.Handlers.MaxPerHandler = (r.Handlers.Workers + 1) / 2
	}
	r.Handlers.MaxPerHandler = min(r.Handlers.MaxPerHandler, r.Handlers.Workers)
	r.Inbound.MaxQueuedBytes = max(r.Inbound.MaxQueuedBytes, int(r.MaxMessageSize))
	r.Inbound.MaxTotalQueuedBytes = max(r.Inbound.MaxTotalQueuedBytes, r.Inbound.MaxQueuedBytes)
	if r.Outbound.MaxBurst < r.Outbound.MaxBytes {
		r.Outbound.MaxBurst = 4 * r.Outbound.MaxBytes
	}
	if r.Logger == nil {
		r.Logger = slog.Default()
	}
	if r.now == nil {
		r.now = time.Now
		r.clockIsReal = true
	}
	return r
}

// timeOf is the time at (Unix ns, as the transport read a message), or
// the clock's time when at is 0 or the clock is not the real one (tests).
func (o *Options) timeOf(at int64) time.Time {
	if at != 0 && o.clockIsReal {
		return time.Unix(0, at)
	}
	return o.now()
}

// fillDefaults sets every zero (or negative) size, duration and rate of v
// to d's, in the sections too.
func fillDefaults(v, d reflect.Value) {
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		if !f.CanSet() {
			continue
		}
		switch f.Kind() {
		case reflect.Int, reflect.Int64:
			if f.Int() <= 0 {
				f.Set(d.Field(i))
			}
		case reflect.Float64:
			if f.Float() == 0 {
				f.Set(d.Field(i))
			}
		case reflect.Struct:
			if strings.HasSuffix(f.Type().Name(), "Options") && f.Type() != reflect.TypeOf(ClusterOptions{}) {
				fillDefaults(f, d.Field(i))
			}
		}
	}
}

// ServerOptions configures a standalone Server.
type ServerOptions struct {
	// ServerAddr is the listen address (default ":8080").
	ServerAddr string
	// ServerReadTimeout bounds reading the upgrade request (default 10 s).
	ServerReadTimeout time.Duration
	// ServerWriteTimeout bounds the closing handshake.
	ServerWriteTimeout time.Duration
	// ServerIdleTimeout closes connections idle for this long (0 = never).
	ServerIdleTimeout time.Duration
	// ServerTLSConfig serves TLS. TLS connections cannot ride the event
	// loops: they use a goroutine-based fallback transport (three
	// goroutines per connection) with the same framing, limits, pings and
	// close handshake. For very many connections terminate TLS at a proxy.
	ServerTLSConfig *tls.Config
	// Options are the connection and channel options (nil = defaults).
	Options *Options
}
