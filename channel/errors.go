package channel

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is an error with an HTTP-like status that reaches the client: a
// handler or middleware that returns one produces a PondSocket error message
// carrying Status and Message (see PROTOCOL.md §2.4); other errors reach
// the client as status 500 with their text.
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

// statusOf returns the status and client-facing text of err.
func statusOf(err error, fallback int) (int, string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Status, e.Message
	}
	return fallback, err.Error()
}

// Sentinel errors callers can branch on with errors.Is.
var (
	ErrNotMember        = errors.New("user is not a member of the channel")
	ErrUnknownUser      = errors.New("unknown user")
	ErrChannelClosed    = errors.New("channel is closed")
	ErrAlreadyDecided   = errors.New("the request was already accepted or declined")
	ErrNotAccepted      = errors.New("the request has not been accepted")
	ErrPresenceExists   = errors.New("presence is already tracked for this user")
	ErrNoPresence       = errors.New("no presence is tracked for this user")
	ErrPayloadNotObject = errors.New("payload must encode to a JSON object")
)
