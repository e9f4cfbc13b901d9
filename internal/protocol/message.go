package protocol

import (
	"encoding/json"
	"errors"
	"math/bits"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// Client actions (docs/protocol.md §2.1).
const (
	ActionJoin      = "JOIN_CHANNEL"
	ActionLeave     = "LEAVE_CHANNEL"
	ActionBroadcast = "BROADCAST"
)

// ClientMessage is one decoded and validated client message.
//
// All fields are private copies: none of them aliases the buffer given to
// DecodeClientMessage, so that buffer may be reused as soon as the call
// returns.
type ClientMessage struct {
	// Action is one of ActionJoin, ActionLeave and ActionBroadcast.
	Action      string
	Event       string
	ChannelName string
	RequestID   string
	// Payload is always a compact JSON object (whitespace removed, invalid
	// UTF-8 inside strings replaced by \ufffd, U+2028/U+2029 escaped), so
	// it can be passed to Encode as is.
	Payload json.RawMessage
}

// DecodeError is the error returned by DecodeClientMessage. Message is the
// exact text the reference server puts in the INVALID_MESSAGE error payload
// and Status its status (413 for an oversize message, 400 for invalid JSON,
// 500 for a JSON value of the wrong shape, as in the reference).
type DecodeError struct {
	Status  int
	Message string
	// RequestID is the message's requestId when the message was a JSON
	// object with a string requestId (whatever else was wrong with it), so
	// that the error answer can echo it (docs/protocol.md §10, decisions). Empty
	// otherwise.
	RequestID string
}

// Error returns Message.
func (e *DecodeError) Error() string { return e.Message }

// maxDepth is the deepest nesting of arrays and objects accepted, the same
// limit as encoding/json, so both agree on what is valid JSON.
const maxDepth = 10000

// The keys of the client envelope, in the order docs/protocol.md §3 checks
// their presence.
const (
	keyEvent = iota
	keyRequestID
	keyChannelName
	keyPayload
	keyAction
	numKeys
)

var keyNames = [numKeys]string{"event", "requestId", "channelName", "payload", "action"}

const actionChoices = "action: Expected one of [JOIN_CHANNEL, LEAVE_CHANNEL, BROADCAST], got "

// span is the position of one member's value: data[start:end]. end == 0
// means the key was absent (a value never starts at offset 0 inside an
// object). plain marks a string value (and nothing else) with neither
// escapes nor non-ASCII bytes, whose content is its value; compact a value
// that appendCompact would copy as it is.
type span struct {
	start, end     int
	plain, compact bool
}

// envelope collects the top-level members of a client message. Duplicate
// keys overwrite earlier ones (last wins, like JSON.parse).
type envelope struct {
	v      [numKeys]span
	others int // members with any other key

	// pingOnly makes scan give up at the first key other than "action":
	// the object cannot be a ping then, whatever follows.
	pingOnly bool
	stopped  bool
}

// DecodeClientMessage decodes and validates one client message, following
// docs/protocol.md §3 in order:
//
//  1. len(data) > maxSize (when maxSize > 0): status 413,
//     "Message size N exceeds maximum allowed size of M bytes";
//  2. invalid JSON: status 400, "Invalid JSON at byte N" (the reference
//     answers 500 with its parser's text; a client's malformed message is
//     a bad request, and the parser's wording is no business of its);
//  3. not an object: "clientMessage: Expected object, got <type>" (array,
//     null, string, number or boolean);
//  4. a missing key, checked in the order event, requestId, channelName,
//     payload, action: "<key>: Missing required field";
//  5. event, requestId, channelName not strings:
//     "<key>: Expected string, got <typeof>" (JavaScript typeof names, so
//     arrays and null are "object");
//  6. payload not an object:
//     "payload: Expected record with string keys, got <typeof>";
//  7. action not one of the three client actions:
//     `action: Expected one of [JOIN_CHANNEL, LEAVE_CHANNEL, BROADCAST], got "SHOUT"`
//     (the value JSON-encoded).
//
// Errors are *DecodeError. Other keys are ignored, empty strings are
// accepted and duplicate keys resolve to the last one. On success the whole
// message costs one allocation (ScanClientMessage and Copy: none).
func DecodeClientMessage(data []byte, maxSize int) (ClientMessage, error) {
	sm, err := ScanClientMessage(data, maxSize)
	if err != nil {
		return ClientMessage{}, err
	}
	return sm.Copy(nil), nil
}

// ScannedMessage is a client message that passed DecodeClientMessage's
// checks and still lies in the caller's buffer; Copy makes the
// ClientMessage. The two steps let the caller choose where the copies go
// (beside a record of its own, in one allocation).
type ScannedMessage struct {
	// Action is the message's action: ActionJoin, ActionLeave or
	// ActionBroadcast.
	Action string
	data   []byte
	env    envelope
}

// ScanClientMessage is DecodeClientMessage without the copies: the same
// checks and errors, and data must stay unchanged until Copy is called.
func ScanClientMessage(data []byte, maxSize int) (ScannedMessage, error) {
	if maxSize > 0 && len(data) > maxSize {
		return ScannedMessage{}, &DecodeError{
			Status:  413,
			Message: "Message size " + strconv.Itoa(len(data)) + " exceeds maximum allowed size of " + strconv.Itoa(maxSize) + " bytes",
		}
	}
	sm := ScannedMessage{data: data}
	env := &sm.env
	kind, off, ok := env.scan(data)
	if !ok {
		return ScannedMessage{}, &DecodeError{Status: 400, Message: "Invalid JSON at byte " + strconv.Itoa(off)}
	}
	if kind != '{' {
		return ScannedMessage{}, &DecodeError{Status: 500, Message: "clientMessage: Expected object, got " + jsonType(kind)}
	}
	for k := range numKeys {
		if env.v[k].end == 0 {
			return ScannedMessage{}, env.fail(data, keyNames[k]+": Missing required field")
		}
	}
	for k := keyEvent; k <= keyChannelName; k++ {
		if c := data[env.v[k].start]; c != '"' {
			return ScannedMessage{}, env.fail(data, keyNames[k]+": Expected string, got "+typeOf(c))
		}
	}
	if c := data[env.v[keyPayload].start]; c != '{' {
		return ScannedMessage{}, env.fail(data, "payload: Expected record with string keys, got "+typeOf(c))
	}
	av := data[env.v[keyAction].start:env.v[keyAction].end]
	if sm.Action, ok = clientAction(av, env.v[keyAction].plain); !ok {
		return ScannedMessage{}, env.fail(data, actionChoices+string(appendGot(nil, av)))
	}
	return sm, nil
}

// Size is the spare capacity Copy uses without allocating (unless invalid
// UTF-8 in the payload, replaced by escapes, makes it longer): the three
// strings without their quotes (unquoting only shortens them) and the
// payload.
func (sm *ScannedMessage) Size() int {
	size := 0
	for k := keyEvent; k <= keyPayload; k++ {
		size += sm.env.v[k].end - sm.env.v[k].start
	}
	return size - 2*3
}

// Copy makes the ClientMessage: its three strings and payload are copied
// into buf's spare capacity when it has Size bytes, else into one new
// allocation. None of them aliases the scanned buffer. The strings are
// never written again once made, so viewing them as strings is safe; the
// payload is last and has its capacity clipped.
func (sm *ScannedMessage) Copy(buf []byte) ClientMessage {
	data, env := sm.data, &sm.env
	if size := sm.Size(); cap(buf)-len(buf) < size {
		buf = make([]byte, 0, size)
	}
	m := ClientMessage{Action: sm.Action}
	m.Event, buf = appendField(buf, data, env.v[keyEvent])
	m.RequestID, buf = appendField(buf, data, env.v[keyRequestID])
	m.ChannelName, buf = appendField(buf, data, env.v[keyChannelName])
	p := len(buf)
	if pv := env.v[keyPayload]; pv.compact {
		buf = append(buf, data[pv.start:pv.end]...)
	} else {
		buf = appendCompact(buf, data[pv.start:pv.end])
	}
	m.Payload = buf[p:len(buf):len(buf)]
	return m
}

// IsClientPing reports whether data is a JSON object whose only key is
// "action" with the string value "ping", such as {"action":"ping"} (the npm
// client's keep-alive, docs/protocol.md §1.6). Whitespace, escapes and repeated
// "action" keys (last wins) are tolerated. It gives up at the first other
// key, so it is cheap on ordinary messages.
func IsClientPing(data []byte) bool {
	if string(data) == `{"action":"ping"}` {
		return true
	}
	env := envelope{pingOnly: true}
	kind, _, ok := env.scan(data)
	if !ok || env.stopped || kind != '{' || env.others != 0 {
		return false
	}
	for k := range keyAction {
		if env.v[k].end != 0 {
			return false
		}
	}
	a := env.v[keyAction]
	if a.end == 0 || data[a.start] != '"' {
		return false
	}
	return stringValueIs(data[a.start:a.end], "ping")
}

// fail builds a 500 validation error, carrying the requestId when known.
func (env *envelope) fail(data []byte, msg string) *DecodeError {
	e := &DecodeError{Status: 500, Message: msg}
	if r := env.v[keyRequestID]; r.end != 0 && data[r.start] == '"' {
		e.RequestID = string(appendUnquote(nil, data[r.start+1:r.end-1]))
	}
	return e
}

// appendField appends the unquoted string value at s to buf and returns it
// as a string sharing buf's memory.
func appendField(buf, data []byte, s span) (string, []byte) {
	n := len(buf)
	if c := data[s.start+1 : s.end-1]; s.plain {
		buf = append(buf, c...)
	} else {
		buf = appendUnquote(buf, c)
	}
	if len(buf) == n {
		return "", buf
	}
	return unsafe.String(&buf[n], len(buf)-n), buf
}

// clientAction maps the raw JSON value of "action" to its constant; plain
// is the span's report (a string without escapes or non-ASCII bytes).
func clientAction(raw []byte, plain bool) (string, bool) {
	if plain {
		switch string(raw[1 : len(raw)-1]) {
		case ActionJoin:
			return ActionJoin, true
		case ActionLeave:
			return ActionLeave, true
		case ActionBroadcast:
			return ActionBroadcast, true
		}
		return "", false
	}
	switch {
	case stringValueIs(raw, ActionJoin):
		return ActionJoin, true
	case stringValueIs(raw, ActionLeave):
		return ActionLeave, true
	case stringValueIs(raw, ActionBroadcast):
		return ActionBroadcast, true
	}
	return "", false
}

// stringValueIs reports whether the raw JSON value raw is a string equal to
// want once unescaped. It does not allocate for short values.
func stringValueIs(raw []byte, want string) bool {
	if len(raw) < 2 || raw[0] != '"' {
		return false
	}
	content := raw[1 : len(raw)-1]
	if string(content) == want {
		return true
	}
	// An escaped form is at most 6 bytes per character (\uXXXX).
	if len(content) > 6*len(want) || !needsUnquote(content) {
		return false
	}
	var tmp [64]byte
	return string(appendUnquote(tmp[:0], content)) == want
}

// appendGot appends JSON.stringify of the raw value for the action error.
func appendGot(dst, raw []byte) []byte {
	if raw[0] == '"' {
		return AppendString(dst, string(appendUnquote(nil, raw[1:len(raw)-1])))
	}
	return appendCompact(dst, raw)
}

// jsonType names the JSON type of a value from its first byte.
func jsonType(c byte) string {
	switch c {
	case '{':
		return "object"
	case '[':
		return "array"
	case '"':
		return "string"
	case 't', 'f':
		return "boolean"
	case 'n':
		return "null"
	}
	return "number"
}

// typeOf is JavaScript's typeof of a JSON value from its first byte: arrays
// and null are "object".
func typeOf(c byte) string {
	switch c {
	case '[', 'n':
		return "object"
	}
	return jsonType(c)
}

// syntaxMessage is the text of the parse error at off, for errors that
// stay in the server (an application's payload that is not JSON). It
// borrows encoding/json's wording; the scanner below accepts exactly what
// encoding/json accepts (checked by the fuzz target).
func syntaxMessage(data []byte, off int) string {
	var raw json.RawMessage
	var se *json.SyntaxError
	if err := json.Unmarshal(data, &raw); errors.As(err, &se) {
		return se.Error()
	}
	return "invalid JSON at offset " + strconv.Itoa(off)
}

// ---------------------------------------------------------------------------
// A small JSON scanner. It validates exactly the grammar of RFC 8259 (as
// encoding/json does: bytes >= 0x80 inside strings are not checked for
// UTF-8, nesting is limited to maxDepth) and records the spans of the
// envelope's members without allocating.

// scan validates data as one JSON value and, when it is an object, records
// its members. kind is the first byte of the value. On a syntax error ok is
// false and off is where the scanner stopped.
func (env *envelope) scan(data []byte) (kind byte, off int, ok bool) {
	i := skipWS(data, 0)
	if i >= len(data) {
		return 0, i, false
	}
	kind = data[i]
	if kind != '{' {
		end, _, ok := skipValue(data, i, 0)
		if !ok {
			return 0, end, false
		}
		if end = skipWS(data, end); end != len(data) {
			return 0, end, false
		}
		return kind, 0, true
	}
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		if i = skipWS(data, i+1); i != len(data) {
			return 0, i, false
		}
		return kind, 0, true
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return 0, i, false
		}
		ke, kseen, ok := scanString(data, i)
		if !ok {
			return 0, ke, false
		}
		k := lookupKey(data[i+1:ke-1], kseen == 0)
		if env.pingOnly && k != keyAction {
			env.stopped = true
			return kind, 0, true
		}
		i = skipWS(data, ke)
		if i >= len(data) || data[i] != ':' {
			return 0, i, false
		}
		vs := skipWS(data, i+1)
		var ve int
		var seen uint8
		str, compact := vs < len(data) && data[vs] == '"', true
		if str {
			ve, seen, ok = scanString(data, vs)
		} else {
			ve, compact, ok = skipValue(data, vs, 1)
		}
		if !ok {
			return 0, ve, false
		}
		if k >= 0 {
			env.v[k] = span{vs, ve, str && seen == 0, compact && seen&strHigh == 0}
		} else {
			env.others++
		}
		i = skipWS(data, ve)
		if i >= len(data) {
			return 0, i, false
		}
		switch data[i] {
		case ',':
			i = skipWS(data, i+1)
			continue
		case '}':
			if i = skipWS(data, i+1); i != len(data) {
				return 0, i, false
			}
			return kind, 0, true
		}
		return 0, i, false
	}
}

// lookupKey returns the envelope key index of a raw (still escaped) object
// key, or -1; plain is scanString's report on it.
func lookupKey(raw []byte, plain bool) int {
	if !plain {
		// "channelName" is the longest key: 11 characters of at most 6
		// escaped bytes each.
		if len(raw) > 66 {
			return -1
		}
		var tmp [64]byte
		raw = appendUnquote(tmp[:0], raw)
	}
	switch string(raw) {
	case "event":
		return keyEvent
	case "requestId":
		return keyRequestID
	case "channelName":
		return keyChannelName
	case "payload":
		return keyPayload
	case "action":
		return keyAction
	}
	return -1
}

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipWS(data []byte, i int) int {
	for i < len(data) && isWS(data[i]) {
		i++
	}
	return i
}

// What scanString saw in a string's content. Without either, the content's
// bytes are its value, to be copied as they are; without strHigh it is
// already compact (appendCompact keeps escapes as they are).
const (
	strEsc  = 1 << iota // an escape
	strHigh             // a byte of 0x80 or above
)

// scanString scans the string starting with the quote at data[i] and
// returns the index just past the closing quote, and what it saw there
// (strEsc, strHigh).
func scanString(data []byte, i int) (end int, seen uint8, ok bool) {
	j := i + 1
	var high uint64 // the bytes passed, ORed: a top bit set means one was >= 0x80
	var esc uint8
	for {
		j, high = skipPlain(data, j, high)
		if j >= len(data) {
			return j, 0, false
		}
		switch c := data[j]; {
		case c == '"':
			if high&msb != 0 {
				esc |= strHigh
			}
			return j + 1, esc, true
		case c == '\\':
			esc = strEsc
			if j+1 >= len(data) {
				return j + 1, 0, false
			}
			switch data[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				for k := j + 2; k < j+6; k++ {
					if k >= len(data) || !isHex(data[k]) {
						return k, 0, false
					}
				}
				j += 6
			default:
				return j + 1, 0, false
			}
		default: // a control character
			return j, 0, false
		}
	}
}

// skipPlain returns the index of the first byte at or after j that ends a
// string or needs a look ('"', '\\', a control character), or len(data),
// with high ORed with the bytes passed. Eight bytes at a time: the word
// that holds such a byte tells where it is.
func skipPlain(data []byte, j int, high uint64) (int, uint64) {
	for j+8 <= len(data) {
		w := word(data[j:])
		if m := stringStop(w); m != 0 {
			n := bits.TrailingZeros64(m) // 8k+7 for byte k
			return j + n>>3, high | w&(1<<(n-7)-1)
		}
		high |= w
		j += 8
	}
	for j < len(data) && plainStringByte[data[j]] {
		high |= uint64(data[j])
		j++
	}
	return j, high
}

// plainStringByte marks the bytes that may appear unescaped inside a JSON
// string and need no attention: everything but control characters, '"'
// and '\\'.
var plainStringByte = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// scanNumber scans the number starting at data[i].
func scanNumber(data []byte, i int) (int, bool) {
	j := i
	if data[j] == '-' {
		j++
	}
	switch {
	case j >= len(data):
		return j, false
	case data[j] == '0':
		j++
	case '1' <= data[j] && data[j] <= '9':
		j++
		for j < len(data) && isDigit(data[j]) {
			j++
		}
	default:
		return j, false
	}
	if j < len(data) && data[j] == '.' {
		j++
		if j >= len(data) || !isDigit(data[j]) {
			return j, false
		}
		for j < len(data) && isDigit(data[j]) {
			j++
		}
	}
	if j < len(data) && (data[j] == 'e' || data[j] == 'E') {
		j++
		if j < len(data) && (data[j] == '+' || data[j] == '-') {
			j++
		}
		if j >= len(data) || !isDigit(data[j]) {
			return j, false
		}
		for j < len(data) && isDigit(data[j]) {
			j++
		}
	}
	return j, true
}

// scanLiteral checks that lit starts at data[i].
func scanLiteral(data []byte, i int, lit string) (int, bool) {
	for k := 0; k < len(lit); k++ {
		if i+k >= len(data) || data[i+k] != lit[k] {
			return i + k, false
		}
	}
	return i + len(lit), true
}

// scanMemberKey scans `"key" :` at data[i] and returns the start of the
// member's value; compact is false when the key had non-ASCII bytes or
// whitespace surrounded the colon.
func scanMemberKey(data []byte, i int) (_ int, compact, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return i, false, false
	}
	end, seen, ok := scanString(data, i)
	if !ok {
		return end, false, false
	}
	i = skipWS(data, end)
	if i >= len(data) || data[i] != ':' {
		return i, false, false
	}
	v := skipWS(data, i+1)
	return v, seen&strHigh == 0 && i == end && v == i+1, true
}

// skipValue validates the value starting at data[i] (no leading
// whitespace) and returns the index just past it. depth is the number of
// containers around it. compact reports that appendCompact would copy the
// value as it is: no whitespace between its tokens, no non-ASCII byte in
// its strings. It is iterative, so hostile nesting cannot grow the
// goroutine stack.
func skipValue(data []byte, i, depth int) (_ int, compact, ok bool) {
	var stackBuf [32]byte
	stack := stackBuf[:0]
	compact = true
	var kc bool    // the last member key's report
	var seen uint8 // the last string's
	for {
		// A value starts at data[i].
		if i >= len(data) {
			return i, false, false
		}
		switch c := data[i]; c {
		case '{', '[':
			if depth+len(stack)+1 > maxDepth {
				return i, false, false
			}
			closer := byte('}')
			if c == '[' {
				closer = ']'
			}
			j := skipWS(data, i+1)
			compact = compact && j == i+1
			if j < len(data) && data[j] == closer {
				i = j + 1
				break
			}
			stack = append(stack, c)
			if c == '{' {
				if i, kc, ok = scanMemberKey(data, j); !ok {
					return i, false, false
				}
				compact = compact && kc
			} else {
				i = j
			}
			continue
		case '"':
			if i, seen, ok = scanString(data, i); !ok {
				return i, false, false
			}
			compact = compact && seen&strHigh == 0
		case 't':
			if i, ok = scanLiteral(data, i, "true"); !ok {
				return i, false, false
			}
		case 'f':
			if i, ok = scanLiteral(data, i, "false"); !ok {
				return i, false, false
			}
		case 'n':
			if i, ok = scanLiteral(data, i, "null"); !ok {
				return i, false, false
			}
		default:
			if c != '-' && !isDigit(c) {
				return i, false, false
			}
			if i, ok = scanNumber(data, i); !ok {
				return i, false, false
			}
		}
		// A value ended just before data[i]: close containers until the
		// next value starts or the outermost one is done.
	closing:
		for {
			if len(stack) == 0 {
				return i, compact, true
			}
			if i < len(data) && isWS(data[i]) {
				compact = false
				i = skipWS(data, i)
			}
			if i >= len(data) {
				return i, false, false
			}
			top := stack[len(stack)-1]
			switch c := data[i]; {
			case c == ',':
				j := skipWS(data, i+1)
				compact = compact && j == i+1
				i = j
				if top == '{' {
					if i, kc, ok = scanMemberKey(data, i); !ok {
						return i, false, false
					}
					compact = compact && kc
				}
				break closing
			case top == '{' && c == '}', top == '[' && c == ']':
				stack = stack[:len(stack)-1]
				i++
			default:
				return i, false, false
			}
		}
	}
}

// needsUnquote reports whether string content contains escapes or
// non-ASCII bytes.
func needsUnquote(s []byte) bool {
	for len(s) >= 8 && escapeFreeWord(word(s)) {
		s = s[8:]
	}
	for _, c := range s {
		if c == '\\' || c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// appendUnquote appends the value of the JSON string content s (the bytes
// between the quotes, known to be well formed) to dst. Like encoding/json it
// replaces invalid UTF-8 and unpaired surrogate escapes by U+FFFD.
func appendUnquote(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '\\':
			e := s[i+1]
			i += 2
			switch e {
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case 'u':
				r := hex4(s[i:])
				i += 4
				if utf16.IsSurrogate(r) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if d := utf16.DecodeRune(r, hex4(s[i+2:])); d != utf8.RuneError {
							dst = utf8.AppendRune(dst, d)
							i += 6
							continue
						}
					}
					r = utf8.RuneError
				}
				dst = utf8.AppendRune(dst, r)
			default: // '"', '\\', '/'
				dst = append(dst, e)
			}
		case c < utf8.RuneSelf:
			j := i + 1
			for j < len(s) && s[j] < utf8.RuneSelf && s[j] != '\\' {
				j++
			}
			dst = append(dst, s[i:j]...)
			i = j
		default:
			r, size := utf8.DecodeRune(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, "\uFFFD"...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
	}
	return dst
}

// hex4 decodes 4 hex digits, or returns -1 when s does not start with them.
func hex4(s []byte) rune {
	if len(s) < 4 {
		return -1
	}
	var r rune
	for _, c := range s[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// appendCompact appends the valid JSON src to dst without insignificant
// whitespace, replacing invalid UTF-8 inside strings by \ufffd and escaping
// U+2028/U+2029, so that the result is one line of valid UTF-8 JSON.
// Escapes already present are kept as they are.
func appendCompact(dst, src []byte) []byte {
	if plainJSON(src) {
		return append(dst, src...)
	}
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case isWS(c):
			i++
		case c == '"':
			start := i
			j := i + 1
			for {
				for j+8 <= len(src) && asciiStringWord(word(src[j:])) {
					j += 8
				}
				c := src[j]
				if c == '"' {
					j++
					break
				}
				if c == '\\' {
					j += 2
					continue
				}
				if c < utf8.RuneSelf {
					j++
					continue
				}
				r, size := utf8.DecodeRune(src[j:])
				switch {
				case r == utf8.RuneError && size == 1:
					dst = append(dst, src[start:j]...)
					dst = append(dst, `\ufffd`...)
					start = j + 1
				case r == '\u2028' || r == '\u2029':
					dst = append(dst, src[start:j]...)
					dst = append(dst, `\u202`...)
					dst = append(dst, hexDigits[r&0xf])
					start = j + size
				}
				j += size
			}
			dst = append(dst, src[start:j]...)
			i = j
		default:
			j := i + 1
			for j < len(src) && !isWS(src[j]) && src[j] != '"' {
				j++
			}
			dst = append(dst, src[i:j]...)
			i = j
		}
	}
	return dst
}
