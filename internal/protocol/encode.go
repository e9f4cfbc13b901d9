package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"unicode/utf8"

	"github.com/pondsocket/pondsocket/internal/wsframe"
)

// Server actions (docs/protocol.md §2.1).
const (
	ActionPresence        = "PRESENCE"
	ActionSystem          = "SYSTEM"
	ActionServerBroadcast = "BROADCAST"
	ActionError           = "ERROR"
	ActionConnect         = "CONNECT"
)

// Presence events and fixed events.
const (
	EventJoin         = "JOIN"
	EventLeave        = "LEAVE"
	EventUpdate       = "UPDATE"
	EventAcknowledge  = "ACKNOWLEDGE"
	EventConnection   = "CONNECTION"
	EventUnauthorized = "UNAUTHORIZED"
)

// Error types, used as the event of ERROR messages and as payload.code.
const (
	ErrUnauthorizedConnection  = "UNAUTHORIZED_CONNECTION"
	ErrUnauthorizedJoinRequest = "UNAUTHORIZED_JOIN_REQUEST"
	ErrUnauthorizedBroadcast   = "UNAUTHORIZED_BROADCAST"
	ErrInvalidMessage          = "INVALID_MESSAGE"
	ErrHandlerNotFound         = "HANDLER_NOT_FOUND"
	ErrPresenceError           = "PRESENCE_ERROR"
	ErrChannelError            = "CHANNEL_ERROR"
	ErrEndpointError           = "ENDPOINT_ERROR"
	ErrInternalServerError     = "INTERNAL_SERVER_ERROR"
	ErrChannelNotFound         = "CHANNEL_NOT_FOUND"
	ErrInvalidChannelPattern   = "INVALID_CHANNEL_PATTERN"
)

// ChannelEndpoint is the channelName of connection-level messages.
const ChannelEndpoint = "ENDPOINT"

// System senders and recipient descriptors.
const (
	SenderEndpoint           = "ENDPOINT"
	SenderChannel            = "CHANNEL"
	RecipientAllUsers        = "ALL_USERS"
	RecipientAllExceptSender = "ALL_EXCEPT_SENDER"
)

// ErrPayloadNotObject is returned (wrapped, with the offending type) when a
// payload does not encode to a JSON object. The clients reject any message
// whose payload is not an object.
var ErrPayloadNotObject = errors.New("protocol: payload must be a JSON object")

// MarshalPayload encodes v as a message payload, which must be a JSON
// object.
//
//   - nil, a nil map and a nil pointer give {};
//   - json.RawMessage and []byte are taken as JSON text: they must hold one
//     JSON object, which is compacted (an empty one gives {});
//   - anything else is encoded with encoding/json (without HTML escaping).
//
// The result is always a fresh, compact, single-line JSON object of valid
// UTF-8. A value that is not an object gives an error wrapping
// ErrPayloadNotObject.
func MarshalPayload(v any) (json.RawMessage, error) {
	var dst []byte
	switch p := v.(type) {
	case json.RawMessage:
		dst = make([]byte, 0, len(p)) // compacting never grows it: one allocation
	case []byte:
		dst = make([]byte, 0, len(p))
	}
	b, err := appendPayload(dst, v)
	if err != nil {
		return nil, err
	}
	return json.RawMessage(b), nil
}

// appendPayload appends MarshalPayload(v) to dst. On error dst may hold
// partial output past its original length.
func appendPayload(dst []byte, v any) ([]byte, error) {
	switch p := v.(type) {
	case nil:
		return append(dst, "{}"...), nil
	case json.RawMessage:
		return appendRawObject(dst, p, v)
	case []byte:
		return appendRawObject(dst, p, v)
	case map[string]any:
		if p == nil {
			return append(dst, "{}"...), nil
		}
	default:
		if rv := reflect.ValueOf(v); (rv.Kind() == reflect.Map || rv.Kind() == reflect.Pointer) && rv.IsNil() {
			return append(dst, "{}"...), nil
		}
	}
	w := sliceWriter{b: dst}
	n := len(dst)
	enc := json.NewEncoder(&w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return dst, err
	}
	out := w.b
	if len(out) > n && out[len(out)-1] == '\n' {
		out = out[:len(out)-1]
	}
	if len(out) == n || out[n] != '{' {
		var kind byte
		if len(out) > n {
			kind = out[n]
		}
		return out, fmt.Errorf("%w: %T encodes to a JSON %s", ErrPayloadNotObject, v, jsonType(kind))
	}
	return out, nil
}

// sliceWriter is an io.Writer appending to a byte slice.
type sliceWriter struct{ b []byte }

func (w *sliceWriter) Write(p []byte) (int, error) {
	w.b = append(w.b, p...)
	return len(p), nil
}

// appendRawObject validates raw as a JSON object and appends it compacted.
func appendRawObject(dst, raw []byte, v any) ([]byte, error) {
	if len(raw) == 0 {
		return append(dst, "{}"...), nil
	}
	var env envelope
	kind, off, ok := env.scan(raw)
	if !ok {
		return dst, fmt.Errorf("%w: %T holds invalid JSON: %s", ErrPayloadNotObject, v, syntaxMessage(raw, off))
	}
	if kind != '{' {
		return dst, fmt.Errorf("%w: %T holds a JSON %s", ErrPayloadNotObject, v, jsonType(kind))
	}
	return appendCompact(dst, raw), nil
}

// Encode encodes one server message into a new sealed text Frame (one
// reference, owned by the caller). payload must be a compact JSON object,
// as returned by MarshalPayload, ErrorPayload, HandlerErrorPayload or
// ClientMessage.Payload; it is copied verbatim (an empty payload is written
// as {}). The message is written as
//
//	{"action":…,"event":…,"channelName":…,"requestId":…,"payload":…}
//
// on a single line.
func Encode(action, event, channelName, requestID string, payload json.RawMessage) *wsframe.Frame {
	f := wsframe.NewFrame()
	f.AppendTo(func(dst []byte) []byte {
		return AppendMessage(dst, action, event, channelName, requestID, payload)
	})
	f.Seal(wsframe.OpText)
	return f
}

// EncodeValue is MarshalPayload followed by Encode, without the
// intermediate copy.
func EncodeValue(action, event, channelName, requestID string, payload any) (*wsframe.Frame, error) {
	f := wsframe.NewFrame()
	var err error
	f.AppendTo(func(dst []byte) []byte {
		dst, err = appendPayload(appendHeader(dst, action, event, channelName, requestID), payload)
		return append(dst, '}')
	})
	if err != nil {
		f.Release()
		return nil, err
	}
	f.Seal(wsframe.OpText)
	return f, nil
}

// AppendMessage appends the JSON of one server message (the bytes Encode
// puts in its Frame) to dst.
func AppendMessage(dst []byte, action, event, channelName, requestID string, payload json.RawMessage) []byte {
	dst = appendHeader(dst, action, event, channelName, requestID)
	if len(payload) == 0 {
		dst = append(dst, "{}"...)
	} else {
		dst = append(dst, payload...)
	}
	return append(dst, '}')
}

// appendHeader appends everything of a message up to the payload value.
func appendHeader(dst []byte, action, event, channelName, requestID string) []byte {
	dst = append(dst, `{"action":`...)
	dst = AppendString(dst, action)
	dst = append(dst, `,"event":`...)
	dst = AppendString(dst, event)
	dst = append(dst, `,"channelName":`...)
	dst = AppendString(dst, channelName)
	dst = append(dst, `,"requestId":`...)
	dst = AppendString(dst, requestID)
	return append(dst, `,"payload":`...)
}

// ErrorPayload builds error payload A (docs/protocol.md §5.1–§5.2):
//
//	{"code":code,"message":message,"status":status,"statusCode":status,"error":{"message":message,"status":status}}
func ErrorPayload(code, message string, status int) json.RawMessage {
	b := make([]byte, 0, 90+len(code)+2*len(message))
	b = append(b, `{"code":`...)
	b = AppendString(b, code)
	b = append(b, `,"message":`...)
	b = AppendString(b, message)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"statusCode":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, `,"error":{"message":`...)
	b = AppendString(b, message)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(status), 10)
	return append(b, "}}"...)
}

// HandlerErrorPayload builds error payload B (docs/protocol.md §5.1–§5.2), sent with
// HANDLER_NOT_FOUND: {"message":message,"code":code}. code is a number.
func HandlerErrorPayload(message string, code int) json.RawMessage {
	b := make([]byte, 0, 24+len(message))
	b = append(b, `{"message":`...)
	b = AppendString(b, message)
	b = append(b, `,"code":`...)
	b = strconv.AppendInt(b, int64(code), 10)
	return append(b, '}')
}

const hexDigits = "0123456789abcdef"

// AppendString appends s to dst as a JSON string literal. '"', '\\' and
// control characters are escaped (\n, \r, \t, \b, \f or \u00XX), invalid
// UTF-8 bytes become \ufffd and U+2028/U+2029 are escaped, so the result is
// valid UTF-8 and never spans lines. Other characters, including HTML
// specials and non-ASCII text, are written as they are.
func AppendString(dst []byte, s string) []byte { return appendString(dst, s, true) }

// AppendStringStringify is AppendString without the U+2028/U+2029 escapes:
// the bytes JSON.stringify writes, for messages that must be byte-identical
// to a JavaScript peer's (the cluster bus).
func AppendStringStringify(dst []byte, s string) []byte { return appendString(dst, s, false) }

func appendString(dst []byte, s string, escapeSeparators bool) []byte {
	dst = append(dst, '"')
	// Plain ASCII, which needs no escape, eight bytes at a time first.
	i := 0
	for i+8 <= len(s) && asciiStringWord(stringWordAt(s, i)) {
		i += 8
	}
	start := 0
	for i < len(s) {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case escapeSeparators && (r == '\u2028' || r == '\u2029'):
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
