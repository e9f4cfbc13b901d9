package channel

import (
	"log/slog"
	"runtime"
	"time"
)

// Options configures the channel layer. Zero fields take the defaults of
// withDefaults, so a partially filled Options is safe.
type Options struct {
	// MaxMessageSize bounds a client message (bytes); larger ones get the
	// protocol's 413 INVALID_MESSAGE error and the connection stays open.
	MaxMessageSize int
	// MaxChannelsPerConnection bounds the channels one connection may be in
	// (joins beyond it are declined with status 429).
	MaxChannelsPerConnection int
	// MessageRate and MessageBurst form the per-connection token bucket for
	// BROADCAST messages (messages per second; burst). Exceeding it answers
	// status 429 and drops the message.
	MessageRate  float64
	MessageBurst int
	// JoinRate and JoinBurst form the per-connection bucket for joins.
	JoinRate  float64
	JoinBurst int
	// ReceiveQueue bounds the messages waiting for one connection's handlers
	// (the seed's ReceiveChannelBuffer). Beyond it messages are refused with
	// status 429.
	ReceiveQueue int
	// MaxQueuedBytes bounds the bytes of one connection's messages waiting
	// for its handlers (at least MaxMessageSize). Beyond it messages are
	// refused with status 429; a connection that keeps it exceeded (64
	// refusals, or MaxQueuedBytes refused, before its handlers catch up) is
	// closed with 1008.
	MaxQueuedBytes int
	// MaxTotalQueuedBytes bounds the bytes of all connections' messages
	// waiting for handlers. Beyond it messages are refused with status 429,
	// except a connection's only message when it is at most 4 KiB (so the
	// total may overshoot by 4 KiB per connection).
	MaxTotalQueuedBytes int
	// Workers bounds the goroutines running user handlers.
	Workers int
	// MaxWorkersPerHandler bounds the workers one handler (an event
	// handler of a channel pattern, a pattern's join or leave handler) may
	// occupy at once; a connection whose next message needs a busier
	// handler waits without holding a worker. Default: half of Workers.
	MaxWorkersPerHandler int
	// HandlerTimeout, when positive, is the deadline of the context each
	// handler gets (EventContext.Context and friends); a handler that
	// overruns it answers the client with status 504 instead of its own
	// result. Zero: no deadline.
	HandlerTimeout time.Duration
	// InlineHandlers runs handlers on the event loop instead of the worker
	// pool: only for handlers that never block.
	InlineHandlers bool
	// PresenceBudget is the bytes per second one channel may spend on
	// presence messages during a storm; changes within the resulting
	// interval are coalesced into one message carrying the complete list.
	PresenceBudget int
	// Logger receives operational logs.
	Logger *slog.Logger
	// Now is the clock (tests).
	Now func() time.Time
}

// Defaults.
const (
	DefaultMaxMessageSize           = 1 << 20
	DefaultMaxChannelsPerConnection = 1000
	DefaultMessageRate              = 1000
	DefaultMessageBurst             = 2000
	DefaultJoinRate                 = 100
	DefaultJoinBurst                = 200
	DefaultReceiveQueue             = 1024
	DefaultPresenceBudget           = 64 << 20
	DefaultMaxQueuedBytes           = 4 << 20
	DefaultMaxTotalQueuedBytes      = 256 << 20
)

func (o Options) withDefaults() Options {
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = DefaultMaxMessageSize
	}
	if o.MaxChannelsPerConnection <= 0 {
		o.MaxChannelsPerConnection = DefaultMaxChannelsPerConnection
	}
	if o.MessageRate == 0 {
		o.MessageRate = DefaultMessageRate
	}
	if o.MessageBurst <= 0 {
		o.MessageBurst = DefaultMessageBurst
	}
	if o.JoinRate == 0 {
		o.JoinRate = DefaultJoinRate
	}
	if o.JoinBurst <= 0 {
		o.JoinBurst = DefaultJoinBurst
	}
	if o.ReceiveQueue <= 0 {
		o.ReceiveQueue = DefaultReceiveQueue
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = DefaultMaxQueuedBytes
	}
	if o.MaxQueuedBytes < o.MaxMessageSize {
		o.MaxQueuedBytes = o.MaxMessageSize
	}
	if o.MaxTotalQueuedBytes <= 0 {
		o.MaxTotalQueuedBytes = DefaultMaxTotalQueuedBytes
	}
	if o.MaxTotalQueuedBytes < o.MaxQueuedBytes {
		o.MaxTotalQueuedBytes = o.MaxQueuedBytes
	}
	if o.Workers <= 0 {
		o.Workers = 256 * runtime.GOMAXPROCS(0)
	}
	if o.MaxWorkersPerHandler <= 0 {
		o.MaxWorkersPerHandler = (o.Workers + 1) / 2
	}
	if o.MaxWorkersPerHandler > o.Workers {
		o.MaxWorkersPerHandler = o.Workers
	}
	if o.PresenceBudget <= 0 {
		o.PresenceBudget = DefaultPresenceBudget
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
