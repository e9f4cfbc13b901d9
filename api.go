package pondsocket

import "github.com/pondsocket/pondsocket/channel"

// The handler API lives in package channel; these aliases are the names of
// the seed README.
type (
	ConnectionContext = channel.ConnectionContext
	JoinContext       = channel.JoinContext
	EventContext      = channel.EventContext
	LeaveContext      = channel.LeaveContext
	OutgoingContext   = channel.OutgoingContext
	Channel           = channel.Channel
	Endpoint          = channel.Endpoint
	MessageEvent      = channel.MessageEvent
	NextFunc          = channel.NextFunc
	MiddlewareFunc    = channel.MiddlewareFunc
	User              = channel.User
	Event             = channel.Event
	Route             = channel.Route
	Query             = channel.Query
	Error             = channel.Error
	// AbandonedError is Stop's error when handlers were still running at
	// its deadline (Count of them).
	AbandonedError = channel.AbandonedError
)

// Error constructors: returned from a handler or middleware, they reach the
// client as a PondSocket error with their status.
var (
	NewError            = channel.NewError
	BadRequest          = channel.BadRequest
	Unauthorized        = channel.Unauthorized
	Forbidden           = channel.Forbidden
	NotFound            = channel.NotFound
	Conflict            = channel.Conflict
	PayloadTooLarge     = channel.PayloadTooLarge
	UnprocessableEntity = channel.UnprocessableEntity
	TooManyRequests     = channel.TooManyRequests
	InternalError       = channel.InternalError
	ServiceUnavailable  = channel.ServiceUnavailable
	RequestTimeout      = channel.RequestTimeout
)

// Sentinel errors.
var (
	ErrNotMember      = channel.ErrNotMember
	ErrNoPresence     = channel.ErrNoPresence
	ErrPresenceExists = channel.ErrPresenceExists
	ErrChannelClosed  = channel.ErrChannelClosed

	// limits (issue 10): *Error values with status 413, 429 or 503
	ErrPresenceTooLarge    = channel.ErrPresenceTooLarge
	ErrAssignsTooLarge     = channel.ErrAssignsTooLarge
	ErrPresenceRate        = channel.ErrPresenceRate
	ErrConnectionStateFull = channel.ErrConnectionStateFull
	ErrServerStateFull     = channel.ErrServerStateFull

	// ErrHandlersAbandoned: errors.Is finds it in Stop's error when
	// handlers still running at the deadline were abandoned.
	ErrHandlersAbandoned = channel.ErrHandlersAbandoned
)
