package engine

import (
	"cmp"
	"log/slog"
	"net/http"
	"runtime"
	"time"
)

// Config holds every knob of the engine. The zero value of a field means
// "use the default" (see withDefaults), so a hand-built Config is safe.
type Config struct {
	// Addr is the listen address, e.g. "127.0.0.1:8080" or ":0".
	Addr string
	// NoListener runs the event loops without a listener: connections only
	// arrive through Adopt (an HTTP server of the application upgrades
	// them and hands them over).
	NoListener bool
	// EventLoops is the number of gnet event loops (default: one per core).
	EventLoops int

	// MaxMessageSize bounds a reassembled client message (close 1009).
	MaxMessageSize int
	// MaxHeaderBytes bounds the HTTP upgrade request head (HTTP 431).
	MaxHeaderBytes int
	// MaxBodyBytes bounds the body of a plain HTTP request routed to HTTP.
	MaxBodyBytes int
	// MaxConnections refuses upgrades beyond this many live connections
	// with HTTP 503 (0 = unlimited).
	MaxConnections int
	// FDHeadroom is how many file descriptors below the process's open-files
	// limit the engine stops taking TCP connections (they are answered 503
	// and closed at once). Running out of descriptors would make accept
	// fail, which stops gnet's listener; the headroom keeps the server
	// serving at its limit. Default 256.
	FDHeadroom int
	// MaxOutboundBytes is the per-connection limit of bytes written but not
	// yet taken by the kernel (writer.go). A connection that stays over it
	// for SlowConsumerTimeout is a slow consumer and is closed with 1008;
	// one that would go over MaxOutboundBurst is closed at once.
	MaxOutboundBytes int
	// MaxOutboundBurst bounds what a momentary burst may leave pending for
	// one connection (default 4 × MaxOutboundBytes).
	MaxOutboundBurst int
	// MaxTotalOutboundBytes bounds the pending bytes of all connections
	// together. Over it, a connection over MaxOutboundBytes is cut at once
	// instead of after SlowConsumerTimeout (default 1 GiB).
	MaxTotalOutboundBytes int64
	// SlowConsumerTimeout is how long a connection may stay over
	// MaxOutboundBytes (default 5 s).
	SlowConsumerTimeout time.Duration

	// HandshakeTimeout closes a connection whose upgrade request has not
	// completed (slowloris) or whose upgrade decision did not come in time.
	HandshakeTimeout time.Duration
	// PingInterval is how long a connection may be silent before the server
	// pings it.
	PingInterval time.Duration
	// PongWait is how long after a ping the peer has to show life (a pong or
	// any frame) before it is dropped.
	PongWait time.Duration
	// IdleTimeout closes connections that sent no data message for this
	// long (0 = never; pongs keep a connection alive but not "active").
	IdleTimeout time.Duration
	// CloseTimeout is how long to wait for the peer's close frame after the
	// server sent one.
	CloseTimeout time.Duration

	// CheckOrigin enables the Origin allow-list.
	CheckOrigin bool
	// AllowedOrigins are exact origins ("https://example.com") or "*".
	AllowedOrigins []string

	// HTTP serves plain (non-upgrade) HTTP requests on the same port, for
	// example /healthz and /metrics. It runs on its own goroutine, never on
	// an event loop. Nil answers 404 (or 400 for malformed requests).
	HTTP http.Handler

	// SSEPath reports whether a path is an endpoint that also serves the
	// Server-Sent Events transport (sse.go): a GET with Accept:
	// text/event-stream opens a stream through Handler.Upgrade, and POST,
	// DELETE and OPTIONS requests on the path carry the streams' client
	// messages, disconnects and CORS preflights. Nil: no SSE.
	SSEPath func(path string) bool
	// MaxSSEBody bounds the body of an SSE POST, one client message
	// (HTTP 413 beyond). Default MaxMessageSize.
	MaxSSEBody int

	// EnableCompression negotiates permessage-deflate (deflate.go).
	EnableCompression bool
	// MaxInflateRate bounds the bytes per second one connection may make
	// the server decompress (a 1 MiB message can arrive as 1 KiB), with a
	// burst of 4 × MaxMessageSize. Beyond it: close 1008. Default 32 MiB/s.
	MaxInflateRate int
	// CompressionThreshold: smaller messages are sent uncompressed
	// (default 256 bytes).
	CompressionThreshold int

	// MaxPendingUpgrades bounds the Handler.Upgrade calls running at once
	// (connection handlers may block, each on its own goroutine); beyond it
	// upgrades are answered 503 at once. Default 1024.
	MaxPendingUpgrades int

	// InlineUpgrade runs Handler.Upgrade on the event loop. Only for
	// handlers that never block.
	InlineUpgrade bool

	// Logger receives operational logs (nil = slog.Default()).
	Logger *slog.Logger

	// ReusePort enables SO_REUSEPORT (address reuse is always on so that a
	// restart binds at once).
	ReusePort bool
}

// Defaults used for zero Config fields.
const (
	DefaultMaxMessageSize   = 1 << 20
	DefaultMaxHeaderBytes   = 8 << 10
	DefaultMaxBodyBytes     = 64 << 10
	DefaultMaxOutboundBytes = 4 << 20
	DefaultHandshakeTimeout = 10 * time.Second
	DefaultPingInterval     = 30 * time.Second
	DefaultPongWait         = 60 * time.Second
	DefaultCloseTimeout     = 10 * time.Second

	DefaultSlowConsumerTimeout   = 5 * time.Second
	DefaultMaxInflateRate        = 32 << 20
	DefaultMaxPendingUpgrades    = 1024
	DefaultMaxTotalOutboundBytes = 1 << 30
	DefaultCompressionThreshold  = 256
	DefaultFDHeadroom            = 256
)

func (c Config) withDefaults() Config {
	orDefault(&c.EventLoops, runtime.GOMAXPROCS(0))
	orDefault(&c.MaxMessageSize, DefaultMaxMessageSize)
	orDefault(&c.MaxSSEBody, c.MaxMessageSize) // after MaxMessageSize: it follows it
	orDefault(&c.MaxHeaderBytes, DefaultMaxHeaderBytes)
	orDefault(&c.MaxBodyBytes, DefaultMaxBodyBytes)
	orDefault(&c.MaxOutboundBytes, DefaultMaxOutboundBytes)
	// not "if unset": a burst below the steady limit is raised too
	if c.MaxOutboundBurst < c.MaxOutboundBytes {
		c.MaxOutboundBurst = 4 * c.MaxOutboundBytes
	}
	orDefault(&c.MaxTotalOutboundBytes, DefaultMaxTotalOutboundBytes)
	orDefault(&c.SlowConsumerTimeout, DefaultSlowConsumerTimeout)
	orDefault(&c.MaxInflateRate, DefaultMaxInflateRate)
	orDefault(&c.MaxPendingUpgrades, DefaultMaxPendingUpgrades)
	orDefault(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	orDefault(&c.PingInterval, DefaultPingInterval)
	orDefault(&c.PongWait, DefaultPongWait)
	orDefault(&c.CloseTimeout, DefaultCloseTimeout)
	orDefault(&c.CompressionThreshold, DefaultCompressionThreshold)
	orDefault(&c.FDHeadroom, DefaultFDHeadroom)
	c.Logger = cmp.Or(c.Logger, slog.Default())
	c.Addr = cmp.Or(c.Addr, ":8080")
	return c
}

// orDefault replaces a zero or negative setting with its default.
func orDefault[T int | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// tickInterval is the period of the per-loop timer sweep: fine enough for
// the shortest configured timeout, never busier than 10ms nor lazier than 1s.
func (c Config) tickInterval() time.Duration {
	d := time.Second
	for _, t := range []time.Duration{c.HandshakeTimeout, c.PingInterval, c.PongWait, c.IdleTimeout, c.CloseTimeout, c.SlowConsumerTimeout} {
		if t > 0 && t/4 < d {
			d = t / 4
		}
	}
	if d < 10*time.Millisecond {
		d = 10 * time.Millisecond
	}
	return d
}
