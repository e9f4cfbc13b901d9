package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

func joinRaw(r *raw, ch, reqID string) {
	r.t.Helper()
	r.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"` + ch + `","requestId":"` + reqID + `","payload":{"username":"u","presence":false}}`)
	r.expect(`{"channelName":"`+ch+`","requestId":"`+reqID+`","action":"SYSTEM","event":"ACKNOWLEDGE","payload":{}}`, nil)
}

// A handler that blocks for a second delays its own connection only: the
// other connection's request overtakes it, while the blocked connection's
// own next message waits its turn (order per connection).
func TestBlockingHandlerDelaysOnlyItsConnection(t *testing.T) {
	srv := startDemo(t, nil)
	a := dialRawPond(t, srv, "token=alice")
	b := dialRawPond(t, srv, "token=bob")
	joinRaw(a, "/chat/x", "ja")
	joinRaw(b, "/chat/x", "jb")
	a.send(`{"action":"BROADCAST","event":"slow","channelName":"/chat/x","requestId":"s1","payload":{}}`)
	a.send(`{"action":"BROADCAST","event":"ping","channelName":"/chat/x","requestId":"p-after-slow","payload":{}}`)
	b.send(`{"action":"BROADCAST","event":"ping","channelName":"/chat/x","requestId":"pb","payload":{}}`)

	first := make(chan string, 2)
	go func() {
		_, data, err := a.c.ReadMessage()
		if err == nil {
			first <- "a:" + string(data)
		}
	}()
	go func() {
		_, data, err := b.c.ReadMessage()
		if err == nil {
			first <- "b:" + string(data)
		}
	}()
	got := <-first
	if !strings.HasPrefix(got, "b:") || !strings.Contains(got, `"requestId":"pb"`) {
		t.Fatalf("first answer %q: bob's ping should overtake alice's blocked handler", got)
	}
	got = <-first
	if !strings.Contains(got, `"event":"slow-done"`) {
		t.Fatalf("alice's next answer %q, want slow-done before her own later ping", got)
	}
	a.expect(`{"channelName":"/chat/x","requestId":"p-after-slow","action":"SYSTEM","event":"pong","payload":{"receivedAt":1}}`, nil)
}

func TestOversizedMessages(t *testing.T) {
	srv := startDemo(t, func(o *pondsocket.Options) { o.MaxMessageSize = 1024 })
	a := dialRawPond(t, srv, "token=alice")
	b := dialRawPond(t, srv, "token=bob")
	joinRaw(a, "/chat/x", "ja")
	joinRaw(b, "/chat/x", "jb")
	big := `{"action":"BROADCAST","event":"message","channelName":"/chat/x","requestId":"big","payload":{"text":"` + strings.Repeat("x", 2000) + `"}}`
	a.send(big)
	msg := fmt.Sprintf("Message size %d exceeds maximum allowed size of 1024 bytes", len(big))
	a.expect(`{"event":"INVALID_MESSAGE","action":"ERROR","channelName":"ENDPOINT","requestId":"<uuid>","payload":{"code":"INVALID_MESSAGE","message":"`+msg+`","status":413,"statusCode":413,"error":{"message":"`+msg+`","status":413}}}`, nil)
	a.sync("/chat/x") // the connection stays open
	b.sync("/chat/x") // and nobody got the oversized broadcast
	// far beyond the limit the frame is refused before it is read: 1009
	huge := strings.Repeat("y", 200<<10)
	if err := a.c.WriteMessage(websocket.TextMessage, []byte(huge)); err != nil {
		t.Fatal(err)
	}
	_ = a.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, _, err := a.c.ReadMessage()
	if ce, ok := err.(*websocket.CloseError); !ok || ce.Code != 1009 {
		t.Fatalf("huge frame: %v, want close 1009", err)
	}
	b.sync("/chat/x")
}

func TestChannelsPerConnectionLimit(t *testing.T) {
	// The 1 200 joins are sent at once: the receive queue (1 024 messages
	// by default) must hold them all when the handlers fall behind on a
	// loaded machine, or some get the queue's 429 instead of the limit's.
	srv := startDemo(t, func(o *pondsocket.Options) {
		o.State.MaxChannelsPerConnection = 1000
		o.Inbound.JoinRate = -1
		o.ReceiveChannelBuffer = 4096
	})
	a := dialRawPond(t, srv, "token=alice")
	const n = 1200
	for i := 0; i < n; i++ {
		a.send(fmt.Sprintf(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/c%d","requestId":"j%d","payload":{"username":"a","presence":false}}`, i, i))
	}
	acks, refused := 0, 0
	for i := 0; i < n; i++ {
		m := a.next()
		switch {
		case m["event"] == "ACKNOWLEDGE":
			acks++
		case m["event"] == "UNAUTHORIZED" && m["payload"].(map[string]any)["status"] == float64(429):
			refused++
		default:
			t.Fatalf("unexpected %v", m)
		}
	}
	if acks != 1000 || refused != 200 {
		t.Fatalf("acks %d refused %d, want 1000 and 200", acks, refused)
	}
	if got := srv.Stats().Channels; got != 1000 {
		t.Fatalf("live channels %d", got)
	}
	a.sync("/chat/c999")
	// closing the connection removes it from every channel
	a.c.Close()
	testenv.Eventually(t, 5*time.Second, "no channel left after disconnect", func() bool { return srv.Stats().Channels == 0 })
}

func TestMessageRateLimit(t *testing.T) {
	srv := startDemo(t, func(o *pondsocket.Options) { o.Inbound.MessageRate = 5; o.Inbound.MessageBurst = 10 })
	a := dialRawPond(t, srv, "token=alice")
	b := dialRawPond(t, srv, "token=bob")
	joinRaw(a, "/chat/x", "ja")
	joinRaw(b, "/chat/x", "jb")
	const n = 40
	for i := 0; i < n; i++ {
		a.send(fmt.Sprintf(`{"action":"BROADCAST","event":"typing","channelName":"/chat/x","requestId":"t%d","payload":{}}`, i))
	}
	limited := 0
	for {
		if limited == n-10 {
			break
		}
		m := a.next()
		if m["event"] != "HANDLER_NOT_FOUND" || m["payload"].(map[string]any)["code"] != float64(429) {
			t.Fatalf("unexpected %v", m)
		}
		limited++
	}
	// bob got exactly the burst, and is not limited himself
	for i := 0; i < 10; i++ {
		b.expect(fmt.Sprintf(`{"channelName":"/chat/x","requestId":"t%d","action":"BROADCAST","event":"typing","payload":{"who":"u"}}`, i), nil)
	}
	b.sync("/chat/x")
	if srv.Stats().RateLimited < int64(n-10) {
		t.Fatalf("rate limited counter %d", srv.Stats().RateLimited)
	}
}

func TestJoinFlood(t *testing.T) {
	srv := startDemo(t, func(o *pondsocket.Options) { o.Inbound.JoinRate = 2; o.Inbound.JoinBurst = 5 })
	a := dialRawPond(t, srv, "token=alice")
	for i := 0; i < 50; i++ {
		a.send(fmt.Sprintf(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/f%d","requestId":"j%d","payload":{"username":"a"}}`, i, i))
	}
	acks, refused := 0, 0
	for acks+refused < 50 {
		m := a.next()
		switch m["event"] {
		case "ACKNOWLEDGE":
			acks++
		case "UNAUTHORIZED":
			if m["payload"].(map[string]any)["status"] != float64(429) {
				t.Fatalf("refusal %v", m)
			}
			refused++
		case "JOIN": // presence of the accepted joins
		default:
			t.Fatalf("unexpected %v", m)
		}
	}
	if acks < 5 || acks > 7 || refused != 50-acks {
		t.Fatalf("acks %d refused %d", acks, refused)
	}
}

func TestReceiveQueueBound(t *testing.T) {
	srv := startDemo(t, func(o *pondsocket.Options) { o.ReceiveChannelBuffer = 3 })
	a := dialRawPond(t, srv, "token=alice")
	joinRaw(a, "/chat/x", "ja")
	// the first "slow" blocks the worker for 1s; the queue holds 3 more;
	// the rest are refused at once
	for i := 0; i < 10; i++ {
		a.send(fmt.Sprintf(`{"action":"BROADCAST","event":"slow","channelName":"/chat/x","requestId":"s%d","payload":{}}`, i))
	}
	refused := 0
	for refused < 6 {
		m := a.next()
		if m["event"] == "HANDLER_NOT_FOUND" && m["payload"].(map[string]any)["code"] == float64(429) {
			refused++
			continue
		}
		t.Fatalf("before the slow handlers finish, only refusals are expected: %v", m)
	}
}
