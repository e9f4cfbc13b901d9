package client

import (
	"bytes"
	"errors"
	"strconv"
)

// ErrBadJSON is returned for a line that is not the PondSocket envelope.
var ErrBadJSON = errors.New("client: malformed message JSON")

// Message is one PondSocket server message, scanned in place: the fields
// point into the frame and are only valid during the callback. String
// fields hold the raw JSON string contents (escapes are left as they are,
// which is exact for the ASCII names the protocol uses).
type Message struct {
	Action      []byte
	Event       []byte
	ChannelName []byte
	RequestID   []byte
	Payload     []byte // the raw JSON value, normally an object
}

// Is reports whether the message has the given action and event.
func (m *Message) Is(action, event string) bool {
	return string(m.Action) == action && string(m.Event) == event
}

// SplitLines calls fn for each non-blank line of a text frame: the server
// may put several messages in one frame, separated by "\n" (docs/protocol.md §1.4).
func SplitLines(frame []byte, fn func(line []byte) error) error {
	for len(frame) > 0 {
		i := bytes.IndexByte(frame, '\n')
		var line []byte
		if i < 0 {
			line, frame = frame, nil
		} else {
			line, frame = frame[:i], frame[i+1:]
		}
		line = trimSpace(line)
		if len(line) == 0 {
			continue
		}
		if err := fn(line); err != nil {
			return err
		}
	}
	return nil
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// ParseMessage scans one JSON line into m without allocating. Unknown keys
// are skipped; key order does not matter.
func ParseMessage(line []byte, m *Message) error {
	*m = Message{}
	return EachField(line, func(key, val []byte) error {
		switch string(key) {
		case "action":
			m.Action = unquote(val)
		case "event":
			m.Event = unquote(val)
		case "channelName":
			m.ChannelName = unquote(val)
		case "requestId":
			m.RequestID = unquote(val)
		case "payload":
			m.Payload = val
		}
		return nil
	})
}

// unquote strips the quotes of a raw JSON string value; other values are
// returned as they are.
func unquote(v []byte) []byte {
	if len(v) >= 2 && v[0] == '"' {
		return v[1 : len(v)-1]
	}
	return v
}

// EachField calls fn with the raw key (without quotes) and raw value of each
// member of the JSON object obj.
func EachField(obj []byte, fn func(key, val []byte) error) error {
	i := skipWS(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return ErrBadJSON
	}
	i = skipWS(obj, i+1)
	if i < len(obj) && obj[i] == '}' {
		return nil
	}
	for {
		if i >= len(obj) || obj[i] != '"' {
			return ErrBadJSON
		}
		kend, err := skipString(obj, i)
		if err != nil {
			return err
		}
		key := obj[i+1 : kend-1]
		i = skipWS(obj, kend)
		if i >= len(obj) || obj[i] != ':' {
			return ErrBadJSON
		}
		i = skipWS(obj, i+1)
		vend, err := skipValue(obj, i)
		if err != nil {
			return err
		}
		if err := fn(key, obj[i:vend]); err != nil {
			return err
		}
		i = skipWS(obj, vend)
		if i >= len(obj) {
			return ErrBadJSON
		}
		if obj[i] == '}' {
			return nil
		}
		if obj[i] != ',' {
			return ErrBadJSON
		}
		i = skipWS(obj, i+1)
	}
}

// Field returns the raw value of key in the JSON object obj.
func Field(obj []byte, key string) ([]byte, bool) {
	var out []byte
	found := false
	_ = EachField(obj, func(k, v []byte) error {
		if !found && string(k) == key {
			out, found = v, true
			return errStop
		}
		return nil
	})
	return out, found
}

var errStop = errors.New("stop")

// FieldInt returns the integer value of key in obj. The value may be a JSON
// number (also in float notation, as a server that re-encodes through
// float64 would write it) or a string of digits.
func FieldInt(obj []byte, key string) (int64, bool) {
	v, ok := Field(obj, key)
	if !ok {
		return 0, false
	}
	return ParseInt(v)
}

// ParseInt parses a raw JSON number or digit string.
func ParseInt(v []byte) (int64, bool) {
	v = unquote(v)
	if len(v) == 0 {
		return 0, false
	}
	var n int64
	neg := false
	i := 0
	if v[0] == '-' {
		neg = true
		i = 1
	}
	if i == len(v) {
		return 0, false
	}
	for ; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			f, err := strconv.ParseFloat(string(v), 64)
			if err != nil {
				return 0, false
			}
			return int64(f), true
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// ArrayLen counts the elements of the raw JSON array arr.
func ArrayLen(arr []byte) (int, error) {
	i := skipWS(arr, 0)
	if i >= len(arr) || arr[i] != '[' {
		return 0, ErrBadJSON
	}
	i = skipWS(arr, i+1)
	if i < len(arr) && arr[i] == ']' {
		return 0, nil
	}
	n := 0
	for {
		end, err := skipValue(arr, i)
		if err != nil {
			return 0, err
		}
		n++
		i = skipWS(arr, end)
		if i >= len(arr) {
			return 0, ErrBadJSON
		}
		if arr[i] == ']' {
			return n, nil
		}
		if arr[i] != ',' {
			return 0, ErrBadJSON
		}
		i = skipWS(arr, i+1)
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index just past the string starting at b[i] == '"'.
// It jumps from quote to quote (IndexByte is vectorised) and treats a quote
// as the end when an even number of backslashes precedes it.
func skipString(b []byte, i int) (int, error) {
	i++
	for {
		j := bytes.IndexByte(b[i:], '"')
		if j < 0 {
			return 0, ErrBadJSON
		}
		q := i + j
		bs := 0
		for k := q - 1; k >= i && b[k] == '\\'; k-- {
			bs++
		}
		if bs%2 == 0 {
			return q + 1, nil
		}
		i = q + 1
	}
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, ErrBadJSON
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				end, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = end
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, ErrBadJSON
	default:
		j := i
		for j < len(b) {
			c := b[j]
			if c == ',' || c == '}' || c == ']' || isSpace(c) {
				break
			}
			j++
		}
		if j == i {
			return 0, ErrBadJSON
		}
		return j, nil
	}
}
