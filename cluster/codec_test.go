package cluster

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// envelopeKeys are the eight keys every message carries (docs/distributed.md §3).
var envelopeKeys = []string{"protocol", "version", "type", "messageId", "sourceNodeId", "endpointName", "channelName", "timestamp"}

// wireKeys is docs/distributed.md §4 "extra fields (exact)", written out again
// here independently of the codec's table.
var wireKeys = map[Type][]string{
	UserMessage:     {"fromUserId", "event", "payload", "requestId", "recipientDescriptor"},
	PresenceUpdate:  {"userId", "presence"},
	PresenceRemoved: {"userId"},
	AssignsUpdate:   {"userId", "assigns"},
	EvictUser:       {"userId", "reason"},
	UserRemove:      {"userId"},
	UserGetRequest:  {"userId", "requestId", "fromNode"},
	UserGetResponse: {"userId", "requestId", "assigns", "presence"},
	UserJoined:      {"userId", "presence", "assigns"},
	UserLeft:        {"userId"},
	StateRequest:    {"fromNode"},
	StateResponse:   {"users"},
	NodeHeartbeat:   {"nodeId"},
}

func expectedKeys(t Type) []string {
	keys := append(slices.Clone(envelopeKeys), wireKeys[t]...)
	slices.Sort(keys)
	return keys
}

func keysOf(t *testing.T, data []byte) (map[string]any, []string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("not a JSON object: %v\n%s", err, data)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return m, keys
}

type fixture struct {
	topic string
	data  []byte
}

// appendixC reads the bus lines of docs/protocol.md §4 (captured from two
// reference nodes): "[bus <topic>] <json>".
func appendixC(t testing.TB) []fixture {
	t.Helper()
	f, err := os.Open("testdata/appendix_c_bus.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []fixture
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		topic, data, ok := strings.Cut(strings.TrimPrefix(line, "[bus "), "] ")
		if !ok {
			t.Fatalf("bad fixture line %q", line)
		}
		out = append(out, fixture{topic, []byte(data)})
	}
	if len(out) == 0 {
		t.Fatal("no fixtures")
	}
	return out
}

// TestAppendixCRoundTrip decodes every captured reference message, checks
// its topic and exact key set, and re-encodes it byte for byte.
func TestAppendixCRoundTrip(t *testing.T) {
	seen := map[Type]bool{}
	for _, fx := range appendixC(t) {
		e, err := Decode(fx.data)
		if err != nil {
			t.Fatalf("Decode(%s): %v", fx.data, err)
		}
		seen[e.Type] = true
		t.Run(string(e.Type)+"/"+e.MessageID, func(t *testing.T) {
			var topic string
			if e.Type == NodeHeartbeat {
				topic = HeartbeatTopic("pondsocket", "demo")
			} else {
				topic = ChannelTopic("pondsocket", "demo", "/"+e.EndpointName, e.ChannelName)
			}
			if topic != fx.topic {
				t.Errorf("topic %q, captured %q", topic, fx.topic)
			}
			if e.Protocol != Protocol || e.Version != Version || e.Timestamp < 1795301284000 || e.SourceNodeID == "" {
				t.Errorf("envelope %+v", e)
			}
			got, err := Encode(e)
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if !bytes.Equal(got, fx.data) {
				t.Errorf("re-encoded bytes differ\n got %s\nwant %s", got, fx.data)
			}
			want, wantKeys := keysOf(t, fx.data)
			have, haveKeys := keysOf(t, got)
			if !slices.Equal(haveKeys, expectedKeys(e.Type)) {
				t.Errorf("keys %v, want %v", haveKeys, expectedKeys(e.Type))
			}
			if !slices.Equal(wantKeys, expectedKeys(e.Type)) {
				t.Errorf("fixture keys %v, want %v (spec table and capture disagree)", wantKeys, expectedKeys(e.Type))
			}
			if !reflect.DeepEqual(want, have) {
				t.Errorf("values differ\n got %v\nwant %v", have, want)
			}
			if v, ok := have["version"].(float64); !ok || v != 1 {
				t.Errorf("version %#v is not the number 1", have["version"])
			}
		})
	}
	for _, ty := range Types {
		if !seen[ty] {
			t.Errorf("Appendix C has no %s", ty)
		}
	}
}

// TestAppendixCValues spot-checks decoded values against the capture.
func TestAppendixCValues(t *testing.T) {
	byType := map[Type][]*Envelope{}
	for _, fx := range appendixC(t) {
		e, err := Decode(fx.data)
		if err != nil {
			t.Fatal(err)
		}
		byType[e.Type] = append(byType[e.Type], e)
	}
	alice, bob := "a0961fc1-4e22-41a4-afbe-2c31497c7aff", "d20d303a-35e9-48fe-9f84-e4f33f6aee61"
	um := byType[UserMessage]
	if e := um[0]; e.FromUserID != alice || e.Event != "message" || string(e.Payload) != `{"text":"hi","from":"alice"}` ||
		e.RequestID != "msg-1" || !e.Recipients.All || e.EndpointName != "api/socket" || e.ChannelName != "/chat/lobby" ||
		e.MessageID != "mwr014zr-x2pky1znm1e" || e.Timestamp != 1795301284743 || e.SourceNodeID != "712vqfmp6d" {
		t.Errorf("USER_MESSAGE ALL_USERS: %+v", e)
	}
	if e := um[1]; !e.Recipients.ExceptSender || e.Recipients.All || e.Recipients.IDs != nil {
		t.Errorf("USER_MESSAGE ALL_EXCEPT_SENDER: %+v", e.Recipients)
	}
	if e := um[2]; !slices.Equal(e.Recipients.IDs, []string{bob}) || e.Recipients.All || e.Recipients.ExceptSender {
		t.Errorf("USER_MESSAGE array: %+v", e.Recipients)
	}
	if e := um[3]; e.FromUserID != "CHANNEL" {
		t.Errorf("reply fromUserId %q", e.FromUserID)
	}
	sr := byType[StateResponse][0]
	if len(sr.Users) != 2 || sr.Users[0].ID != alice || string(sr.Users[0].Presence) != `{"username":"alice","status":"online"}` ||
		string(sr.Users[1].Assigns) != `{"userName":"bob","role":"user","username":"bob"}` {
		t.Errorf("STATE_RESPONSE users %+v", sr.Users)
	}
	if e := byType[UserJoined][0]; string(e.Presence) != `{}` || e.UserID != alice {
		t.Errorf("USER_JOINED %+v", e)
	}
	if e := byType[NodeHeartbeat][0]; e.NodeID != e.SourceNodeID || e.EndpointName != HeartbeatName || e.ChannelName != HeartbeatName {
		t.Errorf("heartbeat %+v", e)
	}
	if e := byType[UserGetRequest][0]; e.FromNode != "4f8d683c-2312-4392-9fe4-80adff2212d1" || e.RequestID != "3661c201-03c3-4108-8299-b3e928a6876e" {
		t.Errorf("USER_GET_REQUEST %+v", e)
	}
	if e := byType[EvictUser][0]; e.Reason != "spamming" || e.UserID != bob {
		t.Errorf("EVICT_USER %+v", e)
	}
	if e := byType[AssignsUpdate][0]; string(e.Assigns) != `{"userName":"alice","role":"user","username":"alice2"}` {
		t.Errorf("ASSIGNS_UPDATE %+v", e)
	}
}

// TestEncodeEveryType builds each type in Go and checks the exact key set
// and the defaults.
func TestEncodeEveryType(t *testing.T) {
	for _, ty := range Types {
		t.Run(string(ty), func(t *testing.T) {
			e := &Envelope{
				Type: ty, MessageID: "m-1", SourceNodeID: "n1", EndpointName: "api/socket", ChannelName: "/c",
				Timestamp: 42, UserID: "u1", Assigns: json.RawMessage(`{"a":1}`),
			}
			data, err := Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			m, keys := keysOf(t, data)
			if !slices.Equal(keys, expectedKeys(ty)) {
				t.Errorf("keys %v, want %v", keys, expectedKeys(ty))
			}
			if m["protocol"] != Protocol || m["version"] != float64(1) || m["timestamp"] != float64(42) {
				t.Errorf("envelope %v", m)
			}
			for _, k := range []string{"payload", "presence"} {
				if v, ok := m[k]; ok && !reflect.DeepEqual(v, map[string]any{}) {
					t.Errorf("%s = %#v, want {}", k, v)
				}
			}
			back, err := Decode(data)
			if err != nil {
				t.Fatalf("Decode(Encode): %v\n%s", err, data)
			}
			again, _ := Encode(back)
			if !bytes.Equal(again, data) {
				t.Errorf("not stable:\n%s\n%s", data, again)
			}
		})
	}
}

func TestEncodeAssignsUpdateKeyValue(t *testing.T) {
	e := &Envelope{Type: AssignsUpdate, UserID: "u", Key: "role", Value: json.RawMessage(`"admin"`)}
	data, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	m, keys := keysOf(t, data)
	want := append(slices.Clone(envelopeKeys), "userId", "key", "value")
	slices.Sort(want)
	if !slices.Equal(keys, want) || m["value"] != "admin" {
		t.Errorf("keys %v value %v", keys, m["value"])
	}
	back, err := Decode(data)
	if err != nil || back.Assigns != nil || back.Key != "role" || string(back.Value) != `"admin"` {
		t.Errorf("Decode: %+v %v", back, err)
	}
	if _, err := Encode(&Envelope{Type: AssignsUpdate, UserID: "u"}); !errors.Is(err, ErrInvalidEnvelope) {
		t.Errorf("ASSIGNS_UPDATE without assigns or key: %v", err)
	}
}

func TestEncodeRejects(t *testing.T) {
	for name, e := range map[string]*Envelope{
		"unknown type":          {Type: "NOPE"},
		"payload not JSON":      {Type: UserMessage, Payload: json.RawMessage(`{"a":`)},
		"presence not object":   {Type: PresenceUpdate, Presence: json.RawMessage(`[1]`)},
		"assigns not object":    {Type: UserJoined, Assigns: json.RawMessage(`"x"`)},
		"recipients both flags": {Type: UserMessage, Recipients: Recipients{All: true, ExceptSender: true}},
		"recipients flag + ids": {Type: UserMessage, Recipients: Recipients{All: true, IDs: []string{"a"}}},
		"user assigns not obj":  {Type: StateResponse, Users: []StateUser{{ID: "a", Assigns: json.RawMessage(`1`)}}},
	} {
		if _, err := Encode(e); !errors.Is(err, ErrInvalidEnvelope) {
			t.Errorf("%s: err %v", name, err)
		}
	}
}

func TestEncodeEscapesLikeJSONStringify(t *testing.T) {
	e := &Envelope{Type: UserLeft, UserID: "a\"b\\c\n\x01<&>\u2028é\xff", ChannelName: "/chat/[a]*?"}
	data, err := Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(data, []byte(`"userId":"a\"b\\c\n\u0001<&>`+"\u2028é"+`\ufffd"`)) {
		t.Errorf("escaping: %s", data)
	}
	back, err := Decode(data)
	if err != nil || back.UserID != "a\"b\\c\n\x01<&>\u2028é\ufffd" || back.ChannelName != "/chat/[a]*?" {
		t.Errorf("round trip %q %v", back.UserID, err)
	}
}

// valid is a USER_MESSAGE every receiver check accepts; the cases below
// break one thing each.
const valid = `{"type":"USER_MESSAGE","endpointName":"api/socket","channelName":"/chat/lobby","fromUserId":"u1","event":"message","payload":{"text":"hi"},"requestId":"r1","recipientDescriptor":"ALL_USERS","protocol":"pondsocket.distributed","version":1,"messageId":"m1","timestamp":1795301284743,"sourceNodeId":"n1"}`

func mutate(t *testing.T, base string, fn func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(base), &m); err != nil {
		t.Fatal(err)
	}
	fn(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeReceiverChecks(t *testing.T) {
	if _, err := Decode([]byte(valid)); err != nil {
		t.Fatalf("valid message rejected: %v", err)
	}
	set := func(k string, v any) func(map[string]any) { return func(m map[string]any) { m[k] = v } }
	del := func(k string) func(map[string]any) { return func(m map[string]any) { delete(m, k) } }
	cases := map[string]func(map[string]any){
		"protocol other":          set("protocol", "pondsocket.other"),
		"protocol missing":        del("protocol"),
		"protocol not string":     set("protocol", 1),
		"version 2":               set("version", 2),
		"version string":          set("version", "1"),
		"version missing":         del("version"),
		"version bool":            set("version", true),
		"version 1.5":             set("version", 1.5),
		"type unknown":            set("type", "USER_MESSAGES"),
		"type lower case":         set("type", "user_message"),
		"type missing":            del("type"),
		"type not string":         set("type", 3),
		"messageId missing":       del("messageId"),
		"messageId number":        set("messageId", 5),
		"messageId null":          set("messageId", nil),
		"sourceNodeId missing":    del("sourceNodeId"),
		"sourceNodeId number":     set("sourceNodeId", 5),
		"endpointName missing":    del("endpointName"),
		"endpointName array":      set("endpointName", []any{"a"}),
		"channelName missing":     del("channelName"),
		"channelName object":      set("channelName", map[string]any{}),
		"timestamp missing":       del("timestamp"),
		"timestamp string":        set("timestamp", "1795301284743"),
		"timestamp null":          set("timestamp", nil),
		"fromUserId missing":      del("fromUserId"),
		"event missing":           del("event"),
		"event number":            set("event", 1),
		"requestId number":        set("requestId", 1),
		"recipients missing":      del("recipientDescriptor"),
		"recipients other string": set("recipientDescriptor", "EVERYONE"),
		"recipients number array": set("recipientDescriptor", []any{"a", 1}),
		"recipients object":       set("recipientDescriptor", map[string]any{}),
		"key case": func(m map[string]any) {
			m["Type"] = m["type"]
			delete(m, "type")
		},
	}
	for name, fn := range cases {
		t.Run(name, func(t *testing.T) {
			data := mutate(t, valid, fn)
			if e, err := Decode(data); !errors.Is(err, ErrInvalidEnvelope) {
				t.Errorf("accepted %s: %+v, err %v", data, e, err)
			}
		})
	}
	for name, data := range map[string]string{
		"empty":         ``,
		"not JSON":      `{"type":`,
		"array":         `[` + valid + `]`,
		"string":        `"x"`,
		"trailing data": valid + `{}`,
		"two objects":   valid + valid,
	} {
		if _, err := Decode([]byte(data)); !errors.Is(err, ErrInvalidEnvelope) {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestDecodeRequiredFieldsPerType(t *testing.T) {
	env := `"protocol":"pondsocket.distributed","version":1,"messageId":"m","timestamp":1,"sourceNodeId":"n","endpointName":"e","channelName":"c"`
	reject := map[string]string{
		"PRESENCE_UPDATE no presence":       `"type":"PRESENCE_UPDATE","userId":"u"`,
		"PRESENCE_UPDATE presence array":    `"type":"PRESENCE_UPDATE","userId":"u","presence":[]`,
		"PRESENCE_UPDATE no userId":         `"type":"PRESENCE_UPDATE","presence":{}`,
		"PRESENCE_REMOVED no userId":        `"type":"PRESENCE_REMOVED"`,
		"ASSIGNS_UPDATE neither":            `"type":"ASSIGNS_UPDATE","userId":"u"`,
		"ASSIGNS_UPDATE assigns string":     `"type":"ASSIGNS_UPDATE","userId":"u","assigns":"x"`,
		"EVICT_USER userId number":          `"type":"EVICT_USER","userId":1,"reason":"r"`,
		"USER_REMOVE no userId":             `"type":"USER_REMOVE"`,
		"USER_GET_REQUEST no requestId":     `"type":"USER_GET_REQUEST","userId":"u","fromNode":"f"`,
		"USER_GET_RESPONSE no requestId":    `"type":"USER_GET_RESPONSE","userId":"u","assigns":{},"presence":{}`,
		"USER_JOINED no userId":             `"type":"USER_JOINED","presence":{},"assigns":{}`,
		"USER_LEFT userId null":             `"type":"USER_LEFT","userId":null`,
		"STATE_RESPONSE no users":           `"type":"STATE_RESPONSE"`,
		"STATE_RESPONSE users object":       `"type":"STATE_RESPONSE","users":{}`,
		"STATE_RESPONSE userId not id":      `"type":"STATE_RESPONSE","users":[{"userId":"a","assigns":{},"presence":{}}]`,
		"STATE_RESPONSE user not object":    `"type":"STATE_RESPONSE","users":["a"]`,
		"STATE_RESPONSE presence not obj":   `"type":"STATE_RESPONSE","users":[{"id":"a","presence":1}]`,
		"NODE_HEARTBEAT nodeId number":      `"type":"NODE_HEARTBEAT","nodeId":1`,
		"STATE_REQUEST fromNode number":     `"type":"STATE_REQUEST","fromNode":1`,
		"USER_MESSAGE recipients ids mixed": `"type":"USER_MESSAGE","fromUserId":"u","event":"e","recipientDescriptor":["a",null]`,
	}
	for name, body := range reject {
		if e, err := Decode([]byte("{" + body + "," + env + "}")); !errors.Is(err, ErrInvalidEnvelope) {
			t.Errorf("%s: accepted %+v", name, e)
		}
	}
	// Tolerated: unknown fields, absent optional fields, version 1.0.
	accept := map[string]string{
		"unknown fields":            `"type":"USER_LEFT","userId":"u","presenceEvent":"x","nodeId":"y","extra":{"a":[1]}`,
		"USER_MESSAGE minimal":      `"type":"USER_MESSAGE","fromUserId":"u","event":"e","recipientDescriptor":[]`,
		"EVICT_USER no reason":      `"type":"EVICT_USER","userId":"u"`,
		"STATE_REQUEST no fromNode": `"type":"STATE_REQUEST"`,
		"USER_JOINED no presence":   `"type":"USER_JOINED","userId":"u"`,
		"USER_GET_RESPONSE bare":    `"type":"USER_GET_RESPONSE","userId":"u","requestId":"r"`,
		"NODE_HEARTBEAT no nodeId":  `"type":"NODE_HEARTBEAT"`,
		"STATE_RESPONSE empty":      `"type":"STATE_RESPONSE","users":[]`,
		"STATE_RESPONSE bare user":  `"type":"STATE_RESPONSE","users":[{"id":"a"}]`,
		"ASSIGNS_UPDATE key only":   `"type":"ASSIGNS_UPDATE","userId":"u","key":"k"`,
	}
	for name, body := range accept {
		e, err := Decode([]byte("{" + body + "," + env + "}"))
		if err != nil {
			t.Errorf("%s: rejected: %v", name, err)
			continue
		}
		switch e.Type {
		case UserMessage:
			if string(e.Payload) != "{}" || e.RequestID != "" || e.Recipients.IDs == nil {
				t.Errorf("%s: defaults %+v", name, e)
			}
		case UserJoined, UserGetResponse:
			if string(e.Presence) != "{}" || string(e.Assigns) != "{}" {
				t.Errorf("%s: defaults %+v", name, e)
			}
		case NodeHeartbeat:
			if e.NodeID != "n" {
				t.Errorf("%s: nodeId default %q", name, e.NodeID)
			}
		case StateResponse:
			for _, u := range e.Users {
				if string(u.Assigns) != "{}" || string(u.Presence) != "{}" {
					t.Errorf("%s: user defaults %+v", name, u)
				}
			}
		}
	}
	if _, err := Decode([]byte(strings.Replace(valid, `"version":1`, `"version":1.0`, 1))); err != nil {
		t.Errorf("version 1.0 (the number 1) rejected: %v", err)
	}
	dup := strings.Replace(valid, `"event":"message"`, `"event":"first","event":"last"`, 1)
	if e, err := Decode([]byte(dup)); err != nil || e.Event != "last" {
		t.Errorf("duplicate key: last should win as in JSON.parse: %+v %v", e, err)
	}
}

func TestRecipientsForms(t *testing.T) {
	cases := []struct {
		json string
		r    Recipients
	}{
		{`"ALL_USERS"`, AllUsers()},
		{`"ALL_EXCEPT_SENDER"`, AllExceptSender()},
		{`["a","b"]`, UserIDs("a", "b")},
		{`[]`, Recipients{IDs: []string{}}},
	}
	for _, c := range cases {
		got, err := json.Marshal(c.r)
		if err != nil || string(got) != c.json {
			t.Errorf("Marshal(%+v) = %s, %v; want %s", c.r, got, err, c.json)
		}
		var back Recipients
		if err := json.Unmarshal([]byte(c.json), &back); err != nil || !reflect.DeepEqual(back, c.r) {
			t.Errorf("Unmarshal(%s) = %+v, %v", c.json, back, err)
		}
	}
	if b, _ := json.Marshal(Recipients{}); string(b) != "[]" {
		t.Errorf("zero Recipients = %s, want []", b)
	}
	for _, bad := range []string{`"ALL"`, `["a",2]`, `{}`, `null`, `1`, `"all_users"`} {
		var r Recipients
		if err := json.Unmarshal([]byte(bad), &r); err == nil {
			t.Errorf("Unmarshal(%s) accepted: %+v", bad, r)
		}
	}
	if !AllUsers().Includes("x", "x") || AllExceptSender().Includes("s", "s") || !AllExceptSender().Includes("x", "s") ||
		!UserIDs("a", "b").Includes("b", "a") || UserIDs("a").Includes("c", "a") {
		t.Error("Includes")
	}
}

func FuzzDecode(f *testing.F) {
	for _, fx := range appendixC(f) {
		f.Add(fx.data)
	}
	f.Add([]byte(valid))
	f.Add([]byte(`{"type":"STATE_RESPONSE","users":[{"id":"a"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidEnvelope) {
				t.Fatalf("error does not wrap ErrInvalidEnvelope: %v", err)
			}
			return
		}
		// Differential check against encoding/json (exact keys, last
		// duplicate wins, as for a map).
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("accepted what encoding/json rejects: %v", err)
		}
		for k, v := range map[string]string{"type": string(e.Type), "messageId": e.MessageID, "sourceNodeId": e.SourceNodeID,
			"endpointName": e.EndpointName, "channelName": e.ChannelName, "protocol": e.Protocol} {
			if m[k] != v {
				t.Fatalf("%s: Decode %q, encoding/json %#v", k, v, m[k])
			}
		}
		if uid, ok := m["userId"].(string); ok && uid != e.UserID && e.Type != UserMessage && e.Type != StateRequest &&
			e.Type != StateResponse && e.Type != NodeHeartbeat {
			t.Fatalf("userId: Decode %q, encoding/json %q", e.UserID, uid)
		}
		enc, err := Encode(e)
		if err != nil {
			t.Fatalf("accepted message does not re-encode: %v", err)
		}
		e2, err := Decode(enc)
		if err != nil {
			t.Fatalf("re-encoded message rejected: %v\n%s", err, enc)
		}
		enc2, _ := Encode(e2)
		if !bytes.Equal(enc, enc2) {
			t.Fatalf("unstable:\n%s\n%s", enc, enc2)
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	data := []byte(valid)
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Decode(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	e, _ := Decode([]byte(valid))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Encode(e); err != nil {
			b.Fatal(err)
		}
	}
}
