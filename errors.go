package pondsocket

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
)

// Error is an error with an HTTP-like status that reaches the client: a
// handler or middleware that returns one produces a PondSocket error message
// carrying Status and Message (see docs/protocol.md §5.1–§5.2). Any other error is
// logged at ERROR with a short error id and reaches the client only as
// status 500 "Internal Server Error (error id <id>)", so that a database
// error's text (hosts, users) never leaves the server.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// NewError builds an *Error; an empty message becomes the status text.
func NewError(status int, message string) *Error {
	if message == "" {
		message = http.StatusText(status)
	}
	return &Error{Status: status, Message: message}
}

// Errorf is NewError with formatting.
func Errorf(status int, format string, args ...any) *Error {
	return NewError(status, fmt.Sprintf(format, args...))
}

// Constructors for the usual statuses, usable as handler/middleware errors.
func BadRequest(msg string) *Error          { return NewError(http.StatusBadRequest, msg) }
func Unauthorized(msg string) *Error        { return NewError(http.StatusUnauthorized, msg) }
func Forbidden(msg string) *Error           { return NewError(http.StatusForbidden, msg) }
func NotFound(msg string) *Error            { return NewError(http.StatusNotFound, msg) }
func Conflict(msg string) *Error            { return NewError(http.StatusConflict, msg) }
func PayloadTooLarge(msg string) *Error     { return NewError(http.StatusRequestEntityTooLarge, msg) }
func UnprocessableEntity(msg string) *Error { return NewError(http.StatusUnprocessableEntity, msg) }
func TooManyRequests(msg string) *Error     { return NewError(http.StatusTooManyRequests, msg) }
func InternalError(msg string) *Error       { return NewError(http.StatusInternalServerError, msg) }
func ServiceUnavailable(msg string) *Error  { return NewError(http.StatusServiceUnavailable, msg) }
func RequestTimeout(msg string) *Error      { return NewError(http.StatusRequestTimeout, msg) }

// newErrorID is the short id that ties a generic 500 seen by a client to
// the server's log line: 8 hex digits.
func newErrorID() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// internalError is what a client sees of an error it must not see.
func internalError(id string) *Error {
	return &Error{Status: http.StatusInternalServerError, Message: "Internal Server Error (error id " + id + ")"}
}

// clientError returns the status and text a client may see for err, an
// error returned by user code (kind says which: "join", "event", …). An
// *Error passes as it is; anything else is logged at ERROR with a fresh
// error id and becomes a generic 500 carrying that id.
func (s *hub) clientError(err error, kind string, attrs ...any) (int, string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Status, e.Message
	}
	id := newErrorID()
	s.stats.HandlerErrors.Add(1)
	s.rlog.Error("handler error", append([]any{"id", id, "kind", kind, "err", err}, attrs...)...)
	e = internalError(id)
	return e.Status, e.Message
}

// recovered is the one policy for a panic in user code (connection, join,
// event, leave and outgoing handlers, middleware): the value and the stack
// are logged at ERROR under a fresh error id, and the returned *Error is
// the generic 500 carrying that id for the client. Call it from the
// deferred function that recovered p.
func (s *hub) recovered(p any, kind string, attrs ...any) *Error {
	id := newErrorID()
	s.stats.HandlerErrors.Add(1)
	s.rlog.Error("handler panicked", append([]any{"id", id, "kind", kind, "panic", fmt.Sprint(p), "stack", string(debug.Stack())}, attrs...)...)
	return internalError(id)
}

// catch is deferred around user code that returns an error: a panic
// becomes the error recovered returns.
func (s *hub) catch(err *error, kind string, attrs ...any) {
	if p := recover(); p != nil {
		*err = s.recovered(p, kind, attrs...)
	}
}

// Limit errors: returned to the code that crossed a limit and, when that
// code is a handler acting for a client, sent to the client with their
// status. Compare with errors.Is.
var (
	ErrPresenceTooLarge    = PayloadTooLarge("Presence exceeds the size limit")
	ErrAssignsTooLarge     = PayloadTooLarge("Assigns exceed the size limit")
	ErrPresenceRate        = TooManyRequests("Too many presence changes: rate limit exceeded")
	ErrConnectionStateFull = TooManyRequests("This connection holds too much channel state (names, presence, assigns)")
	ErrServerStateFull     = ServiceUnavailable("The server holds too much channel state")
)

// Sentinel errors callers can branch on with errors.Is.
var (
	ErrNotMember        = errors.New("user is not a member of the channel")
	ErrChannelClosed    = errors.New("channel is closed")
	ErrAlreadyDecided   = errors.New("the request was already accepted or declined")
	ErrNotAccepted      = errors.New("the request has not been accepted")
	ErrPresenceExists   = errors.New("presence is already tracked for this user")
	ErrNoPresence       = errors.New("no presence is tracked for this user")
	ErrNoAssign         = errors.New("no such assign")
	ErrPayloadNotObject = errors.New("payload must encode to a JSON object")
)
