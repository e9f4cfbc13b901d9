package pondsocket

import (
	"log/slog"
	"runtime"
	"time"
)

// hubOptions configures the channel layer. Zero fields take the defaults of
// withDefaults, so a partially filled hubOptions is safe.
type hubOptions struct {
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
	// interval (at most a second) are coalesced into one message carrying
	// the complete list. The default, 4 MiB/s, keeps what one member
	// spamming presence changes makes a 300-member room receive under
	// ~50× the bytes it sends (TestPresenceSpamAmplification); 64 MiB/s
	// allowed ~700×.
	PresenceBudget int
	// PresenceRate and PresenceBurst form the per-connection bucket for
	// presence changes a client's event handlers make (Track, Update,
	// RemovePresence on an EventContext); beyond it the change fails with
	// status 429 (ErrPresenceRate). A negative rate disables it. The
	// presence a join handler tracks is governed by JoinRate instead.
	PresenceRate  float64
	PresenceBurst int
	// MaxChannelNameBytes, MaxEventNameBytes and MaxRequestIDBytes bound
	// those fields of a client message; a longer one is refused with the
	// protocol's 413 INVALID_MESSAGE error on ENDPOINT.
	MaxChannelNameBytes int
	MaxEventNameBytes   int
	MaxRequestIDBytes   int
	// MaxPresenceBytes bounds one presence entry and MaxAssignsBytes one
	// user's assigns (connection assigns, or one channel's), both in bytes
	// of their JSON encoding: setting a larger one fails with status 413
	// (ErrPresenceTooLarge, ErrAssignsTooLarge).
	MaxPresenceBytes int
	MaxAssignsBytes  int
	// MaxConnectionStateBytes bounds the channel state one connection makes
	// the server hold: the names of its channels, its presence entries and
	// its channel assigns. A join or change beyond it fails with status 429
	// (ErrConnectionStateFull). MaxStateBytes bounds the same sum over all
	// connections; beyond it: status 503 (ErrServerStateFull).
	MaxConnectionStateBytes int
	MaxStateBytes           int64
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
)

func (o hubOptions) withDefaults() hubOptions {
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
	if o.PresenceRate == 0 {
		o.PresenceRate = DefaultPresenceRate
	}
	if o.PresenceBurst <= 0 {
		o.PresenceBurst = DefaultPresenceBurst
	}
	if o.MaxChannelNameBytes <= 0 {
		o.MaxChannelNameBytes = DefaultMaxChannelNameBytes
	}
	if o.MaxEventNameBytes <= 0 {
		o.MaxEventNameBytes = DefaultMaxEventNameBytes
	}
	if o.MaxRequestIDBytes <= 0 {
		o.MaxRequestIDBytes = DefaultMaxRequestIDBytes
	}
	if o.MaxPresenceBytes <= 0 {
		o.MaxPresenceBytes = DefaultMaxPresenceBytes
	}
	if o.MaxAssignsBytes <= 0 {
		o.MaxAssignsBytes = DefaultMaxAssignsBytes
	}
	if o.MaxConnectionStateBytes <= 0 {
		o.MaxConnectionStateBytes = DefaultMaxConnectionStateBytes
	}
	if o.MaxStateBytes <= 0 {
		o.MaxStateBytes = DefaultMaxStateBytes
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
