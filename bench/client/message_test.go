package client

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestSplitLines(t *testing.T) {
	for _, c := range []struct {
		in   string
		want []string
	}{
		{`{"a":1}`, []string{`{"a":1}`}},
		{"{\"a\":1}\n{\"b\":2}\n{\"c\":3}", []string{`{"a":1}`, `{"b":2}`, `{"c":3}`}},
		{"\n\n{\"a\":1}\r\n  \n{\"b\":2}\n\n", []string{`{"a":1}`, `{"b":2}`}},
		{"", nil},
		{"\n \n", nil},
	} {
		var got []string
		_ = SplitLines([]byte(c.in), func(l []byte) error { got = append(got, string(l)); return nil })
		if fmt.Sprint(got) != fmt.Sprint(c.want) {
			t.Errorf("SplitLines(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestParseMessage(t *testing.T) {
	for _, c := range []struct {
		line                          string
		action, event, channel, reqID string
		payload                       string
	}{
		{`{"action":"SYSTEM","event":"ACKNOWLEDGE","channelName":"/chat/r1","requestId":"j1","payload":{}}`,
			"SYSTEM", "ACKNOWLEDGE", "/chat/r1", "j1", `{}`},
		// key order differs, whitespace, nested strings with braces and escaped quotes
		{` { "payload" : {"t":"a}\"{b","n":[1,{"x":"]"}]} , "requestId":"r", "event":"message","channelName":"/c","action":"BROADCAST"} `,
			"BROADCAST", "message", "/c", "r", `{"t":"a}\"{b","n":[1,{"x":"]"}]}`},
		// a string ending in an escaped backslash, and an escaped quote after escaped backslashes
		{`{"action":"A\\","event":"e\\\"x","channelName":"c","requestId":"r","payload":{"k":"\\"}}`,
			`A\\`, `e\\\"x`, "c", "r", `{"k":"\\"}`},
		{`{"action":"ERROR","extra":[1,2,3],"event":"X","channelName":"ENDPOINT","requestId":"u","payload":{"code":500,"ok":true,"none":null}}`,
			"ERROR", "X", "ENDPOINT", "u", `{"code":500,"ok":true,"none":null}`},
	} {
		var m Message
		if err := ParseMessage([]byte(c.line), &m); err != nil {
			t.Fatalf("%s: %v", c.line, err)
		}
		if string(m.Action) != c.action || string(m.Event) != c.event || string(m.ChannelName) != c.channel ||
			string(m.RequestID) != c.reqID || string(m.Payload) != c.payload {
			t.Errorf("%s: got %q %q %q %q %q", c.line, m.Action, m.Event, m.ChannelName, m.RequestID, m.Payload)
		}
	}
	for _, bad := range []string{``, `[]`, `{"a"}`, `{"a":}`, `{"a":1`, `{"a":"x}`, `{"a":1 "b":2}`, `{"a":{"b":1}`} {
		var m Message
		if err := ParseMessage([]byte(bad), &m); err == nil {
			t.Errorf("ParseMessage(%q) accepted", bad)
		}
	}
}

func TestFieldInt(t *testing.T) {
	p := []byte(`{"ts":"1763769600123456789","seq":42,"f":1.7637696001234568e+18,"neg":-7,"s":"x"}`)
	for _, c := range []struct {
		key  string
		want int64
		ok   bool
	}{
		{"ts", 1763769600123456789, true},
		{"seq", 42, true},
		{"f", 1763769600123456768, true},
		{"neg", -7, true},
		{"s", 0, false},
		{"missing", 0, false},
	} {
		got, ok := FieldInt(p, c.key)
		if ok != c.ok || (ok && got != c.want) {
			t.Errorf("FieldInt(%s) = %d,%v want %d,%v", c.key, got, ok, c.want, c.ok)
		}
	}
}

func TestArrayLen(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{`[]`, 0},
		{` [ ] `, 0},
		{`[{"username":"a","status":"online"}]`, 1},
		{`[{"u":"a,b"},{"u":"]"}, {"u":"c"} ,[1,2]]`, 4},
		{`[1,"2",null,true]`, 4},
	} {
		n, err := ArrayLen([]byte(c.in))
		if err != nil || n != c.want {
			t.Errorf("ArrayLen(%s) = %d, %v; want %d", c.in, n, err, c.want)
		}
	}
	for _, bad := range []string{`{}`, `[1,`, `[1 2]`} {
		if _, err := ArrayLen([]byte(bad)); err == nil {
			t.Errorf("ArrayLen(%s) accepted", bad)
		}
	}
}

func TestPresencePayload(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(`{"action":"PRESENCE","event":"JOIN","channelName":"/chat/r","requestId":"u","payload":{"changed":{"username":"u9","status":"online"},"presence":[`)
	for i := 0; i < 100; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"username":"u%d","status":"online"}`, i)
	}
	sb.WriteString(`]}}`)
	var m Message
	if err := ParseMessage([]byte(sb.String()), &m); err != nil {
		t.Fatal(err)
	}
	list, ok := Field(m.Payload, "presence")
	if !ok {
		t.Fatal("no presence field")
	}
	if n, err := ArrayLen(list); err != nil || n != 100 {
		t.Fatalf("presence length %d, %v", n, err)
	}
}

func TestUpgradeResponse(t *testing.T) {
	key := "dGhlIHNhbXBsZSBub25jZQ=="
	accept := AcceptKey(key)
	if accept != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" { // RFC 6455 §1.3
		t.Fatalf("AcceptKey = %s", accept)
	}
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nsec-websocket-accept: " + accept + "\r\n\r\n\x81\x02hi"
	for i := 0; i < len(resp); i++ {
		n, err := ParseUpgradeResponse([]byte(resp[:i]), accept)
		if err != nil {
			t.Fatalf("prefix %d: %v", i, err)
		}
		if n != 0 && i < len(resp)-4 {
			t.Fatalf("prefix %d: complete at %d", i, n)
		}
	}
	n, err := ParseUpgradeResponse([]byte(resp), accept)
	if err != nil || resp[n:] != "\x81\x02hi" {
		t.Fatalf("n=%d err=%v", n, err)
	}
	_, err = ParseUpgradeResponse([]byte("HTTP/1.1 503 Service Unavailable\r\n\r\n"), accept)
	var se *StatusError
	if !errors.As(err, &se) || se.Code != 503 || !errors.Is(err, ErrHandshake) {
		t.Fatalf("503: err = %v, want a StatusError with code 503", err)
	}
	for _, bad := range []string{
		"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: wrong\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: " + accept + "\r\n\r\n",
		"SSH-2.0\r\n\r\n",
	} {
		if _, err := ParseUpgradeResponse([]byte(bad), accept); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func BenchmarkParseBroadcast(b *testing.B) {
	line := []byte(`{"action":"BROADCAST","event":"message","channelName":"/chat/r1","requestId":"0f8fad5b-d9cb-469f-a165-70867728950e","payload":{"ts":"1763769600123456789","seq":12345,"pub":0,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}`)
	var m Message
	b.ReportAllocs()
	b.SetBytes(int64(len(line)))
	for i := 0; i < b.N; i++ {
		if err := ParseMessage(line, &m); err != nil {
			b.Fatal(err)
		}
		if _, ok := FieldInt(m.Payload, "ts"); !ok {
			b.Fatal("no ts")
		}
	}
}
