package client

import (
	"encoding/json"
	"errors"
	"fmt"
)

var (
	// ErrClosed is returned by calls on a Client after Close, and by waits
	// that Close interrupted.
	ErrClosed = errors.New("client: closed")

	// ErrQueueFull is matched (errors.Is) by the *QueueFullError that Send
	// and SendForResponse return when the outgoing queue is at its limit.
	ErrQueueFull = errors.New("client: outgoing queue full")

	// ErrNotJoined is returned when sending on a channel that was declined,
	// left or evicted. Join it again first.
	ErrNotJoined = errors.New("client: channel not joined")

	// ErrConnectionLost is matched by the error of a SendForResponse whose
	// request was written to a connection that then ended before the answer
	// came. The request may or may not have been handled by the server.
	ErrConnectionLost = errors.New("client: connection lost")

	// ErrDuplicateChannel is returned by Join when another *Channel of the
	// same client already uses the name.
	ErrDuplicateChannel = errors.New("client: another Channel with this name is active")

	// ErrNoConnectMessage is matched by the *ConnectError of a connection
	// whose WebSocket upgrade succeeded but whose server never sent the
	// CONNECT message (docs/protocol.md §4.1).
	ErrNoConnectMessage = errors.New("client: server did not send CONNECT")
)

// ServerError is an error the server sent: a refused join (event
// UNAUTHORIZED, docs/protocol.md §4.5), an error answering an event
// (HANDLER_NOT_FOUND, §4.10), a message the server could not route
// (INVALID_MESSAGE, §4.11), or an eviction (event kicked_out, §4.12).
//
// errors.Is(err, &ServerError{Status: 403}) matches any ServerError with
// that status; Code and Event, when set in the target, must match too.
type ServerError struct {
	// Event is the message's event: UNAUTHORIZED, HANDLER_NOT_FOUND,
	// INVALID_MESSAGE, CHANNEL_ERROR, kicked_out.
	Event string
	// Code is the error type of payload A ("UNAUTHORIZED_JOIN_REQUEST",
	// "CHANNEL_NOT_FOUND", ...); for payload B (numeric code) and
	// evictions it repeats Event.
	Code string
	// Status is the HTTP-like status (403, 404, 429, 500 ...).
	Status int
	// Message is the text the server meant for the client.
	Message string
	// Channel is the channel the error concerns ("ENDPOINT" for
	// connection-level errors).
	Channel string
	// RequestID is the id of the request the error answers, if any.
	RequestID string
}

func (e *ServerError) Error() string {
	return fmt.Sprintf("pondsocket server error on %s: %s %d: %s", e.Channel, e.Code, e.Status, e.Message)
}

// Is matches a *ServerError target whose non-zero fields (Status, Code,
// Event) equal e's.
func (e *ServerError) Is(target error) bool {
	t, ok := target.(*ServerError)
	if !ok {
		return false
	}
	return (t.Status == 0 || t.Status == e.Status) &&
		(t.Code == "" || t.Code == e.Code) &&
		(t.Event == "" || t.Event == e.Event)
}

// CloseError describes how a connection ended: the close code and reason the
// server sent, or 1006 (abnormal closure) when the connection dropped
// without a close frame.
//
// errors.Is(err, &CloseError{Code: 1001}) matches any CloseError with that
// code.
type CloseError struct {
	Code   int
	Reason string
	// Err is the underlying network error for code 1006, if any.
	Err error
}

// Close codes a PondSocket server uses (docs/protocol.md §1.7).
const (
	CloseNormal          = 1000
	CloseGoingAway       = 1001 // server shutting down, idle timeout
	CloseProtocolError   = 1002
	CloseAbnormal        = 1006 // no close frame: the connection dropped
	CloseInvalidPayload  = 1007
	ClosePolicyViolation = 1008 // slow consumer and other abuse limits
	CloseMessageTooBig   = 1009
	CloseInternalError   = 1011
)

func (e *CloseError) Error() string {
	if e.Code == CloseAbnormal && e.Err != nil {
		return fmt.Sprintf("pondsocket connection closed abnormally (1006): %v", e.Err)
	}
	if e.Reason == "" {
		return fmt.Sprintf("pondsocket connection closed with code %d", e.Code)
	}
	return fmt.Sprintf("pondsocket connection closed with code %d: %s", e.Code, e.Reason)
}

// Is matches a *CloseError target with the same code (any code if the
// target's is 0).
func (e *CloseError) Is(target error) bool {
	t, ok := target.(*CloseError)
	return ok && (t.Code == 0 || t.Code == e.Code)
}

func (e *CloseError) Unwrap() error { return e.Err }

// HandshakeError is a refused WebSocket upgrade: the server answered the
// HTTP request with a status other than 101, typically because the
// application's connection handler declined it (docs/protocol.md §1.3).
type HandshakeError struct {
	StatusCode int
	// Message is the start of the response body: the handler's text.
	Message string
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("pondsocket upgrade refused: HTTP %d: %s", e.StatusCode, e.Message)
}

// Temporary reports whether retrying may help: 5xx (server busy, shutting
// down) and 429 are temporary; other 4xx statuses are the server's decision
// about this request.
func (e *HandshakeError) Temporary() bool {
	return e.StatusCode >= 500 || e.StatusCode == 429 || e.StatusCode == 408
}

// ConnectError is returned by Connect and Dial when no connection could be
// established before the context ended (or, with reconnection disabled or
// a permanent refusal, at the first failure). It wraps the context's error
// and the last attempt's error, so errors.Is(err,
// context.DeadlineExceeded), errors.Is(err, ErrNoConnectMessage) and
// errors.As(err, &handshakeErr) all work.
type ConnectError struct {
	URL string
	// Attempts is the number of connection attempts made.
	Attempts int
	// Last is the last attempt's error (nil if none finished).
	Last error
	// Ctx is the context's error when the context ended the wait.
	Ctx error
}

func (e *ConnectError) Error() string {
	switch {
	case e.Ctx != nil && e.Last != nil:
		return fmt.Sprintf("pondsocket connect %s: %v after %d attempt(s), last: %v", e.URL, e.Ctx, e.Attempts, e.Last)
	case e.Ctx != nil:
		return fmt.Sprintf("pondsocket connect %s: %v", e.URL, e.Ctx)
	default:
		return fmt.Sprintf("pondsocket connect %s: %v", e.URL, e.Last)
	}
}

func (e *ConnectError) Unwrap() []error {
	var errs []error
	if e.Ctx != nil {
		errs = append(errs, e.Ctx)
	}
	if e.Last != nil {
		errs = append(errs, e.Last)
	}
	return errs
}

// QueueFullError is returned when a message would take the outgoing queue
// over Options.MaxQueuedMessages or Options.MaxQueuedBytes. It matches
// ErrQueueFull.
type QueueFullError struct {
	Messages, Bytes       int // queued now
	MaxMessages, MaxBytes int // the limits
	Size                  int // the refused message's size
}

func (e *QueueFullError) Error() string {
	return fmt.Sprintf("client: outgoing queue full (%d/%d messages, %d+%d/%d bytes)", e.Messages, e.MaxMessages, e.Bytes, e.Size, e.MaxBytes)
}

func (e *QueueFullError) Is(target error) bool { return target == ErrQueueFull }

// serverError builds a ServerError from an ERROR message's payload (A or B
// of docs/protocol.md §5).
func serverError(m *Message) *ServerError {
	var p struct {
		Code       json.RawMessage `json:"code"`
		Message    string          `json:"message"`
		Status     int             `json:"status"`
		StatusCode int             `json:"statusCode"`
		Reason     string          `json:"reason"`
	}
	_ = json.Unmarshal(m.Payload, &p)
	e := &ServerError{Event: m.Event, Code: m.Event, Message: p.Message, Channel: m.Channel, RequestID: m.RequestID}
	var s string
	var n int
	switch {
	case json.Unmarshal(p.Code, &s) == nil && s != "":
		e.Code = s
	case json.Unmarshal(p.Code, &n) == nil && n != 0:
		e.Status = n
	}
	if p.Status != 0 {
		e.Status = p.Status
	} else if p.StatusCode != 0 {
		e.Status = p.StatusCode
	}
	if e.Status == 0 {
		e.Status = 500
	}
	if e.Message == "" {
		e.Message = p.Reason
	}
	return e
}
