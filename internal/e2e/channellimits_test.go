package e2e

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// endpointError expects the protocol's INVALID_MESSAGE error on ENDPOINT
// with status and requestId (empty: a fresh uuid) and returns its message.
func endpointError(r *raw, status int, reqID string) string {
	r.t.Helper()
	m := r.next()
	p := m["payload"].(map[string]any)
	if m["event"] != "INVALID_MESSAGE" || m["channelName"] != "ENDPOINT" || p["status"] != float64(status) {
		r.t.Fatalf("want INVALID_MESSAGE %d, got %v", status, m)
	}
	if reqID == "" && !uuidRE.MatchString(m["requestId"].(string)) || reqID != "" && m["requestId"] != reqID {
		r.t.Fatalf("requestId %v, want %q", m["requestId"], reqID)
	}
	return p["message"].(string)
}

// Issue 10 point 3: channel names, event names and requestIds have length
// limits answered with 413 INVALID_MESSAGE, and a client sending 1 MB
// names costs the server nothing it keeps.
func TestNameLengthLimits(t *testing.T) {
	srv := startDemo(t, nil)
	a := dialRawPond(t, srv, "token=alice")
	by := dialRawPond(t, srv, "token=bob")
	joinRaw(by, "/chat/x", "jb")

	long := "/chat/" + strings.Repeat("n", 1100)
	a.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"` + long + `","requestId":"j1","payload":{}}`)
	if msg := endpointError(a, 413, "j1"); msg != "channelName is 1106 bytes, more than the limit of 1024" {
		t.Fatalf("message %q", msg)
	}
	joinRaw(a, "/chat/x", "ja")
	a.send(`{"action":"BROADCAST","event":"` + strings.Repeat("e", 1025) + `","channelName":"/chat/x","requestId":"e1","payload":{}}`)
	endpointError(a, 413, "e1")
	// a long requestId is not echoed
	a.send(`{"action":"BROADCAST","event":"ping","channelName":"/chat/x","requestId":"` + strings.Repeat("r", 300) + `","payload":{}}`)
	endpointError(a, 413, "")

	// the attack of the issue, scaled down: 1 MB names, many joins
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	huge := "/chat/" + strings.Repeat("h", 1<<20-200)
	for i := 0; i < 40; i++ {
		a.send(fmt.Sprintf(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"%s%d","requestId":"h%d","payload":{}}`, huge, i, i))
	}
	for i := 0; i < 40; i++ {
		endpointError(a, 413, fmt.Sprintf("h%d", i))
	}
	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 64<<20 {
		t.Fatalf("heap grew by %d MB for refused joins", grown>>20)
	}
	a.sync("/chat/x")
	by.sync("/chat/x")
	if got := srv.Stats().Channels; got != 1 {
		t.Fatalf("live channels %d, want 1", got)
	}
}

// Issue 10 point 3: the bytes of channel state one connection holds are
// bounded; joins beyond get 429 while another connection joins freely.
func TestConnectionStateBudget(t *testing.T) {
	srv := startDemo(t, func(o *pondsocket.Options) {
		o.State.MaxPerConnectionBytes = 64 << 10
		o.Inbound.JoinRate = -1
	})
	a := dialRawPond(t, srv, "token=alice")
	name := strings.Repeat("n", 1000)
	acks, refused := 0, 0
	for i := 0; i < 100; i++ {
		a.send(fmt.Sprintf(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/%s%d","requestId":"j%d","payload":{"username":"a"}}`, name, i, i))
	}
	for acks+refused < 100 {
		m := a.next()
		switch m["event"] {
		case "ACKNOWLEDGE":
			acks++
		case "UNAUTHORIZED":
			p := m["payload"].(map[string]any)
			if p["status"] != float64(429) || p["code"] != "CHANNEL_ERROR" {
				t.Fatalf("refusal %v", m)
			}
			refused++
		case "JOIN":
		default:
			t.Fatalf("unexpected %v", m)
		}
	}
	// each membership holds ~1 KB of name and ~35 bytes of presence
	if acks < 50 || acks > 64 || refused != 100-acks {
		t.Fatalf("acks %d refused %d", acks, refused)
	}
	if sb := srv.Stats().StateBytes; sb > 64<<10 || sb < 50_000 {
		t.Fatalf("state bytes %d", sb)
	}
	b := dialRawPond(t, srv, "token=bob")
	joinRaw(b, "/chat/"+name+"0", "jb")
	b.sync("/chat/" + name + "0")
	// leaving gives the bytes back
	a.send(`{"action":"LEAVE_CHANNEL","event":"LEAVE_CHANNEL","channelName":"/chat/` + name + `1","requestId":"l","payload":{}}`)
	a.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/again","requestId":"again","payload":{"username":"a"}}`)
	for {
		m := a.next()
		if m["requestId"] == "again" {
			if m["event"] != "ACKNOWLEDGE" {
				t.Fatalf("join after leave %v", m)
			}
			break
		}
	}
	a.c.Close()
	testenv.Eventually(t, 5*time.Second, "after disconnect: one channel, state bytes at most 2000", func() bool {
		st := srv.Stats()
		return st.Channels == 1 && st.StateBytes <= 2000
	})
}

// Issue 10 point 4: members joining with a 900 KB username (assigns and
// presence) are refused with 413 and the other members are not cut.
func TestHugePresenceIsRefused(t *testing.T) {
	srv := startDemo(t, nil)
	by := dialRawPond(t, srv, "token=bob")
	joinRaw(by, "/chat/room", "jb")
	big := strings.Repeat("u", 900<<10)
	for i := 0; i < 5; i++ {
		a := dialRawPond(t, srv, fmt.Sprintf("token=attacker%d", i))
		a.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/room","requestId":"j","payload":{"username":"` + big + `"}}`)
		a.expect(`{"event":"UNAUTHORIZED","action":"ERROR","channelName":"/chat/room","requestId":"j","payload":{"code":"CHANNEL_ERROR","message":"Assigns exceed the size limit","status":413,"statusCode":413,"error":{"message":"Assigns exceed the size limit","status":413}}}`, nil)
	}
	by.sync("/chat/room")

	// a member's presence update over 8 KiB, assigns over 64 KiB: 413 to
	// the sender, nothing to the others
	m := dialRawPond(t, srv, "token=mallory")
	joinRaw(m, "/chat/room", "jm")
	m.send(`{"action":"BROADCAST","event":"status","channelName":"/chat/room","requestId":"s","payload":{"status":"` + strings.Repeat("s", 9<<10) + `"}}`)
	m.expect(`{"channelName":"/chat/room","requestId":"s","action":"ERROR","event":"HANDLER_NOT_FOUND","payload":{"message":"Presence exceeds the size limit","code":413}}`, nil)
	m.send(`{"action":"BROADCAST","event":"rename","channelName":"/chat/room","requestId":"r","payload":{"username":"` + strings.Repeat("s", 65<<10) + `"}}`)
	if r := m.next(); r["event"] != "renamed" { // the demo replies whatever happened
		t.Fatalf("want the demo's reply first, got %v", r["event"])
	}
	m.expect(`{"channelName":"/chat/room","requestId":"r","action":"ERROR","event":"HANDLER_NOT_FOUND","payload":{"message":"Assigns exceed the size limit","code":413}}`, nil)
	by.sync("/chat/room")
	m.sync("/chat/room")
}

// Issue 10 point 4: server code setting presence or assigns beyond the
// limits gets typed errors.
func TestPresenceLimitsTypedErrors(t *testing.T) {
	var ep *pondsocket.Endpoint
	srv, _ := startApp(t, nil, func(srv *pondsocket.Server) {
		ep = srv.CreateEndpoint("/api/socket", func(ctx *pondsocket.ConnectionContext) error {
			if ctx.Route.Query.Get("big") == "1" {
				ctx.SetAssigns("blob", strings.Repeat("b", 70<<10))
			}
			return ctx.Accept()
		})
		ch := ep.CreateChannel("/room/:id", func(ctx *pondsocket.JoinContext) error { return ctx.Accept().Err() })
		ch.OnEvent("ping", func(ctx *pondsocket.EventContext) error { return ctx.Reply("pong", map[string]any{}).Err() })
	})
	status, body := dialStatus(t, srv, "big=1")
	if status != 413 || body != "Assigns exceed the size limit" {
		t.Fatalf("connection with big assigns: %d %q", status, body)
	}
	a := dialRawPond(t, srv, "x=1")
	joinRawAck(a, "/room/1", "j")
	ch, ok := ep.Channel("/room/1")
	if !ok {
		t.Fatal("no channel")
	}
	if err := ch.UpdatePresence(a.id, map[string]any{"s": strings.Repeat("p", 9<<10)}); !errors.Is(err, pondsocket.ErrPresenceTooLarge) {
		t.Fatalf("UpdatePresence: %v", err)
	}
	if err := ch.UpdateAssigns(a.id, "k", strings.Repeat("a", 65<<10)); !errors.Is(err, pondsocket.ErrAssignsTooLarge) {
		t.Fatalf("UpdateAssigns: %v", err)
	}
	if err := ch.UpdatePresence(a.id, map[string]any{"s": "ok"}); err != nil {
		t.Fatal(err)
	}
	a.expect(`{"action":"PRESENCE","event":"JOIN","channelName":"/room/1","requestId":"<uuid>","payload":{"changed":{"s":"ok"},"presence":[{"s":"ok"}]}}`, nil)
	bystanderPing(a, "/room/1")
}

// Issue 10 point 4 (channel part): a connection that is closing leaves its
// channels at once — before its queued handler calls ran — and cannot
// rejoin meanwhile.
func TestClosingConnectionLeavesAtOnce(t *testing.T) {
	release, started := make(chan struct{}), make(chan struct{}, 1)
	var ep *pondsocket.Endpoint
	srv, _ := startApp(t, nil, func(srv *pondsocket.Server) {
		ep = srv.CreateEndpoint("/api/socket", func(ctx *pondsocket.ConnectionContext) error { return ctx.Accept() })
		ch := ep.CreateChannel("/room/:id", func(ctx *pondsocket.JoinContext) error {
			return ctx.Accept().Track(map[string]any{"id": ctx.User().UserID}).Err()
		})
		ch.OnEvent("block", func(ctx *pondsocket.EventContext) error { started <- struct{}{}; <-release; return nil })
		ch.OnEvent("ping", func(ctx *pondsocket.EventContext) error { return ctx.Reply("pong", map[string]any{}).Err() })
	})
	defer close(release)
	by := dialRawPond(t, srv, "x=by")
	joinRawAck(by, "/room/1", "jb")
	by.next() // presence JOIN (bystander)
	a := dialRawPond(t, srv, "x=a")
	joinRawAck(a, "/room/1", "ja")
	by.next() // presence JOIN (a)
	// a's handler blocks; a join for another room waits behind it
	a.send(`{"action":"BROADCAST","event":"block","channelName":"/room/1","requestId":"b","payload":{}}`)
	<-started
	a.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/room/2","requestId":"j2","payload":{}}`)
	a.c.Close()
	// the bystander sees a leave although a's handler is still blocked
	m := by.next()
	if m["action"] != "PRESENCE" || m["event"] != "LEAVE" {
		t.Fatalf("want presence LEAVE, got %v", m)
	}
	if users := mustChannel(t, ep, "/room/1").Users(); len(users) != 1 || users[0] != by.id {
		t.Fatalf("members %v", users)
	}
	release <- struct{}{} // the blocked handler returns; the queued join runs
	bystanderPing(by, "/room/1")
	testenv.Eventually(t, 5*time.Second, "one connection left", func() bool { return srv.Stats().Connections == 1 })
	if _, ok := ep.Channel("/room/2"); ok || srv.Stats().Channels != 1 {
		t.Fatalf("the closed connection joined /room/2 (channels %d)", srv.Stats().Channels)
	}
}

func mustChannel(t *testing.T, ep *pondsocket.Endpoint, name string) *pondsocket.Channel {
	t.Helper()
	ch, ok := ep.Channel(name)
	if !ok {
		t.Fatalf("no channel %s", name)
	}
	return ch
}

// Issue 10 point 11: the channels gauge returns to 0 after churn, in
// which instances die and are replaced while others join them.
func TestChannelsGaugeAfterChurn(t *testing.T) {
	srv := startDemo(t, func(o *pondsocket.Options) { o.Inbound.JoinRate = -1 })
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		a := dialRawPond(t, srv, fmt.Sprintf("token=w%d", w))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 150; i++ {
				ch := fmt.Sprintf("/chat/churn%d", i%3)
				a.c.WriteMessage(websocket.TextMessage, []byte(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"`+ch+`","requestId":"j","payload":{"presence":false}}`))
				a.c.WriteMessage(websocket.TextMessage, []byte(`{"action":"LEAVE_CHANNEL","event":"LEAVE_CHANNEL","channelName":"`+ch+`","requestId":"l","payload":{}}`))
			}
			a.c.WriteMessage(websocket.TextMessage, []byte(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/end","requestId":"end","payload":{"presence":false}}`))
			for {
				_ = a.c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, data, err := a.c.ReadMessage()
				if err != nil {
					t.Error(err)
					return
				}
				if strings.Contains(string(data), `"requestId":"end"`) {
					break
				}
			}
			a.c.Close()
		}()
	}
	wg.Wait()
	testenv.Eventually(t, 5*time.Second, "after churn: channels gauge and connections at 0", func() bool {
		st := srv.Stats()
		return st.Channels == 0 && st.Connections == 0
	})
}

// Issue 10 point 10: one member spamming presence updates in a room of 300
// is rate limited (429), and the bytes the server pushes per byte the
// spammer sends stay bounded; the members are not cut.
func TestPresenceSpamAmplification(t *testing.T) {
	const members = 300
	srv := startDemo(t, func(o *pondsocket.Options) { o.Inbound.JoinRate = -1 })
	var received, maxSeen atomic.Int64
	var full sync.WaitGroup
	full.Add(members)
	conns := make([]*websocket.Conn, members)
	for i := range conns {
		c, _, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/api/socket?token=m%d", srv.Addr(), i), nil)
		if err != nil {
			t.Fatal(err)
		}
		conns[i] = c
		t.Cleanup(func() { c.Close() })
		go func() {
			seen := false
			for {
				_, data, err := c.ReadMessage()
				if err != nil {
					if !seen {
						full.Done()
					}
					return
				}
				received.Add(int64(len(data)))
				for _, line := range strings.Split(string(data), "\n") {
					if n := int64(strings.Count(line, `"status":"online"`)); n > maxSeen.Load() {
						maxSeen.Store(n)
					}
					if !seen && strings.Count(line, `"status":"online"`) >= members {
						seen = true
						full.Done()
					}
				}
			}
		}()
		c.WriteMessage(websocket.TextMessage, []byte(fmt.Sprintf(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/chat/big","requestId":"j","payload":{"username":"member-%03d"}}`, i)))
	}
	done := make(chan struct{})
	go func() { full.Wait(); close(done) }()
	select {
	case <-done: // every member has seen the full list
	case <-time.After(20 * time.Second):
		t.Fatalf("not every member saw the full list; max seen %d", maxSeen.Load())
	}
	spammer := dialRawPond(t, srv, "token=spammer")
	joinRaw(spammer, "/chat/big", "js")
	go func() { // the spammer's own traffic is not what we measure
		for {
			if _, _, err := spammer.c.ReadMessage(); err != nil {
				return
			}
		}
	}()

	before := srv.Stats().BytesOut
	var sent int64
	start := time.Now()
	for i := 0; time.Since(start) < 2*time.Second && i < 3000; i++ {
		msg := fmt.Sprintf(`{"action":"BROADCAST","event":"status","channelName":"/chat/big","requestId":"s%d","payload":{"status":"s%d"}}`, i, i)
		sent += int64(len(msg))
		if err := spammer.c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond) // pacing, about the rate of the spammer
	}
	out := srv.Stats().BytesOut - before
	ratio := float64(out) / float64(sent)
	t.Logf("spammer sent %d bytes, server pushed %d bytes: %.1f×; rate limited %d", sent, out, ratio, srv.Stats().RateLimited)
	if ratio > 100 {
		t.Fatalf("amplification %.1f×", ratio)
	}
	if st := srv.Stats(); st.SlowConsumers != 0 {
		t.Fatalf("%d members cut as slow consumers", st.SlowConsumers)
	}
	if srv.Stats().RateLimited == 0 {
		t.Fatal("no presence change was rate limited")
	}
}
