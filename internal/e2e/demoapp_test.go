package e2e

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket"
)

// startDemo runs the demo application the reference transcripts in
// docs/protocol.md §4 and §6 were captured with (its header describes
// it), on 127.0.0.1:0.
func startDemo(t testing.TB, tweak func(*pondsocket.Options)) *pondsocket.Server {
	t.Helper()
	opts := pondsocket.DefaultOptions()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	opts.Transport.EventLoops = 2
	if tweak != nil {
		tweak(opts)
	}
	srv := pondsocket.NewServer(&pondsocket.ServerOptions{ServerAddr: "127.0.0.1:0", Options: opts})
	registerReferenceDemo(srv)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(5 * time.Second) })
	return srv
}

type endpointCreator interface {
	CreateEndpoint(path string, handler func(*pondsocket.ConnectionContext) error) *pondsocket.Endpoint
}

func registerReferenceDemo(srv endpointCreator) { registerReferenceDemoAt(srv, "/api/socket") }

func registerReferenceDemoAt(srv endpointCreator, path string) {
	ep := srv.CreateEndpoint(path, func(ctx *pondsocket.ConnectionContext) error {
		switch token := ctx.Route.Query.Get("token"); token {
		case "bad":
			return ctx.Decline(401, "Invalid token")
		case "none":
			return nil
		case "throw":
			return pondsocket.NewError(418, "teapot")
		default:
			ctx.SetAssigns("userName", token).SetAssigns("role", "user")
			if err := ctx.Accept(); err != nil {
				return err
			}
			if ctx.Route.Query.Get("greet") == "1" {
				ctx.Reply("welcome", map[string]any{"hello": token, "clientId": ctx.ID()})
			}
			return ctx.Err()
		}
	})
	lobby := ep.CreateChannel("/chat/:roomId", func(ctx *pondsocket.JoinContext) error {
		var p struct {
			Username string `json:"username"`
			Silent   bool   `json:"silent"`
			Presence *bool  `json:"presence"`
			History  bool   `json:"history"`
			Announce bool   `json:"announce"`
		}
		_ = ctx.ParsePayload(&p)
		switch {
		case p.Username == "blocked":
			return ctx.Decline(403, "You are banned")
		case p.Silent:
			return nil
		}
		ctx.Accept(map[string]any{"username": p.Username})
		if p.Presence == nil || *p.Presence {
			ctx.Track(map[string]any{"username": p.Username, "status": "online"})
		}
		if p.History {
			ctx.Reply("history", map[string]any{"messages": []string{"m1"}, "room": ctx.Route.Params["roomId"], "query": ctx.Route.Query})
		}
		if p.Announce {
			ctx.BroadcastFrom("joined", map[string]any{"username": p.Username})
		}
		return ctx.Err()
	})
	lobby.OnEvent("message", func(ctx *pondsocket.EventContext) error {
		var m map[string]any
		_ = ctx.ParsePayload(&m)
		name, _ := ctx.GetAssign("username")
		m["from"] = name
		return ctx.Broadcast("message", m).Err()
	})
	lobby.OnEvent("message/:id", func(ctx *pondsocket.EventContext) error {
		return ctx.Reply("edited", map[string]any{"id": ctx.Event().Params["id"], "query": ctx.Event().Query}).Err()
	})
	lobby.OnEvent("ping", func(ctx *pondsocket.EventContext) error {
		return ctx.Reply("pong", map[string]any{"receivedAt": 1}).Err()
	})
	lobby.OnEvent("ping-and-broadcast", func(ctx *pondsocket.EventContext) error {
		return ctx.Broadcast("noise", map[string]any{"n": 1}).Reply("pong", map[string]any{"receivedAt": 2}).Err()
	})
	lobby.OnEvent("whisper", func(ctx *pondsocket.EventContext) error {
		var w struct {
			To   string `json:"to"`
			Text string `json:"text"`
		}
		_ = ctx.ParsePayload(&w)
		return ctx.BroadcastTo("whisper", map[string]any{"text": w.Text}, w.To).Err()
	})
	lobby.OnEvent("typing", func(ctx *pondsocket.EventContext) error {
		name, _ := ctx.GetAssign("username")
		return ctx.BroadcastFrom("typing", map[string]any{"who": name}).Err()
	})
	lobby.OnEvent("status", func(ctx *pondsocket.EventContext) error {
		var s struct {
			Status string `json:"status"`
		}
		_ = ctx.ParsePayload(&s)
		name, _ := ctx.GetAssign("username")
		return ctx.UpdatePresence(map[string]any{"username": name, "status": s.Status}).Err()
	})
	lobby.OnEvent("rename", func(ctx *pondsocket.EventContext) error {
		var r struct {
			Username string `json:"username"`
		}
		_ = ctx.ParsePayload(&r)
		return ctx.SetAssigns("username", r.Username).Reply("renamed", map[string]any{"username": r.Username}).Err()
	})
	lobby.OnEvent("kick", func(ctx *pondsocket.EventContext) error {
		var k struct {
			UserID string `json:"userId"`
		}
		_ = ctx.ParsePayload(&k)
		return ctx.Channel().EvictUser(k.UserID, "spamming")
	})
	lobby.OnEvent("secret", func(ctx *pondsocket.EventContext) error {
		return ctx.Broadcast("secret", map[string]any{"text": "hidden"}).Err()
	})
	lobby.OnEvent("explode", func(ctx *pondsocket.EventContext) error {
		return pondsocket.UnprocessableEntity("bad input")
	})
	lobby.OnEvent("whoami", func(ctx *pondsocket.EventContext) error {
		u := ctx.GetUser()
		return ctx.Reply("whoami", map[string]any{"id": u.UserID, "assigns": u.Assigns}).Err()
	})
	lobby.OnEvent("everyone", func(ctx *pondsocket.EventContext) error {
		return ctx.Reply("everyone", map[string]any{"assigns": ctx.GetAllAssigns(), "presence": ctx.GetAllPresence()}).Err()
	})
	lobby.OnEvent("slow", func(ctx *pondsocket.EventContext) error {
		time.Sleep(time.Second) // a handler blocking on I/O
		return ctx.Reply("slow-done", map[string]any{}).Err()
	})
	lobby.OnOutgoing("secret", func(ctx *pondsocket.OutgoingContext) error {
		name, _ := ctx.User().Assigns["username"].(string)
		if name == "carol" {
			ctx.Block()
			return nil
		}
		return ctx.Transform(map[string]any{"text": "for " + name})
	})
	files := ep.CreateChannel("/files/*", func(ctx *pondsocket.JoinContext) error {
		ctx.Accept()
		ctx.Reply("opened", map[string]any{"params": ctx.Route.Params, "query": ctx.Route.Query})
		return ctx.Err()
	})
	files.OnEvent("*", func(ctx *pondsocket.EventContext) error {
		return ctx.Reply("any", map[string]any{"event": ctx.Event().Event}).Err()
	})
	_ = strings.TrimSpace
	_ = context.Background
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
