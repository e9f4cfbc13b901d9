package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pondsocket/pondsocket"
)

// The raw suite: hand-written frames, replies compared field by field with
// the transcripts of docs/protocol.md §4 (uuids ignored), and with the
// decisions of §8 where we deliberately differ:
//   (a) a refused join is ERROR/UNAUTHORIZED with the reference's code in
//       the payload (the npm client only recognises that event);
//   (b) CONNECT carries {"connectionId": <user id>};
//   (c) presence UPDATE carries the new presence in "changed";
//   (d) {"action":"ping"} is ignored;
//   and errors on ENDPOINT echo the client's requestId when it had one.

var uuidRE = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

type raw struct {
	t    *testing.T
	c    *websocket.Conn
	id   string // the connection's user id, from CONNECT
	got  []map[string]any
	name string
}

func dialRawPond(t *testing.T, srv *pondsocket.Server, query string) *raw {
	t.Helper()
	return dialRawPondAt(t, srv.Addr().String(), query)
}

// dialRawPondAt is dialRawPond for a server at addr (another process).
func dialRawPondAt(t *testing.T, addr, query string) *raw {
	t.Helper()
	c, resp, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/api/socket?%s", addr, query), nil)
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.Fatalf("dial %s: %v (status %d)", query, err, status)
	}
	t.Cleanup(func() { c.Close() })
	r := &raw{t: t, c: c, name: query}
	m := r.next()
	if m["action"] != "CONNECT" || m["event"] != "CONNECTION" || m["channelName"] != "ENDPOINT" || !uuidRE.MatchString(m["requestId"].(string)) {
		t.Fatalf("first frame %v", m)
	}
	r.id, _ = m["payload"].(map[string]any)["connectionId"].(string)
	if !uuidRE.MatchString(r.id) {
		t.Fatalf("CONNECT connectionId %v", m["payload"])
	}
	return r
}

func (r *raw) send(s string) {
	r.t.Helper()
	if err := r.c.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		r.t.Fatal(err)
	}
}

// next returns the next server message (frames may hold several lines).
func (r *raw) next() map[string]any {
	r.t.Helper()
	for len(r.got) == 0 {
		_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		op, data, err := r.c.ReadMessage()
		if err != nil {
			r.t.Fatalf("%s: read: %v", r.name, err)
		}
		if op != websocket.TextMessage {
			r.t.Fatalf("%s: server sent a non-text frame (%d)", r.name, op)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(line), &m); err != nil {
				r.t.Fatalf("%s: line is not JSON: %q", r.name, line)
			}
			if len(m) != 5 {
				r.t.Fatalf("%s: message has %d fields, want exactly the 5 of the envelope: %s", r.name, len(m), line)
			}
			if _, ok := m["payload"].(map[string]any); !ok {
				r.t.Fatalf("%s: payload is not an object: %s", r.name, line)
			}
			r.got = append(r.got, m)
		}
	}
	m := r.got[0]
	r.got = r.got[1:]
	return m
}

// expect compares the next message with want (JSON). In want, "<uuid>"
// matches any uuid and "<id:X>" the user id of connection X.
func (r *raw) expect(want string, ids map[string]string) {
	r.t.Helper()
	for k, v := range ids {
		want = strings.ReplaceAll(want, "<id:"+k+">", v)
	}
	var w map[string]any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		r.t.Fatalf("bad expectation %s: %v", want, err)
	}
	got := r.next()
	if !matchJSON(w, got) {
		gb, _ := json.Marshal(got)
		r.t.Fatalf("%s:\n got  %s\n want %s", r.name, gb, want)
	}
}

func matchJSON(want, got any) bool {
	if s, ok := want.(string); ok && s == "<uuid>" {
		g, ok := got.(string)
		return ok && uuidRE.MatchString(g)
	}
	if s, ok := want.(string); ok && s == "<any>" {
		return true
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for k, v := range w {
			if !matchJSON(v, g[k]) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !matchJSON(w[i], g[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(want, got)
}

// sync proves nothing else is pending: a ping's pong must be next.
func (r *raw) sync(ch string) {
	r.t.Helper()
	r.send(`{"action":"BROADCAST","event":"ping","channelName":"` + ch + `","requestId":"sync","payload":{}}`)
	r.expect(`{"channelName":"`+ch+`","requestId":"sync","action":"SYSTEM","event":"pong","payload":{"receivedAt":1}}`, nil)
}

func TestRawUpgradeRefusals(t *testing.T) {
	srv := startDemo(t, nil)
	for _, c := range []struct {
		query  string
		status int
		body   string
	}{
		{"token=bad", 401, "Invalid token"}, // S1
		{"token=none", 500, "Connection handler completed without accepting or declining the request"}, // S2
		{"token=throw", 418, "teapot"}, // S3
	} {
		_, resp, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/api/socket?%s", srv.Addr(), c.query), nil)
		if err == nil || resp == nil || resp.StatusCode != c.status {
			t.Fatalf("%s: status %v err %v, want %d", c.query, resp, err, c.status)
		}
		b, _ := io.ReadAll(resp.Body)
		if strings.TrimSpace(string(b)) != c.body {
			t.Fatalf("%s: body %q", c.query, b)
		}
	}
	// S4: no endpoint matches; trailing slash does not match either
	for _, p := range []string{"/nope", "/api/socket/"} {
		_, resp, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s%s", srv.Addr(), p), nil)
		if err == nil || resp == nil || resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s: %v %v", p, resp, err)
		}
	}
}

func TestRawTranscript(t *testing.T) {
	srv := startDemo(t, nil)
	// S5: accepted with a connection reply
	a := dialRawPond(t, srv, "token=alice&greet=1")
	ids := map[string]string{"A": a.id}
	a.expect(`{"event":"welcome","payload":{"hello":"alice","clientId":"<id:A>"},"action":"BROADCAST","requestId":"<id:A>","channelName":"ENDPOINT"}`, ids)

	// S6: malformed frames; decision (d) for {"action":"ping"}
	a.send(`not json`)
	a.expect(`{"event":"INVALID_MESSAGE","action":"ERROR","channelName":"ENDPOINT","requestId":"<uuid>","payload":{"code":"INVALID_MESSAGE","message":"<any>","status":400,"statusCode":400,"error":{"message":"<any>","status":400}}}`, nil)
	a.send(`{"action":"ping"}`)
	a.send(`{"action":"SHOUT","event":"x","channelName":"/chat/lobby","requestId":"r","payload":{}}`)
	a.expect(`{"event":"INVALID_MESSAGE","action":"ERROR","channelName":"ENDPOINT","requestId":"r","payload":{"code":"INVALID_MESSAGE","message":"action: Expected one of [JOIN_CHANNEL, LEAVE_CHANNEL, BROADCAST], got \"SHOUT\"","status":500,"statusCode":500,"error":{"message":"action: Expected one of [JOIN_CHANNEL, LEAVE_CHANNEL, BROADCAST], got \"SHOUT\"","status":500}}}`, nil)
	a.send(`{"action":"BROADCAST","event":"x","channelName":"/chat/lobby","requestId":"r2","payload":[1,2]}`)
	a.expect(`{"event":"INVALID_MESSAGE","action":"ERROR","channelName":"ENDPOINT","requestId":"r2","payload":{"code":"INVALID_MESSAGE","message":"payload: Expected record with string keys, got object","status":500,"statusCode":500,"error":{"message":"payload: Expected record with string keys, got object","status":500}}}`, nil)
	a.send(`{"action":"BROADCAST","event":"x","channelName":"/chat/lobby","requestId":7,"payload":{}}`)
	a.expect(`{"event":"INVALID_MESSAGE","action":"ERROR","channelName":"ENDPOINT","requestId":"<uuid>","payload":{"code":"INVALID_MESSAGE","message":"requestId: Expected string, got number","status":500,"statusCode":500,"error":{"message":"requestId: Expected string, got number","status":500}}}`, nil)
	a.send(`{"action":"BROADCAST","channelName":"/chat/lobby","requestId":"r3","payload":{}}`)
	a.expect(`{"event":"INVALID_MESSAGE","action":"ERROR","channelName":"ENDPOINT","requestId":"r3","payload":{"code":"INVALID_MESSAGE","message":"event: Missing required field","status":500,"statusCode":500,"error":{"message":"event: Missing required field","status":500}}}`, nil)

	// §3.6 routing errors before joining
	a.send(`{"action":"BROADCAST","event":"x","channelName":"/chat/ghost","requestId":"g1","payload":{}}`)
	a.expect(`{"event":"INVALID_MESSAGE","action":"ERROR","channelName":"ENDPOINT","requestId":"g1","payload":{"code":"INVALID_MESSAGE","message":"Channel /chat/ghost not found","status":404,"statusCode":404,"error":{"message":"Channel /chat/ghost not found","status":404}}}`, nil)
	a.send(`{"action":"BROADCAST","event":"x","channelName":"/nope","requestId":"g2","payload":{}}`)
	a.expect(`{"event":"INVALID_MESSAGE","action":"ERROR","channelName":"ENDPOINT","requestId":"g2","payload":{"code":"INVALID_MESSAGE","message":"GatewayEngine: Channel /nope does not exist","status":404,"statusCode":404,"error":{"message":"GatewayEngine: Channel /nope does not exist","status":404}}}`, nil)
	a.send(`{"action":"LEAVE_CHANNEL","event":"LEAVE_CHANNEL","channelName":"/chat/ghost","requestId":"g3","payload":{}}`)
	a.expect(`{"event":"INVALID_MESSAGE","action":"ERROR","channelName":"ENDPOINT","requestId":"g3","payload":{"code":"INVALID_MESSAGE","message":"Channel /chat/ghost not found","status":404,"statusCode":404,"error":{"message":"Channel /chat/ghost not found","status":404}}}`, nil)

	// S7: join accepted: ACK first, then presence, then the reply
	a.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/lobby","requestId":"join-A","payload":{"username":"alice","history":true}}`)
	a.expect(`{"channelName":"/chat/lobby","requestId":"join-A","action":"SYSTEM","event":"ACKNOWLEDGE","payload":{}}`, nil)
	a.expect(`{"event":"JOIN","requestId":"<uuid>","channelName":"/chat/lobby","action":"PRESENCE","payload":{"changed":{"username":"alice","status":"online"},"presence":[{"username":"alice","status":"online"}]}}`, nil)
	a.expect(`{"action":"SYSTEM","channelName":"/chat/lobby","requestId":"join-A","payload":{"messages":["m1"],"room":"lobby","query":{}},"event":"history"}`, nil)

	// S8: duplicate join, membership kept
	a.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/lobby","requestId":"join-A-again","payload":{"username":"alice"}}`)
	a.expect(`{"event":"CHANNEL_ERROR","action":"ERROR","channelName":"/chat/lobby","requestId":"join-A-again","payload":{"code":"CHANNEL_ERROR","message":"ChannelEngine: User with id <id:A> already exists in channel /chat/lobby","status":400,"statusCode":400,"error":{"message":"ChannelEngine: User with id <id:A> already exists in channel /chat/lobby","status":400}}}`, ids)
	a.sync("/chat/lobby")

	// S10, S11 and no pattern: decision (a)
	a.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/vip","requestId":"join-vip","payload":{"username":"blocked"}}`)
	a.expect(`{"event":"UNAUTHORIZED","payload":{"code":"UNAUTHORIZED_JOIN_REQUEST","message":"You are banned","status":403,"statusCode":403,"error":{"message":"You are banned","status":403}},"channelName":"/chat/vip","action":"ERROR","requestId":"join-vip"}`, nil)
	a.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/quiet","requestId":"join-quiet","payload":{"username":"alice","silent":true}}`)
	a.expect(`{"event":"UNAUTHORIZED","payload":{"code":"UNAUTHORIZED_JOIN_REQUEST","message":"Join handler completed without accepting or declining the request","status":500,"statusCode":500,"error":{"message":"Join handler completed without accepting or declining the request","status":500}},"channelName":"/chat/quiet","action":"ERROR","requestId":"join-quiet"}`, nil)
	a.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/unknown/room","requestId":"join-unknown","payload":{}}`)
	a.expect(`{"event":"UNAUTHORIZED","action":"ERROR","channelName":"/unknown/room","requestId":"join-unknown","payload":{"code":"CHANNEL_NOT_FOUND","message":"GatewayEngine: Channel /unknown/room does not exist","status":404,"statusCode":404,"error":{"message":"GatewayEngine: Channel /unknown/room does not exist","status":404}}}`, nil)

	// S12: second user joins with announce
	b := dialRawPond(t, srv, "token=bob")
	ids["B"] = b.id
	b.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/lobby","requestId":"join-B","payload":{"username":"bob","announce":true}}`)
	b.expect(`{"channelName":"/chat/lobby","requestId":"join-B","action":"SYSTEM","event":"ACKNOWLEDGE","payload":{}}`, nil)
	b.expect(`{"event":"JOIN","requestId":"<uuid>","channelName":"/chat/lobby","action":"PRESENCE","payload":{"changed":{"username":"bob","status":"online"},"presence":[{"username":"alice","status":"online"},{"username":"bob","status":"online"}]}}`, nil)
	a.expect(`{"event":"JOIN","requestId":"<uuid>","channelName":"/chat/lobby","action":"PRESENCE","payload":{"changed":{"username":"bob","status":"online"},"presence":[{"username":"alice","status":"online"},{"username":"bob","status":"online"}]}}`, nil)
	a.expect(`{"channelName":"/chat/lobby","requestId":"join-B","action":"BROADCAST","event":"joined","payload":{"username":"bob"}}`, nil)
	b.sync("/chat/lobby") // bob did not get his own "joined"

	// S3.3 broadcast (both), S15 broadcast + reply
	a.send(`{"action":"BROADCAST","event":"message","channelName":"/chat/lobby","requestId":"msg-1","payload":{"text":"hi all"}}`)
	for _, r := range []*raw{a, b} {
		r.expect(`{"channelName":"/chat/lobby","requestId":"msg-1","action":"BROADCAST","event":"message","payload":{"text":"hi all","from":"alice"}}`, nil)
	}
	a.send(`{"action":"BROADCAST","event":"ping-and-broadcast","channelName":"/chat/lobby","requestId":"ping-2","payload":{}}`)
	a.expect(`{"channelName":"/chat/lobby","requestId":"ping-2","action":"BROADCAST","event":"noise","payload":{"n":1}}`, nil)
	a.expect(`{"channelName":"/chat/lobby","requestId":"ping-2","action":"SYSTEM","event":"pong","payload":{"receivedAt":2}}`, nil)
	b.expect(`{"channelName":"/chat/lobby","requestId":"ping-2","action":"BROADCAST","event":"noise","payload":{"n":1}}`, nil)

	// S17, S18, S19
	a.send(`{"action":"BROADCAST","event":"pass","channelName":"/chat/lobby","requestId":"evt-pass","payload":{}}`)
	a.expect(`{"channelName":"/chat/lobby","requestId":"evt-pass","action":"ERROR","event":"HANDLER_NOT_FOUND","payload":{"message":"A handler did not respond to the event","code":500}}`, nil)
	a.send(`{"action":"BROADCAST","event":"explode","channelName":"/chat/lobby","requestId":"evt-explode","payload":{}}`)
	a.expect(`{"channelName":"/chat/lobby","requestId":"evt-explode","action":"ERROR","event":"HANDLER_NOT_FOUND","payload":{"message":"bad input","code":422}}`, nil)
	a.send(`{"action":"BROADCAST","event":"message/42?draft=1","channelName":"/chat/lobby","requestId":"evt-param","payload":{}}`)
	a.expect(`{"channelName":"/chat/lobby","requestId":"evt-param","action":"SYSTEM","event":"edited","payload":{"id":"42","query":{"draft":"1"}}}`, nil)

	// S20 broadcastTo, S21 broadcastFrom
	a.send(`{"action":"BROADCAST","event":"whisper","channelName":"/chat/lobby","requestId":"whisper-1","payload":{"to":"` + b.id + `","text":"psst"}}`)
	b.expect(`{"channelName":"/chat/lobby","requestId":"whisper-1","action":"BROADCAST","event":"whisper","payload":{"text":"psst"}}`, nil)
	a.send(`{"action":"BROADCAST","event":"whisper","channelName":"/chat/lobby","requestId":"whisper-2","payload":{"to":"nobody","text":"psst"}}`)
	a.expect(`{"channelName":"/chat/lobby","requestId":"whisper-2","action":"ERROR","event":"HANDLER_NOT_FOUND","payload":{"message":"BroadcastTo: a recipient is not a member of the channel","code":400}}`, nil)
	a.send(`{"action":"BROADCAST","event":"typing","channelName":"/chat/lobby","requestId":"typing-1","payload":{}}`)
	b.expect(`{"channelName":"/chat/lobby","requestId":"typing-1","action":"BROADCAST","event":"typing","payload":{"who":"alice"}}`, nil)
	a.sync("/chat/lobby")

	// S22 presence update, decision (c)
	a.send(`{"action":"BROADCAST","event":"status","channelName":"/chat/lobby","requestId":"status-1","payload":{"status":"away"}}`)
	for _, r := range []*raw{a, b} {
		r.expect(`{"event":"UPDATE","requestId":"<uuid>","channelName":"/chat/lobby","action":"PRESENCE","payload":{"changed":{"username":"alice","status":"away"},"presence":[{"username":"alice","status":"away"},{"username":"bob","status":"online"}]}}`, nil)
	}

	// S24 outgoing hook: transform per recipient, block carol
	c := dialRawPond(t, srv, "token=carol")
	c.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/lobby","requestId":"join-C","payload":{"username":"carol","presence":false}}`)
	c.expect(`{"channelName":"/chat/lobby","requestId":"join-C","action":"SYSTEM","event":"ACKNOWLEDGE","payload":{}}`, nil)
	b.send(`{"action":"BROADCAST","event":"secret","channelName":"/chat/lobby","requestId":"secret-1","payload":{}}`)
	a.expect(`{"channelName":"/chat/lobby","requestId":"secret-1","action":"BROADCAST","event":"secret","payload":{"text":"for alice"}}`, nil)
	b.expect(`{"channelName":"/chat/lobby","requestId":"secret-1","action":"BROADCAST","event":"secret","payload":{"text":"for bob"}}`, nil)
	c.sync("/chat/lobby")

	// §3.6: a live channel carol is not in; leaving it sends nothing
	c.send(`{"action":"BROADCAST","event":"x","channelName":"/chat/other","requestId":"o1","payload":{}}`)
	c.expect(`{"event":"INVALID_MESSAGE","action":"ERROR","channelName":"ENDPOINT","requestId":"o1","payload":{"code":"INVALID_MESSAGE","message":"Channel /chat/other not found","status":404,"statusCode":404,"error":{"message":"Channel /chat/other not found","status":404}}}`, nil)
	a.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/other","requestId":"j-o","payload":{"username":"alice","presence":false}}`)
	a.expect(`{"channelName":"/chat/other","requestId":"j-o","action":"SYSTEM","event":"ACKNOWLEDGE","payload":{}}`, nil)
	c.send(`{"action":"BROADCAST","event":"message","channelName":"/chat/other","requestId":"o2","payload":{"text":"sneaky"}}`)
	c.expect(`{"event":"INVALID_MESSAGE","action":"ERROR","channelName":"ENDPOINT","requestId":"o2","payload":{"code":"INVALID_MESSAGE","message":"ChannelEngine: User with id <id:C> does not exist in channel /chat/other","status":404,"statusCode":404,"error":{"message":"ChannelEngine: User with id <id:C> does not exist in channel /chat/other","status":404}}}`, map[string]string{"C": c.id})
	c.send(`{"action":"LEAVE_CHANNEL","event":"LEAVE_CHANNEL","channelName":"/chat/other","requestId":"o3","payload":{}}`)
	c.sync("/chat/lobby")
	a.sync("/chat/other") // the sneaky message reached no one

	// S13/S14: bob leaves; alice (tracked) gets LEAVE, carol (untracked) nothing
	b.send(`{"action":"LEAVE_CHANNEL","event":"LEAVE_CHANNEL","channelName":"/chat/lobby","requestId":"leave-B","payload":{}}`)
	a.expect(`{"event":"LEAVE","requestId":"<uuid>","channelName":"/chat/lobby","action":"PRESENCE","payload":{"changed":{"username":"bob","status":"online"},"presence":[{"username":"alice","status":"away"}]}}`, nil)
	c.sync("/chat/lobby")
	b.send(`{"action":"BROADCAST","event":"message","channelName":"/chat/lobby","requestId":"late","payload":{}}`)
	b.expect(`{"event":"INVALID_MESSAGE","action":"ERROR","channelName":"ENDPOINT","requestId":"late","payload":{"code":"INVALID_MESSAGE","message":"ChannelEngine: User with id <id:B> does not exist in channel /chat/lobby","status":404,"statusCode":404,"error":{"message":"ChannelEngine: User with id <id:B> does not exist in channel /chat/lobby","status":404}}}`, ids)
}
