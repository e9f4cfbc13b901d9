package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// Real client messages (docs/protocol.md §3 and Appendix A).
const (
	msgJoin      = `{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/lobby","requestId":"7dbd699e-64c7-46fc-b318-cbc4738dd8d0","payload":{"username":"alice","history":true}}`
	msgBroadcast = `{"action":"BROADCAST","channelName":"/chat/lobby","requestId":"b8a80dbb-90db-40a6-be7c-35919e653c3f","event":"ping","payload":{}}`
	msgLeave     = `{"action":"LEAVE_CHANNEL","event":"LEAVE_CHANNEL","channelName":"/chat/lobby","requestId":"153f1dc2-0824-460a-9968-e9b3554efda1","payload":{}}`
	msgParam     = `{"action":"BROADCAST","event":"message/42?draft=1","channelName":"/chat/lobby","requestId":"evt-param","payload":{}}`
	msgFiles     = `{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/files/a/b/c.txt?mode=ro","requestId":"join-files","payload":{}}`
)

func TestDecodeClientMessageValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want ClientMessage
	}{
		{"join", msgJoin, ClientMessage{ActionJoin, "JOIN_CHANNEL", "/chat/lobby", "7dbd699e-64c7-46fc-b318-cbc4738dd8d0", json.RawMessage(`{"username":"alice","history":true}`)}},
		{"broadcast", msgBroadcast, ClientMessage{ActionBroadcast, "ping", "/chat/lobby", "b8a80dbb-90db-40a6-be7c-35919e653c3f", json.RawMessage(`{}`)}},
		{"leave", msgLeave, ClientMessage{ActionLeave, "LEAVE_CHANNEL", "/chat/lobby", "153f1dc2-0824-460a-9968-e9b3554efda1", json.RawMessage(`{}`)}},
		{"event with query", msgParam, ClientMessage{ActionBroadcast, "message/42?draft=1", "/chat/lobby", "evt-param", json.RawMessage(`{}`)}},
		{"channel with query", msgFiles, ClientMessage{ActionJoin, "JOIN_CHANNEL", "/files/a/b/c.txt?mode=ro", "join-files", json.RawMessage(`{}`)}},
		{"empty strings pass",
			`{"action":"BROADCAST","event":"","channelName":"","requestId":"","payload":{}}`,
			ClientMessage{ActionBroadcast, "", "", "", json.RawMessage(`{}`)}},
		{"whitespace everywhere, payload compacted",
			" \t\r\n{ \"action\" : \"BROADCAST\" ,\n \"event\":\"e\", \"channelName\" :\"c\",\"requestId\":\"r\",\"payload\" : { \"a\" : [ 1 , 2 , { } ] , \"b\" : \"x y\" } }\n",
			ClientMessage{ActionBroadcast, "e", "c", "r", json.RawMessage(`{"a":[1,2,{}],"b":"x y"}`)}},
		{"extra keys ignored",
			`{"x":1,"action":"BROADCAST","event":"e","channelName":"c","requestId":"r","payload":{},"nodeId":"n"}`,
			ClientMessage{ActionBroadcast, "e", "c", "r", json.RawMessage(`{}`)}},
		{"duplicate keys: last wins",
			`{"action":"SHOUT","event":1,"channelName":"c","requestId":"r1","payload":[],"action":"LEAVE_CHANNEL","event":"e","requestId":"r2","payload":{"k":2}}`,
			ClientMessage{ActionLeave, "e", "c", "r2", json.RawMessage(`{"k":2}`)}},
		{"escapes in values and keys",
			`{"\u0061ction":"JOIN\u005fCHANNEL","ev\u0065nt":"a\"b\\c\/d\n\t\u00e9\ud83d\ude00","channelName":"/caf\u00e9","requestId":"r","payload":{"s":"\u2028"}}`,
			ClientMessage{ActionJoin, "a\"b\\c/d\n\té😀", "/café", "r", json.RawMessage(`{"s":"\u2028"}`)}},
		{"lone surrogates become U+FFFD",
			`{"action":"BROADCAST","event":"\ud800x\udc00","channelName":"\ud800\u0041","requestId":"r","payload":{}}`,
			ClientMessage{ActionBroadcast, "\uFFFDx\uFFFD", "\uFFFDA", "r", json.RawMessage(`{}`)}},
		{"invalid UTF-8 replaced",
			"{\"action\":\"BROADCAST\",\"event\":\"a\xffb\",\"channelName\":\"c\",\"requestId\":\"r\",\"payload\":{\"t\":\"x\xc3y\",\"u\":\"\xe2\x80\xa8\"}}",
			ClientMessage{ActionBroadcast, "a\uFFFDb", "c", "r", json.RawMessage(`{"t":"x\ufffdy","u":"\u2028"}`)}},
		// The scanner decides whether a payload is already compact; each
		// of these has one thing deep inside that makes it not so.
		{"one space deep in the payload",
			`{"action":"BROADCAST","event":"e","channelName":"c","requestId":"r","payload":{"a":{"b":[1, 2]}}}`,
			ClientMessage{ActionBroadcast, "e", "c", "r", json.RawMessage(`{"a":{"b":[1,2]}}`)}},
		{"space before a closing brace",
			`{"action":"BROADCAST","event":"e","channelName":"c","requestId":"r","payload":{"a":{"b":1 }}}`,
			ClientMessage{ActionBroadcast, "e", "c", "r", json.RawMessage(`{"a":{"b":1}}`)}},
		{"space after a nested colon",
			`{"action":"BROADCAST","event":"e","channelName":"c","requestId":"r","payload":{"a":{"b": true}}}`,
			ClientMessage{ActionBroadcast, "e", "c", "r", json.RawMessage(`{"a":{"b":true}}`)}},
		{"invalid UTF-8 in a nested key",
			"{\"action\":\"BROADCAST\",\"event\":\"e\",\"channelName\":\"c\",\"requestId\":\"r\",\"payload\":{\"a\":[{\"k\xff\":1}]}}",
			ClientMessage{ActionBroadcast, "e", "c", "r", json.RawMessage(`{"a":[{"k\ufffd":1}]}`)}},
		{"spaces inside strings are content",
			`{"action":"BROADCAST","event":"e","channelName":"c","requestId":"r","payload":{"t":"a b","u":["c d"]}}`,
			ClientMessage{ActionBroadcast, "e", "c", "r", json.RawMessage(`{"t":"a b","u":["c d"]}`)}},
		{"non-ASCII kept",
			`{"action":"BROADCAST","event":"héllo","channelName":"/日本","requestId":"r","payload":{"t":"ü"}}`,
			ClientMessage{ActionBroadcast, "héllo", "/日本", "r", json.RawMessage(`{"t":"ü"}`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeClientMessage([]byte(tt.in), 0)
			if err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if got.Action != tt.want.Action || got.Event != tt.want.Event || got.ChannelName != tt.want.ChannelName || got.RequestID != tt.want.RequestID {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			if !bytes.Equal(got.Payload, tt.want.Payload) {
				t.Errorf("payload %s, want %s", got.Payload, tt.want.Payload)
			}
		})
	}
}

func TestDecodeClientMessageErrors(t *testing.T) {
	tests := []struct {
		name      string
		in        string
		max       int
		status    int
		msg       string
		requestID string
	}{
		// Appendix A, S6 (the parse error text is Go's, not V8's).
		{"S6 not json", `not json`, 0, 400, "<syntax>", ""},
		{"S6 ping", `{"action":"ping"}`, 0, 500, "event: Missing required field", ""},
		{"S6 SHOUT", `{"action":"SHOUT","event":"x","channelName":"/chat/lobby","requestId":"r","payload":{}}`, 0, 500,
			`action: Expected one of [JOIN_CHANNEL, LEAVE_CHANNEL, BROADCAST], got "SHOUT"`, "r"},
		{"S6 array payload", `{"action":"BROADCAST","event":"x","channelName":"/chat/lobby","requestId":"r","payload":[1,2]}`, 0, 500,
			"payload: Expected record with string keys, got object", "r"},
		{"S6 numeric requestId", `{"action":"BROADCAST","event":"x","channelName":"/chat/lobby","requestId":7,"payload":{}}`, 0, 500,
			"requestId: Expected string, got number", ""},

		// 1. size (Appendix A S32 wording)
		{"size", msgLeave, 10, 413, "Message size 142 exceeds maximum allowed size of 10 bytes", ""},
		{"size checked before JSON", `not json at all`, 3, 413, "Message size 15 exceeds maximum allowed size of 3 bytes", ""},
		{"size exactly at limit is fine", `[]`, 2, 500, "clientMessage: Expected object, got array", ""},

		// 2. invalid JSON
		{"empty", ``, 0, 400, "<syntax>", ""},
		{"truncated", `{"action":"BROADCAST"`, 0, 400, "<syntax>", ""},
		{"trailing garbage", `{} x`, 0, 400, "<syntax>", ""},
		{"trailing comma", `{"a":1,}`, 0, 400, "<syntax>", ""},
		{"invalid JSON wins over wrong shape", `[1,2`, 0, 400, "<syntax>", ""},
		{"invalid nested value wins over missing keys", `{"action":"ping","x":[01]}`, 0, 400, "<syntax>", ""},
		{"raw control char in string", "{\"event\":\"a\nb\"}", 0, 400, "<syntax>", ""},

		// 3. not an object
		{"array", `[{"action":"BROADCAST"}]`, 0, 500, "clientMessage: Expected object, got array", ""},
		{"null", `null`, 0, 500, "clientMessage: Expected object, got null", ""},
		{"string", `"hi"`, 0, 500, "clientMessage: Expected object, got string", ""},
		{"number", ` -1.5e3 `, 0, 500, "clientMessage: Expected object, got number", ""},
		{"boolean", `true`, 0, 500, "clientMessage: Expected object, got boolean", ""},

		// 4. missing keys, in order event, requestId, channelName, payload, action
		{"empty object", `{}`, 0, 500, "event: Missing required field", ""},
		{"missing requestId", `{"event":"e","channelName":"c","payload":{},"action":"BROADCAST"}`, 0, 500, "requestId: Missing required field", ""},
		{"missing channelName", `{"event":"e","requestId":"r","payload":{},"action":"BROADCAST"}`, 0, 500, "channelName: Missing required field", "r"},
		{"missing payload", `{"event":"e","requestId":"r","channelName":"c","action":"BROADCAST"}`, 0, 500, "payload: Missing required field", "r"},
		{"missing action", `{"event":"e","requestId":"r","channelName":"c","payload":{}}`, 0, 500, "action: Missing required field", "r"},
		{"presence before types", `{"event":5,"requestId":"r"}`, 0, 500, "channelName: Missing required field", "r"},
		{"null counts as present", `{"event":null,"requestId":"r","channelName":"c","payload":{}}`, 0, 500, "action: Missing required field", "r"},

		// 5. strings, in order event, requestId, channelName; typeof names
		{"event number", `{"event":1,"requestId":2,"channelName":3,"payload":4,"action":5}`, 0, 500, "event: Expected string, got number", ""},
		{"event boolean", `{"event":false,"requestId":"r","channelName":"c","payload":{},"action":"BROADCAST"}`, 0, 500, "event: Expected string, got boolean", "r"},
		{"event object", `{"event":{},"requestId":"r","channelName":"c","payload":{},"action":"BROADCAST"}`, 0, 500, "event: Expected string, got object", "r"},
		{"event array", `{"event":["x"],"requestId":"r","channelName":"c","payload":{},"action":"BROADCAST"}`, 0, 500, "event: Expected string, got object", "r"},
		{"event null", `{"event":null,"requestId":"r","channelName":"c","payload":{},"action":"BROADCAST"}`, 0, 500, "event: Expected string, got object", "r"},
		{"requestId null", `{"event":"e","requestId":null,"channelName":"c","payload":{},"action":"BROADCAST"}`, 0, 500, "requestId: Expected string, got object", ""},
		{"channelName number", `{"event":"e","requestId":"r","channelName":42,"payload":{},"action":"BROADCAST"}`, 0, 500, "channelName: Expected string, got number", "r"},
		{"strings before payload", `{"event":"e","requestId":"r","channelName":true,"payload":[],"action":"SHOUT"}`, 0, 500, "channelName: Expected string, got boolean", "r"},

		// 6. payload
		{"payload null", `{"event":"e","requestId":"r","channelName":"c","payload":null,"action":"BROADCAST"}`, 0, 500, "payload: Expected record with string keys, got object", "r"},
		{"payload string", `{"event":"e","requestId":"r","channelName":"c","payload":"{}","action":"BROADCAST"}`, 0, 500, "payload: Expected record with string keys, got string", "r"},
		{"payload number", `{"event":"e","requestId":"r","channelName":"c","payload":0,"action":"BROADCAST"}`, 0, 500, "payload: Expected record with string keys, got number", "r"},
		{"payload boolean", `{"event":"e","requestId":"r","channelName":"c","payload":true,"action":"SHOUT"}`, 0, 500, "payload: Expected record with string keys, got boolean", "r"},

		// 7. action
		{"action lower case", `{"event":"e","requestId":"r","channelName":"c","payload":{},"action":"broadcast"}`, 0, 500, actionChoices + `"broadcast"`, "r"},
		{"action number", `{"event":"e","requestId":"r","channelName":"c","payload":{},"action":5}`, 0, 500, actionChoices + `5`, "r"},
		{"action null", `{"event":"e","requestId":"r","channelName":"c","payload":{},"action":null}`, 0, 500, actionChoices + `null`, "r"},
		{"action object", `{"event":"e","requestId":"r","channelName":"c","payload":{},"action":{ "a" : [ 1 ] }}`, 0, 500, actionChoices + `{"a":[1]}`, "r"},
		{"action server-only", `{"event":"e","requestId":"r","channelName":"c","payload":{},"action":"SYSTEM"}`, 0, 500, actionChoices + `"SYSTEM"`, "r"},
		{"action escaped re-encoded", `{"event":"e","requestId":"r","channelName":"c","payload":{},"action":"\u0053\"\n"}`, 0, 500, actionChoices + `"S\"\n"`, "r"},
		{"action empty", `{"event":"e","requestId":"r","channelName":"c","payload":{},"action":""}`, 0, 500, actionChoices + `""`, "r"},
		{"requestId unescaped in error", `{"event":"e","requestId":"r\u00e9","channelName":"c","payload":{},"action":"X"}`, 0, 500, actionChoices + `"X"`, "ré"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := DecodeClientMessage([]byte(tt.in), tt.max)
			if err == nil {
				t.Fatalf("no error; got %+v", m)
			}
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("error %T %v is not a *DecodeError", err, err)
			}
			if tt.msg == "<syntax>" {
				// a plain message, not the parser's text
				tt.msg = "Invalid JSON at byte " + strings.TrimPrefix(de.Message, "Invalid JSON at byte ")
				if !strings.HasPrefix(de.Message, "Invalid JSON at byte ") || strings.Contains(de.Message, "character") {
					t.Errorf("syntax error text %q", de.Message)
				}
			}
			if de.Status != tt.status || de.Message != tt.msg || de.Error() != tt.msg {
				t.Errorf("got %d %q, want %d %q", de.Status, de.Message, tt.status, tt.msg)
			}
			if de.RequestID != tt.requestID {
				t.Errorf("RequestID %q, want %q", de.RequestID, tt.requestID)
			}
			if !(m.Action == "" && m.Event == "" && m.Payload == nil) {
				t.Errorf("message not zero on error: %+v", m)
			}
		})
	}
}

func TestDecodeSizeOfAppendixS32(t *testing.T) {
	data := []byte(`{"action":"BROADCAST","event":"message","channelName":"/chat/lobby","requestId":"big-1","payload":{"text":"` +
		strings.Repeat("x", 1100110-110) + `"}}`)
	if len(data) != 1100110 {
		t.Fatalf("test input is %d bytes", len(data))
	}
	_, err := DecodeClientMessage(data, 1048576)
	const want = "Message size 1100110 exceeds maximum allowed size of 1048576 bytes"
	var de *DecodeError
	if !errors.As(err, &de) || de.Status != 413 || de.Message != want {
		t.Fatalf("got %v, want 413 %q", err, want)
	}
	if _, err := DecodeClientMessage(data, 0); err != nil {
		t.Fatalf("no limit: %v", err)
	}
	if _, err := DecodeClientMessage(data, -1); err != nil {
		t.Fatalf("negative limit: %v", err)
	}
}

// The decoded message must not alias the input (a reused network buffer).
func TestDecodeDoesNotAlias(t *testing.T) {
	for _, in := range []string{
		msgJoin,
		`{"action":"BROADCAST","event":"\u00e9v","channelName":"c\n","requestId":"r","payload":{ "a" : "\u0041" }}`,
	} {
		data := []byte(in)
		m, err := DecodeClientMessage(data, 0)
		if err != nil {
			t.Fatal(err)
		}
		want := ClientMessage{m.Action, strings.Clone(m.Event), strings.Clone(m.ChannelName), strings.Clone(m.RequestID), bytes.Clone(m.Payload)}
		for i := range data {
			data[i] = '#'
		}
		if m.Action != want.Action || m.Event != want.Event || m.ChannelName != want.ChannelName || m.RequestID != want.RequestID || !bytes.Equal(m.Payload, want.Payload) {
			t.Fatalf("message changed with its input: %+v", m)
		}
		// Appending to the payload must not clobber anything else.
		_ = append(m.Payload, "garbage"...)
		if m.Event != want.Event || m.ChannelName != want.ChannelName || m.RequestID != want.RequestID {
			t.Fatalf("append to payload clobbered the strings: %+v", m)
		}
	}
}

func TestDecodeAllocs(t *testing.T) {
	for _, in := range []string{
		msgJoin,
		` { "\u0061ction" : "JOIN\u005fCHANNEL", "event":"\u00e9", "channelName":"c", "requestId":"r", "payload": { "a" : 1 } } `,
	} {
		data := []byte(in)
		n := testing.AllocsPerRun(200, func() {
			if _, err := DecodeClientMessage(data, 1<<20); err != nil {
				t.Fatal(err)
			}
		})
		if n > 1 {
			t.Errorf("DecodeClientMessage(%s): %v allocations, want 1", in, n)
		}
	}
	ping := []byte(` { "action" : "ping" } `)
	if n := testing.AllocsPerRun(200, func() { IsClientPing(ping) }); n != 0 {
		t.Errorf("IsClientPing: %v allocations, want 0", n)
	}
}

// The scanner accepts exactly what encoding/json accepts, including its
// nesting limit.
func TestScannerAgreesWithEncodingJSON(t *testing.T) {
	deep := func(n int, open, close string) string {
		return strings.Repeat(open, n) + strings.Repeat(close, n)
	}
	inputs := []string{
		``, ` `, `{`, `}`, `{}`, `[]`, `[`, `]`, `"`, `""`, `"\"`, `"\u12"`, `"\u123g"`, `"\x"`, `"\/"`,
		`0`, `-`, `-0`, `01`, `1.`, `1.0`, `.5`, `1e`, `1e+`, `1E-5`, `-0.0e0`, `+1`, `1 2`,
		`true`, `tru`, `truex`, `nul`, `null`, `false`, `NaN`, `Infinity`,
		`{"a"}`, `{"a":}`, `{"a":1,}`, `{,}`, `{"a":1 "b":2}`, `{1:2}`, `{"a":1}}`, `[1,]`, `[,1]`, `[1 2]`,
		`[[[]]]`, `{"a":{"b":{"c":[{}]}}}`, "\ufeff{}", "{}\x00", "\"\x7f\"", "\"\x1f\"", "\"\xff\"",
		"{\"a\":1}\r\n\t ",
		deep(10000, "[", "]"), deep(10001, "[", "]"),
		`{"a":` + deep(9999, "[", "]") + `}`, `{"a":` + deep(10000, "[", "]") + `}`,
		`{"a":` + strings.Repeat(`{"b":`, 9999) + `1` + strings.Repeat("}", 9999) + `}`,
		`{"a":` + strings.Repeat(`{"b":`, 10000) + `1` + strings.Repeat("}", 10000) + `}`,
	}
	for _, in := range inputs {
		var env envelope
		_, _, ok := env.scan([]byte(in))
		if want := json.Valid([]byte(in)); ok != want {
			name := in
			if len(name) > 40 {
				name = name[:40] + "…"
			}
			t.Errorf("scan(%q) = %v, json.Valid = %v", name, ok, want)
		}
	}
}

func TestIsClientPing(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{`{"action":"ping"}`, true},
		{" {\n\t\"action\" :  \"ping\" } \r\n", true},
		{`{"\u0061ction":"p\u0069ng"}`, true},
		{`{"action":"pong","action":"ping"}`, true},
		{`{"action":"ping","action":"pong"}`, false},
		{`{"action":"PING"}`, false},
		{`{"action":"ping","event":"x"}`, false},
		{`{"event":"x","action":"ping"}`, false},
		{`{"action":"ping","x":1}`, false},
		{`{"action":"ping"`, false},
		{`{"action":"ping"} x`, false},
		{`{"action":["ping"]}`, false},
		{`{"action":null}`, false},
		{`{}`, false},
		{`[{"action":"ping"}]`, false},
		{`"ping"`, false},
		{``, false},
		{`not json`, false},
		{msgBroadcast, false},
	}
	for _, tt := range tests {
		if got := IsClientPing([]byte(tt.in)); got != tt.want {
			t.Errorf("IsClientPing(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func BenchmarkDecodeClientMessage(b *testing.B) {
	for _, bm := range []struct{ name, in string }{
		{"join", msgJoin},
		{"broadcast", `{"action":"BROADCAST","event":"message","channelName":"/chat/lobby","requestId":"b8a80dbb-90db-40a6-be7c-35919e653c3f","payload":{"text":"hello everyone, this is a chat message","n":1,"tags":["a","b"]}}`},
		// what pondbench echo sends: a 100-byte payload, mostly padding
		{"pondbench", `{"action":"BROADCAST","event":"echo","channelName":"/chat/r417","requestId":"m417.52","payload":{"ts":"1796312134907349","seq":52,"src":417,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}`},
	} {
		b.Run(bm.name, func(b *testing.B) {
			data := []byte(bm.in)
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := DecodeClientMessage(data, 1<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkIsClientPing(b *testing.B) {
	data := []byte(msgBroadcast)
	b.ReportAllocs()
	for b.Loop() {
		IsClientPing(data)
	}
}
