package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pondsocket/pondsocket/internal/wsframe"
)

func TestEncodeExactBytes(t *testing.T) {
	tests := []struct {
		name                              string
		action, event, channel, requestID string
		payload                           json.RawMessage
		want                              string
	}{
		{"acknowledge", ActionSystem, EventAcknowledge, "/chat/lobby", "join-A", json.RawMessage(`{}`),
			`{"action":"SYSTEM","event":"ACKNOWLEDGE","channelName":"/chat/lobby","requestId":"join-A","payload":{}}`},
		{"empty payload is {}", ActionConnect, EventConnection, ChannelEndpoint, "35ecb2d3-719c-4bf7-bb29-47f796cc9e69", nil,
			`{"action":"CONNECT","event":"CONNECTION","channelName":"ENDPOINT","requestId":"35ecb2d3-719c-4bf7-bb29-47f796cc9e69","payload":{}}`},
		{"S6 invalid message", ActionError, ErrInvalidMessage, ChannelEndpoint, "8a2f17cb-bc91-492a-8901-4c7d29422a40",
			ErrorPayload(ErrInvalidMessage, `action: Expected one of [JOIN_CHANNEL, LEAVE_CHANNEL, BROADCAST], got "SHOUT"`, 500),
			`{"action":"ERROR","event":"INVALID_MESSAGE","channelName":"ENDPOINT","requestId":"8a2f17cb-bc91-492a-8901-4c7d29422a40","payload":{"code":"INVALID_MESSAGE","message":"action: Expected one of [JOIN_CHANNEL, LEAVE_CHANNEL, BROADCAST], got \"SHOUT\"","status":500,"statusCode":500,"error":{"message":"action: Expected one of [JOIN_CHANNEL, LEAVE_CHANNEL, BROADCAST], got \"SHOUT\"","status":500}}}`},
		{"S17 handler not found", ActionError, ErrHandlerNotFound, "/chat/lobby", "evt-pass",
			HandlerErrorPayload("A handler did not respond to the event", 500),
			`{"action":"ERROR","event":"HANDLER_NOT_FOUND","channelName":"/chat/lobby","requestId":"evt-pass","payload":{"message":"A handler did not respond to the event","code":500}}`},
		{"presence", ActionPresence, EventJoin, "/chat/lobby", "10b0322a-bfbe-463b-9424-8e8ffaf297a6",
			json.RawMessage(`{"changed":{"username":"alice","status":"online"},"presence":[{"username":"alice","status":"online"}]}`),
			`{"action":"PRESENCE","event":"JOIN","channelName":"/chat/lobby","requestId":"10b0322a-bfbe-463b-9424-8e8ffaf297a6","payload":{"changed":{"username":"alice","status":"online"},"presence":[{"username":"alice","status":"online"}]}}`},
		{"escaping", ActionServerBroadcast, "a\"b\\c\nd\u2028", "/caf\xe9", "<&>", json.RawMessage(`{}`),
			`{"action":"BROADCAST","event":"a\"b\\c\nd\u2028","channelName":"/caf\ufffd","requestId":"<&>","payload":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := Encode(tt.action, tt.event, tt.channel, tt.requestID, tt.payload)
			defer f.Release()
			if got := string(f.Payload()); got != tt.want {
				t.Errorf("payload\n got %s\nwant %s", got, tt.want)
			}
			if !f.Sealed() || f.Op() != wsframe.OpText {
				t.Errorf("frame not sealed as text: op %#x", f.Op())
			}
			if !json.Valid(f.Payload()) || bytes.ContainsAny(f.Payload(), "\n\r") {
				t.Errorf("not one line of valid JSON: %q", f.Payload())
			}
			b := f.Bytes()
			hdr := []byte{0x81, byte(len(tt.want))}
			if len(tt.want) >= 126 {
				hdr = []byte{0x81, 126, byte(len(tt.want) >> 8), byte(len(tt.want))}
			}
			if !bytes.Equal(b[:len(hdr)], hdr) || string(b[len(hdr):]) != tt.want {
				t.Errorf("frame header % x, want % x", b[:len(hdr)], hdr)
			}
			if got := string(AppendMessage([]byte("x"), tt.action, tt.event, tt.channel, tt.requestID, tt.payload)); got != "x"+tt.want {
				t.Errorf("AppendMessage\n got %s\nwant x%s", got, tt.want)
			}
		})
	}
}

func TestErrorPayloads(t *testing.T) {
	// Appendix A S10 and S26, S18.
	if got, want := string(ErrorPayload(ErrUnauthorizedJoinRequest, "You are banned", 403)),
		`{"code":"UNAUTHORIZED_JOIN_REQUEST","message":"You are banned","status":403,"statusCode":403,"error":{"message":"You are banned","status":403}}`; got != want {
		t.Errorf("ErrorPayload\n got %s\nwant %s", got, want)
	}
	if got, want := string(ErrorPayload(ErrInvalidMessage, "Channel /chat/ghost not found", 404)),
		`{"code":"INVALID_MESSAGE","message":"Channel /chat/ghost not found","status":404,"statusCode":404,"error":{"message":"Channel /chat/ghost not found","status":404}}`; got != want {
		t.Errorf("ErrorPayload\n got %s\nwant %s", got, want)
	}
	if got, want := string(HandlerErrorPayload("bad input", 422)), `{"message":"bad input","code":422}`; got != want {
		t.Errorf("HandlerErrorPayload\n got %s\nwant %s", got, want)
	}
	if got, want := string(HandlerErrorPayload("line\nbreak \"q\"", -1)), `{"message":"line\nbreak \"q\"","code":-1}`; got != want {
		t.Errorf("HandlerErrorPayload\n got %s\nwant %s", got, want)
	}
}

func TestAppendString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"plain ascii", `"plain ascii"`},
		{`"\`, `"\"\\"`},
		{"\n\r\t\b\f", `"\n\r\t\b\f"`},
		{"\x00\x01\x1f\x7f", `"\u0000\u0001\u001f` + "\x7f" + `"`},
		{"<script>&</script>", `"<script>&</script>"`},
		{"héllo 日本 😀", `"héllo 日本 😀"`},
		{"\u2028\u2029", `"\u2028\u2029"`},
		{"a\xffb\xc3", `"a\ufffdb\ufffd"`},
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`}, // encoded surrogate: invalid UTF-8
		{"/slash", `"/slash"`},
		// past the first eight plain bytes, checked a word at a time
		{"12345678\"x", `"12345678\"x"`},
		{"abcdefghijklmnop\n", `"abcdefghijklmnop\n"`},
		{"abcdefgh\x00ijklmnop", `"abcdefgh\u0000ijklmnop"`},
		{"abcdefgéijklmnop", `"abcdefgéijklmnop"`},
		{"abcdefgh\u2028ijklmnop", `"abcdefgh\u2028ijklmnop"`},
		{"abcdefgh\xffijklmnop", `"abcdefgh\ufffdijklmnop"`},
	}
	for _, tt := range tests {
		got := AppendString([]byte("x"), tt.in)
		if string(got) != "x"+tt.want {
			t.Errorf("AppendString(%q) = %s, want %s", tt.in, got[1:], tt.want)
		}
		var back string
		if err := json.Unmarshal(got[1:], &back); err != nil {
			t.Errorf("AppendString(%q) is not valid JSON: %v", tt.in, err)
		}
		if want := validUTF8PerByte(tt.in); back != want {
			t.Errorf("round trip %q -> %q, want %q", tt.in, back, want)
		}
	}
}

// validUTF8PerByte replaces every invalid byte by U+FFFD, like
// encoding/json and AppendString.
func validUTF8PerByte(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r)
		i += size
	}
	return b.String()
}

type payloadStruct struct {
	Text string `json:"text"`
	N    int    `json:"n,omitempty"`
}

type marshalerPayload struct{}

func (marshalerPayload) MarshalJSON() ([]byte, error) { return []byte(` { "m" : true } `), nil }

func TestMarshalPayload(t *testing.T) {
	var nilMap map[string]any
	var nilStrMap map[string]string
	var nilPtr *payloadStruct
	tests := []struct {
		name string
		in   any
		want string
	}{
		{"nil", nil, `{}`},
		{"nil map", nilMap, `{}`},
		{"nil typed map", nilStrMap, `{}`},
		{"nil pointer", nilPtr, `{}`},
		{"empty map", map[string]any{}, `{}`},
		{"map sorted, no HTML escaping", map[string]any{"b": "<&>", "a": 1, "c": []int{1}}, `{"a":1,"b":"<&>","c":[1]}`},
		{"struct", payloadStruct{Text: "hi all"}, `{"text":"hi all"}`},
		{"pointer", &payloadStruct{Text: "x", N: 2}, `{"text":"x","n":2}`},
		{"raw compacted", json.RawMessage(" { \"a\" : [ 1 , 2 ] ,\n\"b\":\"x y\" } "), `{"a":[1,2],"b":"x y"}`},
		{"bytes compacted", []byte(`{"a" : {}}`), `{"a":{}}`},
		{"empty raw", json.RawMessage(nil), `{}`},
		{"raw invalid UTF-8 sanitised", json.RawMessage("{\"a\":\"\xff\u2028\"}"), `{"a":"\ufffd\u2028"}`},
		{"marshaler", marshalerPayload{}, `{"m":true}`},
		{"string sanitised", map[string]string{"s": "a\xffb\u2029"}, `{"s":"a\ufffdb\u2029"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MarshalPayload(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
			f, err := EncodeValue(ActionSystem, "e", "c", "r", tt.in)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Release()
			if want := `{"action":"SYSTEM","event":"e","channelName":"c","requestId":"r","payload":` + tt.want + `}`; string(f.Payload()) != want {
				t.Errorf("EncodeValue\n got %s\nwant %s", f.Payload(), want)
			}
		})
	}
}

func TestMarshalPayloadNotObject(t *testing.T) {
	for _, in := range []any{
		[]int{1, 2}, "text", 42, true, json.RawMessage(`[1]`), json.RawMessage(`null`), []byte(`"x"`),
		json.RawMessage(`{"a":`), json.RawMessage(`{} {}`), []string(nil),
	} {
		_, err := MarshalPayload(in)
		if !errors.Is(err, ErrPayloadNotObject) {
			t.Errorf("MarshalPayload(%T %v) error = %v, want ErrPayloadNotObject", in, in, err)
		}
		if f, err := EncodeValue(ActionSystem, "e", "c", "r", in); f != nil || !errors.Is(err, ErrPayloadNotObject) {
			t.Errorf("EncodeValue(%T %v) = %v, %v", in, in, f, err)
		}
	}
	if _, err := MarshalPayload(map[string]any{"f": func() {}}); err == nil {
		t.Error("unencodable value accepted")
	}
	_, err := MarshalPayload([]int{1})
	if err == nil || err.Error() != "protocol: payload must be a JSON object: []int encodes to a JSON array" {
		t.Errorf("error text %q", err)
	}
}

func TestEncodeAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under the race detector")
	}
	payload := json.RawMessage(`{"text":"hi all","from":"alice"}`)
	for range 10 { // warm the pools
		Encode(ActionServerBroadcast, "message", "/chat/lobby", "msg-1", payload).Release()
	}
	n := testing.AllocsPerRun(200, func() {
		Encode(ActionServerBroadcast, "message", "/chat/lobby", "msg-1", payload).Release()
	})
	if n > 0 {
		t.Errorf("Encode: %v allocations, want 0", n)
	}
}

func BenchmarkEncode(b *testing.B) {
	payload := json.RawMessage(`{"text":"hi all","from":"alice"}`)
	b.ReportAllocs()
	for b.Loop() {
		f := Encode(ActionServerBroadcast, "message", "/chat/lobby", "b8a80dbb-90db-40a6-be7c-35919e653c3f", payload)
		f.Release()
	}
}

func BenchmarkEncodeValue(b *testing.B) {
	payload := map[string]any{"text": "hi all", "from": "alice"}
	b.ReportAllocs()
	for b.Loop() {
		f, err := EncodeValue(ActionServerBroadcast, "message", "/chat/lobby", "b8a80dbb-90db-40a6-be7c-35919e653c3f", payload)
		if err != nil {
			b.Fatal(err)
		}
		f.Release()
	}
}

func BenchmarkAppendString(b *testing.B) {
	s := "a fairly ordinary chat message with some text in it, café"
	buf := make([]byte, 0, 256)
	b.SetBytes(int64(len(s)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendString(buf[:0], s)
	}
}
