package client_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/client"
)

func ctxWait(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return ctx
}

func TestConnectGivesTheConnectionID(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", newApp())
	c := dial(t, srv, "alice")
	if c.State() != client.StateConnected || len(c.ID()) != 36 {
		t.Fatalf("state %v id %q", c.State(), c.ID())
	}
	room, _ := join(t, c, "/chat/id", "alice")
	reply, err := room.SendForResponse(ctxWait(t), "whoami", nil)
	if err != nil {
		t.Fatal(err)
	}
	var who struct{ ID string }
	if err := reply.Decode(&who); err != nil || who.ID != c.ID() {
		t.Fatalf("server sees %q (%v), client has %q", who.ID, err, c.ID())
	}
	if !strings.Contains(c.URL(), "token=alice") {
		t.Fatalf("params not in the query: %s", c.URL())
	}
}

func TestDeclinedUpgradeIsAHandshakeError(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", newApp())
	start := time.Now()
	_, err := client.Dial(ctxWait(t), "http://"+srv.Addr().String()+"/api/socket", fast(map[string]string{"token": "bad"}))
	var he *client.HandshakeError
	if !errors.As(err, &he) || he.StatusCode != 401 || he.Message != "Invalid token" {
		t.Fatalf("want HandshakeError 401 Invalid token, got %v", err)
	}
	var ce *client.ConnectError
	if !errors.As(err, &ce) || ce.Attempts != 1 {
		t.Fatalf("a permanent refusal is not retried: %#v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("Dial took %v for a refusal", time.Since(start))
	}
}

func TestJoinAcceptedAndDeclined(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", newApp())
	c := dial(t, srv, "alice")

	ok, _ := join(t, c, "/chat/lobby", "alice")
	if ok.State() != client.ChannelJoined {
		t.Fatalf("state %v", ok.State())
	}

	var states []client.ChannelState
	banned := c.Channel("/chat/vip", map[string]any{"username": "blocked"})
	stateSeen := make(chan client.ChannelState, 10)
	banned.OnStateChange(func(s client.ChannelState, _ error) { stateSeen <- s })
	err := banned.Join(ctxWait(t))
	var se *client.ServerError
	if !errors.As(err, &se) || se.Status != 403 || se.Message != "You are banned" || se.Code != "UNAUTHORIZED_JOIN_REQUEST" {
		t.Fatalf("want ServerError 403 You are banned, got %#v", err)
	}
	if !errors.Is(err, &client.ServerError{Status: 403}) || errors.Is(err, &client.ServerError{Status: 404}) {
		t.Fatal("errors.Is on ServerError status")
	}
	if banned.State() != client.ChannelDeclined || banned.Err() != err {
		t.Fatalf("declined channel: %v %v", banned.State(), banned.Err())
	}
	for len(states) < 2 {
		select {
		case s := <-stateSeen:
			states = append(states, s)
		case <-time.After(wait):
			t.Fatalf("state changes %v", states)
		}
	}
	if !slices.Equal(states, []client.ChannelState{client.ChannelJoining, client.ChannelDeclined}) {
		t.Fatalf("state changes %v", states)
	}
	if err := banned.Send("message", nil); !errors.Is(err, client.ErrNotJoined) {
		t.Fatalf("send on a declined channel: %v", err)
	}

	// no channel pattern
	err = c.Channel("/nope", nil).Join(ctxWait(t))
	if !errors.As(err, &se) || se.Status != 404 || se.Code != "CHANNEL_NOT_FOUND" {
		t.Fatalf("unknown channel: %#v", err)
	}
	// the accepted channel is unaffected
	if _, err := ok.SendForResponse(ctxWait(t), "ping", nil); err != nil {
		t.Fatal(err)
	}
}

func TestBroadcastFromAndTo(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", newApp())
	a, b := dial(t, srv, "alice"), dial(t, srv, "bob")
	const room = "/chat/b"
	ra, ina := join(t, a, room, "alice")
	rb, inb := join(t, b, room, "bob")

	// broadcast reaches everyone, the sender included
	if err := ra.Send("message", map[string]any{"text": "hi all"}); err != nil {
		t.Fatal(err)
	}
	for _, in := range []*inbox{ina, inb} {
		m, _ := in.message("message")
		var p struct{ Text, From string }
		if m.Decode(&p); p.Text != "hi all" || p.From != "alice" || m.Action != "BROADCAST" {
			t.Fatalf("broadcast %+v %s", m, m.Payload)
		}
	}

	// broadcastFrom: bob gets typing, alice does not (the server keeps
	// order per connection, so alice's pong comes after any typing)
	if err := ra.Send("typing", nil); err != nil {
		t.Fatal(err)
	}
	if m, _ := inb.message("typing"); !strings.Contains(string(m.Payload), "alice") {
		t.Fatalf("typing %s", m.Payload)
	}
	noneBefore(t, ra, ina, "typing")

	// broadcastTo: only bob
	if err := ra.Send("whisper", map[string]any{"to": b.ID(), "text": "psst"}); err != nil {
		t.Fatal(err)
	}
	if m, _ := inb.message("whisper"); !strings.Contains(string(m.Payload), "psst") {
		t.Fatalf("whisper %s", m.Payload)
	}
	noneBefore(t, ra, ina, "whisper")

	// On(event) sees only its event, and unsubscribing stops it
	got := make(chan client.Message, 10)
	unsub := rb.On("message", func(m client.Message) { got <- m })
	ra.Send("typing", nil)
	ra.Send("message", map[string]any{"text": "two"})
	select {
	case m := <-got:
		if m.Event != "message" {
			t.Fatalf("On(message) got %s", m.Event)
		}
	case <-time.After(wait):
		t.Fatal("On(message) saw nothing")
	}
	unsub()
	inb.message("message")
	ra.Send("message", map[string]any{"text": "three"})
	inb.message("message")
	select {
	case m := <-got:
		t.Fatalf("unsubscribed handler got %s", m.Payload)
	default:
	}
}

// noneBefore asserts that no event message reached in before the answer
// to a ping sent now.
func noneBefore(t *testing.T, ch *client.Channel, in *inbox, event string) {
	t.Helper()
	if _, err := ch.SendForResponse(ctxWait(t), "ping", nil); err != nil {
		t.Fatal(err)
	}
	_, before := in.message("pong")
	for _, m := range before {
		if m.Event == event {
			t.Fatalf("unexpected %s: %s", event, m.Payload)
		}
	}
}

func TestSendForResponse(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", newApp())
	c := dial(t, srv, "alice")
	room, _ := join(t, c, "/chat/rr", "alice")

	reply, err := room.SendForResponse(ctxWait(t), "ping", nil)
	if err != nil || reply.Event != "pong" || reply.Action != "SYSTEM" || string(reply.Payload) != `{"ok":true}` {
		t.Fatalf("reply %+v %s %v", reply, reply.Payload, err)
	}

	// an error answer is a ServerError, with the message
	reply, err = room.SendForResponse(ctxWait(t), "explode", nil)
	var se *client.ServerError
	if !errors.As(err, &se) || se.Status != 422 || se.Message != "bad input" || reply.Event != "HANDLER_NOT_FOUND" {
		t.Fatalf("explode: %+v %v", reply, err)
	}
	_, err = room.SendForResponse(ctxWait(t), "no-such-event", nil)
	if !errors.As(err, &se) || se.Event != "HANDLER_NOT_FOUND" {
		t.Fatalf("no handler: %v", err)
	}

	// the timeout comes from the context
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = room.SendForResponse(ctx, "hang", nil)
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 3*time.Second {
		t.Fatalf("hang: %v after %v", err, time.Since(start))
	}

	// payloads must be objects
	if err := room.Send("message", []int{1}); err == nil {
		t.Fatal("an array payload was accepted")
	}
}

func TestPresenceAndLeave(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", newApp())
	a, b := dial(t, srv, "alice"), dial(t, srv, "bob")
	const room = "/chat/p"
	ra := a.Channel(room, map[string]any{"username": "alice"})
	joins := make(chan client.PresenceEvent, 10)
	leaves := make(chan client.PresenceEvent, 10)
	updates := make(chan client.PresenceEvent, 10)
	ra.OnJoin(func(p client.PresenceEvent) { joins <- p })
	ra.OnLeave(func(p client.PresenceEvent) { leaves <- p })
	ra.OnUpdate(func(p client.PresenceEvent) { updates <- p })
	if err := ra.Join(ctxWait(t)); err != nil {
		t.Fatal(err)
	}
	if p := next(t, joins); p.Changed["username"] != "alice" || len(p.Presence) != 1 {
		t.Fatalf("own join %+v", p)
	}

	rb, inb := join(t, b, room, "bob")
	p := next(t, joins)
	if p.Changed["username"] != "bob" || !slices.Equal(names(p.Presence), []string{"alice", "bob"}) {
		t.Fatalf("join event %+v", p)
	}
	if pb := inb.presence(client.PresenceJoin, "bob"); len(pb.Presence) != 2 {
		t.Fatalf("bob's own join %+v", pb)
	}

	if err := rb.Send("status", map[string]any{"status": "away"}); err != nil {
		t.Fatal(err)
	}
	p = next(t, updates)
	if p.Changed["status"] != "away" || p.Presence[1]["status"] != "away" || len(p.Presence) != 2 {
		t.Fatalf("update %+v", p)
	}
	if got := ra.Presence(); len(got) != 2 || got[1]["status"] != "away" {
		t.Fatalf("Presence() %v", got)
	}

	if err := rb.Leave(); err != nil {
		t.Fatal(err)
	}
	if rb.State() != client.ChannelClosed {
		t.Fatalf("after leave %v", rb.State())
	}
	if err := rb.Send("message", nil); !errors.Is(err, client.ErrNotJoined) {
		t.Fatalf("send after leave: %v", err)
	}
	p = next(t, leaves)
	if p.Changed["username"] != "bob" || !slices.Equal(names(p.Presence), []string{"alice"}) {
		t.Fatalf("leave %+v", p)
	}
	if got := names(ra.Presence()); !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("Presence() after leave %v", got)
	}
	// a left channel can be joined again
	if err := rb.Join(ctxWait(t)); err != nil || rb.State() != client.ChannelJoined {
		t.Fatalf("rejoin after leave: %v %v", err, rb.State())
	}
	if p := next(t, joins); p.Changed["username"] != "bob" {
		t.Fatalf("second join %+v", p)
	}
}

func next[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(wait):
		t.Fatal("nothing arrived")
	}
	var zero T
	return zero
}

func TestEviction(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", newApp())
	a, b := dial(t, srv, "alice"), dial(t, srv, "bob")
	const room = "/chat/ev"
	ra, ina := join(t, a, room, "alice")
	rb, inb := join(t, b, room, "bob")
	ina.presence(client.PresenceJoin, "bob")

	closed := make(chan error, 1)
	rb.OnStateChange(func(s client.ChannelState, err error) {
		if s == client.ChannelClosed {
			closed <- err
		}
	})
	if err := ra.Send("kick", map[string]any{"userId": b.ID()}); err != nil {
		t.Fatal(err)
	}
	if m, _ := inb.message("kicked_out"); !strings.Contains(string(m.Payload), "spamming") {
		t.Fatalf("kicked_out %s", m.Payload)
	}
	err := next(t, closed)
	var se *client.ServerError
	if !errors.As(err, &se) || se.Event != "kicked_out" || se.Status != 403 || se.Message != "spamming" {
		t.Fatalf("eviction error %#v", err)
	}
	if rb.State() != client.ChannelClosed || rb.Err() != err {
		t.Fatalf("evicted channel %v %v", rb.State(), rb.Err())
	}
	if err := rb.Send("message", nil); !errors.Is(err, client.ErrNotJoined) || !errors.As(err, &se) {
		t.Fatalf("send after eviction: %v", err)
	}
	if m, _ := ina.message("kicked"); !strings.Contains(string(m.Payload), b.ID()) {
		t.Fatalf("kicked %s", m.Payload)
	}
	ina.presence(client.PresenceLeave, "bob")
	if got := names(ra.Presence()); !slices.Equal(got, []string{"alice"}) {
		t.Fatalf("presence after eviction %v", got)
	}
}

func TestServerRestartReconnectsAndRejoins(t *testing.T) {
	app := newApp()
	srv := startServer(t, "127.0.0.1:0", app)
	addr := srv.Addr().String()
	disconnects := make(chan error, 10)
	connects := make(chan string, 10)
	opts := fast(map[string]string{"token": "alice"})
	opts.OnDisconnect = func(err error) { disconnects <- err }
	opts.OnConnect = func(id string) { connects <- id }
	c := dialOpts(t, srv, opts)
	firstID := next(t, connects)
	room, in := join(t, c, "/chat/restart", "alice")
	in.presence(client.PresenceJoin, "alice")
	stalled := make(chan struct{}, 10)
	room.OnStateChange(func(s client.ChannelState, _ error) {
		if s == client.ChannelStalled {
			stalled <- struct{}{}
		}
	})

	if err := srv.Stop(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	err := next(t, disconnects)
	if !errors.Is(err, &client.CloseError{Code: client.CloseGoingAway}) {
		t.Fatalf("disconnect cause %v", err)
	}
	var ce *client.CloseError
	if !errors.As(err, &ce) || ce.Reason != "Server shutting down" {
		t.Fatalf("close reason %#v", err)
	}
	next(t, stalled)
	// sent while the server is down: queued, delivered after the rejoin
	if err := room.Send("message", map[string]any{"text": "while away"}); err != nil {
		t.Fatal(err)
	}

	startServer(t, addr, app)
	secondID := next(t, connects)
	if secondID == firstID || secondID == "" {
		t.Fatalf("ids %q then %q", firstID, secondID)
	}
	if err := room.Join(ctxWait(t)); err != nil || room.State() != client.ChannelJoined {
		t.Fatalf("rejoin: %v %v", err, room.State())
	}
	// the rejoin is a new member: presence again, then the queued message
	if p := in.presence(client.PresenceJoin, "alice"); len(p.Presence) != 1 {
		t.Fatalf("presence after the rejoin %+v", p)
	}
	if m, _ := in.message("message"); !strings.Contains(string(m.Payload), "while away") {
		t.Fatalf("queued message %s", m.Payload)
	}
	if _, err := room.SendForResponse(ctxWait(t), "ping", nil); err != nil {
		t.Fatal(err)
	}
}

func TestQueueBoundedInMessagesAndBytes(t *testing.T) {
	srv := startServer(t, "127.0.0.1:0", newApp())
	opts := fast(map[string]string{"token": "alice"})
	opts.MaxQueuedMessages = 5
	opts.MaxQueuedBytes = 2000
	c, err := client.New("ws://"+srv.Addr().String()+"/api/socket", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	room := c.Channel("/chat/q", map[string]any{"username": "alice"})
	in := record(t, room)
	// joining before Connect: the join waits for the connection and the
	// messages wait for the join
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	if err := room.Join(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("join before connect: %v", err)
	}
	cancel()
	if room.State() != client.ChannelJoining {
		t.Fatalf("state %v", room.State())
	}
	for i := range 5 {
		if err := room.Send("message", map[string]any{"n": i}); err != nil {
			t.Fatal(i, err)
		}
	}
	err = room.Send("message", map[string]any{"n": 5})
	var qe *client.QueueFullError
	if !errors.Is(err, client.ErrQueueFull) || !errors.As(err, &qe) || qe.Messages != 5 {
		t.Fatalf("6th message: %v", err)
	}
	big := map[string]any{"text": strings.Repeat("x", 2000)}
	if err := room.Send("message", big); !errors.Is(err, client.ErrQueueFull) {
		t.Fatalf("message over the byte limit: %v", err)
	}

	if err := c.Connect(ctxWait(t)); err != nil {
		t.Fatal(err)
	}
	if err := room.Join(ctxWait(t)); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		m, _ := in.message("message")
		var p struct{ N int }
		if m.Decode(&p); p.N != i {
			t.Fatalf("message %d arrived as %d", i, p.N)
		}
	}
	// flushed: the budget is free again
	if err := room.Send("message", map[string]any{"n": 6}); err != nil {
		t.Fatal(err)
	}
}
