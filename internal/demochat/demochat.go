// Package demochat is the demo application served by cmd/pondsocket (and by
// bench/bridgeserver, the same app behind net/http): a chat with presence.
package demochat

import (
	"errors"
	"time"

	"github.com/pondsocket/pondsocket"
)

// EndpointCreator is a pondsocket.Server or a pondsocket.Manager.
type EndpointCreator interface {
	CreateEndpoint(path string, handler func(*pondsocket.ConnectionContext) error) *pondsocket.Endpoint
}

// Register installs the demo application: a chat with presence. The bench
// tool relies on its events: "message" broadcasts the payload unchanged to
// the whole room, "echo" replies with it, "typing" goes to everyone but the
// sender, "status" updates the sender's presence; "whisper" {to, text}
// goes to one user, "whoami" replies with the sender's id and name;
// "echo_worker" is "echo" run on a worker instead of the event loop.
func Register(srv EndpointCreator) { RegisterWith(srv, Config{}) }

// Config changes what RegisterWith installs.
type Config struct {
	// TestEvents adds events that misbehave on purpose, for the attack kit
	// (bench/attack) and tests: "slow" sleeps payload.ms milliseconds (at
	// most 30 s, default 5 s) and then replies "slow"; "fail" returns a plain
	// Go error whose text names an internal host and must not reach the
	// client; "crash" panics. Never on a public server: "slow" lets any
	// client occupy a worker.
	TestEvents bool
}

// RegisterWith installs the demo application with cfg.
func RegisterWith(srv EndpointCreator, cfg Config) {
	endpoint := srv.CreateEndpoint("/api/socket", func(ctx *pondsocket.ConnectionContext) error {
		name := ctx.Route.Query.Get("username")
		if name == "" {
			name = "guest-" + ctx.ID()[:8]
		}
		return ctx.SetAssigns("username", name).Accept()
	})
	rooms := endpoint.CreateChannel("/chat/:roomId", func(ctx *pondsocket.JoinContext) error {
		var join struct {
			Username string `json:"username"`
			Presence *bool  `json:"presence"`
		}
		_ = ctx.ParsePayload(&join)
		name, _ := ctx.GetAssigns("username").(string)
		if join.Username != "" {
			name = join.Username
		}
		ctx.Accept().SetAssigns("username", name)
		if join.Presence == nil || *join.Presence {
			ctx.Track(map[string]any{"username": name, "status": "online"})
		}
		return ctx.Err()
	})
	// These handlers only send, so they run on the event loop
	// (OnEventInline); "echo_worker" is "echo" on a worker, to measure the
	// hand-off (pondbench echo --echo-event echo_worker).
	rooms.OnEventInline("message", func(ctx *pondsocket.EventContext) error {
		return ctx.Broadcast("message", ctx.RawPayload()).Err()
	})
	rooms.OnEventInline("echo", func(ctx *pondsocket.EventContext) error {
		return ctx.Reply("echo", ctx.RawPayload()).Err()
	})
	rooms.OnEvent("echo_worker", func(ctx *pondsocket.EventContext) error {
		return ctx.Reply("echo_worker", ctx.RawPayload()).Err()
	})
	rooms.OnEventInline("typing", func(ctx *pondsocket.EventContext) error {
		return ctx.BroadcastFrom("typing", ctx.RawPayload()).Err()
	})
	rooms.OnEventInline("whisper", func(ctx *pondsocket.EventContext) error {
		var w struct {
			To   string `json:"to"`
			Text string `json:"text"`
		}
		if err := ctx.ParsePayload(&w); err != nil || w.To == "" {
			return pondsocket.BadRequest("whisper: expected {\"to\": userId, \"text\": ...}")
		}
		name, _ := ctx.GetAssign("username")
		return ctx.BroadcastTo("whisper", map[string]any{"text": w.Text, "from": name}, w.To).Err()
	})
	rooms.OnEventInline("whoami", func(ctx *pondsocket.EventContext) error {
		name, _ := ctx.GetAssign("username")
		return ctx.Reply("whoami", map[string]any{"id": ctx.GetUser().UserID, "username": name}).Err()
	})
	// presence changes are encoded for the whole room: a worker's job
	rooms.OnEvent("status", func(ctx *pondsocket.EventContext) error {
		var s struct {
			Status string `json:"status"`
		}
		if err := ctx.ParsePayload(&s); err != nil || s.Status == "" {
			return pondsocket.BadRequest("status: expected {\"status\": \"...\"}")
		}
		name, _ := ctx.GetAssign("username")
		return ctx.UpdatePresence(map[string]any{"username": name, "status": s.Status}).Err()
	})
	if cfg.TestEvents {
		registerTestEvents(rooms)
	}
}

func registerTestEvents(rooms *pondsocket.Channel) {
	rooms.OnEvent("slow", func(ctx *pondsocket.EventContext) error {
		var p struct {
			MS *int `json:"ms"`
		}
		_ = ctx.ParsePayload(&p)
		d := 5 * time.Second
		if p.MS != nil {
			d = min(time.Duration(max(*p.MS, 0))*time.Millisecond, 30*time.Second)
		}
		time.Sleep(d)
		return ctx.Reply("slow", map[string]any{"slept_ms": d.Milliseconds()}).Err()
	})
	rooms.OnEvent("fail", func(ctx *pondsocket.EventContext) error {
		return errors.New(`pq: password authentication failed for user "app" (host=10.0.3.7 port=5432)`)
	})
	rooms.OnEvent("crash", func(ctx *pondsocket.EventContext) error {
		panic("demochat: the crash event panics on purpose")
	})
}
