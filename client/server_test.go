package client_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/client"
)

// The tests run the client against this module's server, started in the
// test process on 127.0.0.1, with a small application covering the
// protocol's sequences.

const wait = 5 * time.Second

// testApp is the application the tests talk to; release unblocks the
// "hang" handler.
type testApp struct {
	release chan struct{}
	once    sync.Once
}

func startServer(t *testing.T, addr string, app *testApp) *pondsocket.Server {
	t.Helper()
	opts := pondsocket.DefaultOptions()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.Transport.EventLoops = 1
	srv := pondsocket.NewServer(&pondsocket.ServerOptions{ServerAddr: addr, Options: opts})
	app.register(srv)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		app.once.Do(func() { close(app.release) })
		_ = srv.Stop(5 * time.Second)
	})
	return srv
}

func newApp() *testApp { return &testApp{release: make(chan struct{})} }

func (a *testApp) register(srv *pondsocket.Server) {
	ep := srv.CreateEndpoint("/api/socket", func(ctx *pondsocket.ConnectionContext) error {
		token := ctx.Route.Query.Get("token")
		if token == "bad" {
			return ctx.Decline(401, "Invalid token")
		}
		return ctx.SetAssigns("username", token).Accept()
	})
	rooms := ep.CreateChannel("/chat/:roomId", func(ctx *pondsocket.JoinContext) error {
		var p struct {
			Username  string `json:"username"`
			Untracked bool   `json:"untracked"`
		}
		_ = ctx.ParsePayload(&p)
		if p.Username == "blocked" {
			return ctx.Decline(403, "You are banned")
		}
		ctx.Accept().SetAssigns("username", p.Username)
		if !p.Untracked {
			ctx.Track(map[string]any{"username": p.Username, "status": "online"})
		}
		return ctx.Err()
	})
	rooms.OnEvent("message", func(ctx *pondsocket.EventContext) error {
		var m map[string]any
		_ = ctx.ParsePayload(&m)
		name, _ := ctx.GetAssign("username")
		m["from"] = name
		return ctx.Broadcast("message", m).Err()
	})
	rooms.OnEvent("typing", func(ctx *pondsocket.EventContext) error {
		name, _ := ctx.GetAssign("username")
		return ctx.BroadcastFrom("typing", map[string]any{"who": name}).Err()
	})
	rooms.OnEvent("whisper", func(ctx *pondsocket.EventContext) error {
		var w struct {
			To   string `json:"to"`
			Text string `json:"text"`
		}
		_ = ctx.ParsePayload(&w)
		return ctx.BroadcastTo("whisper", map[string]any{"text": w.Text}, w.To).Err()
	})
	rooms.OnEvent("ping", func(ctx *pondsocket.EventContext) error {
		return ctx.Reply("pong", map[string]any{"ok": true}).Err()
	})
	rooms.OnEvent("whoami", func(ctx *pondsocket.EventContext) error {
		return ctx.Reply("whoami", map[string]any{"id": ctx.GetUser().UserID}).Err()
	})
	rooms.OnEvent("status", func(ctx *pondsocket.EventContext) error {
		var s struct {
			Status string `json:"status"`
		}
		_ = ctx.ParsePayload(&s)
		name, _ := ctx.GetAssign("username")
		return ctx.UpdatePresence(map[string]any{"username": name, "status": s.Status}).Err()
	})
	rooms.OnEvent("kick", func(ctx *pondsocket.EventContext) error {
		var k struct {
			UserID string `json:"userId"`
		}
		_ = ctx.ParsePayload(&k)
		return ctx.Channel().EvictUser(k.UserID, "spamming")
	})
	rooms.OnEvent("explode", func(ctx *pondsocket.EventContext) error {
		return pondsocket.UnprocessableEntity("bad input")
	})
	rooms.OnEvent("hang", func(ctx *pondsocket.EventContext) error {
		<-a.release
		return ctx.Reply("hung", map[string]any{}).Err()
	})
}

// fast are options for tests: quick reconnection.
func fast(params map[string]string) *client.Options {
	return &client.Options{
		Params:    params,
		Reconnect: client.Reconnect{MinDelay: 20 * time.Millisecond, MaxDelay: 200 * time.Millisecond},
	}
}

func dial(t *testing.T, srv *pondsocket.Server, token string) *client.Client {
	t.Helper()
	return dialOpts(t, srv, fast(map[string]string{"token": token}))
}

func dialOpts(t *testing.T, srv *pondsocket.Server, opts *client.Options) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+srv.Addr().String()+"/api/socket", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func join(t *testing.T, c *client.Client, room, username string) (*client.Channel, *inbox) {
	t.Helper()
	ch := c.Channel(room, map[string]any{"username": username})
	in := record(t, ch)
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	if err := ch.Join(ctx); err != nil {
		t.Fatalf("join %s as %s: %v", room, username, err)
	}
	return ch, in
}

// inbox records a channel's messages and presence events in order.
type inbox struct {
	t  *testing.T
	ch chan any // client.Message or client.PresenceEvent
}

func record(t *testing.T, ch *client.Channel) *inbox {
	in := &inbox{t: t, ch: make(chan any, 1000)}
	put := func(v any) {
		select {
		case in.ch <- v:
		default:
			t.Errorf("inbox of %s full", ch.Name())
		}
	}
	ch.OnMessage(func(m client.Message) { put(m) })
	ch.OnPresence(func(p client.PresenceEvent) { put(p) })
	return in
}

// message waits for a message with event, returning it and the messages
// that came before it.
func (in *inbox) message(event string) (client.Message, []client.Message) {
	in.t.Helper()
	var before []client.Message
	timeout := time.After(wait)
	for {
		select {
		case v := <-in.ch:
			if m, ok := v.(client.Message); ok {
				if m.Event == event {
					return m, before
				}
				before = append(before, m)
			}
		case <-timeout:
			in.t.Fatalf("no %q message within %v", event, wait)
		}
	}
}

// presence waits for a presence event of type typ about username.
func (in *inbox) presence(typ, username string) client.PresenceEvent {
	in.t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case v := <-in.ch:
			if p, ok := v.(client.PresenceEvent); ok && p.Type == typ && p.Changed["username"] == username {
				return p
			}
		case <-timeout:
			in.t.Fatalf("no presence %s of %s within %v", typ, username, wait)
		}
	}
}

func names(list []map[string]any) []string {
	var out []string
	for _, p := range list {
		s, _ := p["username"].(string)
		out = append(out, s)
	}
	return out
}
