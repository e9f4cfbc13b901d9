// Command ratelimit shows application-level rate limiting with
// golang.org/x/time/rate:
//
//   - a middleware (lobby.Use) keeps one token bucket per user, created
//     when the user joins and dropped when it leaves its last channel, and
//     refuses events beyond the limit with pondsocket.TooManyRequests: the
//     client's sendForResponse resolves with {message, code: 429};
//   - a handler wrapper puts one global bucket in front of an expensive
//     event ("search"), shared by every user.
//
// The server has its own per-connection flood protection
// (Options.MessageRate, default 1000 events/s); the limits here are the
// application's business rules on top of it.
//
// Run it with
//
//	go run ./examples/ratelimit
package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/pondsocket/pondsocket"
)

const (
	// Per user: 1 event per second on average, bursts of 5.
	userRate  = rate.Limit(1)
	userBurst = 5
	// Global, for "search": 1 per second on average, bursts of 2, across
	// every user of the server.
	searchRate  = rate.Limit(1)
	searchBurst = 2
)

// userLimiters holds one limiter per user id. A user may be in several
// rooms: the limiter is shared by all of them (so spreading messages over
// rooms does not help) and counted, so it goes away with the last room.
type userLimiters struct {
	mu sync.Mutex
	m  map[string]*userLimiter
}

type userLimiter struct {
	lim   *rate.Limiter
	rooms int
}

func (u *userLimiters) acquire(userID string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	l := u.m[userID]
	if l == nil {
		l = &userLimiter{lim: rate.NewLimiter(userRate, userBurst)}
		u.m[userID] = l
	}
	l.rooms++
}

func (u *userLimiters) release(userID string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if l := u.m[userID]; l != nil {
		if l.rooms--; l.rooms <= 0 {
			delete(u.m, userID)
		}
	}
}

func (u *userLimiters) allow(userID string) bool {
	u.mu.Lock()
	l := u.m[userID]
	u.mu.Unlock()
	return l == nil || l.lim.Allow()
}

func (u *userLimiters) size() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.m)
}

// middleware is the per-user limit: it runs before every event handler of
// the channel pattern.
func (u *userLimiters) middleware(_ context.Context, req *pondsocket.MessageEvent, _ *pondsocket.Channel, next pondsocket.NextFunc) error {
	if !u.allow(req.User.UserID) {
		return pondsocket.TooManyRequests("slow down: at most 5 events in a burst, then 1 per second")
	}
	return next()
}

// globalLimit wraps a handler with a limiter shared by everyone.
func globalLimit(lim *rate.Limiter, h func(*pondsocket.EventContext) error) func(*pondsocket.EventContext) error {
	return func(ctx *pondsocket.EventContext) error {
		if !lim.Allow() {
			return pondsocket.TooManyRequests("server busy: search is limited for everyone, try again in a second")
		}
		return h(ctx)
	}
}

func main() {
	server := pondsocket.NewServer(&pondsocket.ServerOptions{
		ServerAddr: listenAddr(),
		Options:    pondsocket.DefaultOptions(),
	})
	endpoint := server.CreateEndpoint("/api/socket", func(ctx *pondsocket.ConnectionContext) error {
		name := strings.TrimSpace(ctx.Route.Query.Get("name"))
		if name == "" {
			name = "guest-" + ctx.ID()[:6]
		}
		return ctx.SetAssigns("name", name).Accept()
	})

	limiters := &userLimiters{m: map[string]*userLimiter{}}
	lobby := endpoint.CreateChannel("/chat/:room", func(ctx *pondsocket.JoinContext) error {
		if err := ctx.Accept().Err(); err != nil {
			return err
		}
		limiters.acquire(ctx.GetUser().UserID)
		return ctx.Track(map[string]any{"name": ctx.GetAssigns("name")}).Err()
	})
	lobby.Use(limiters.middleware)
	lobby.OnLeave(func(ctx *pondsocket.LeaveContext) {
		limiters.release(ctx.User.UserID)
		slog.Debug("left", "user", ctx.User.UserID, "limiters", limiters.size())
	})

	lobby.OnEvent("message", func(ctx *pondsocket.EventContext) error {
		var req struct {
			Text string `json:"text"`
		}
		if err := ctx.ParsePayload(&req); err != nil || req.Text == "" {
			return pondsocket.BadRequest(`expected {"text": "..."}`)
		}
		name, _ := ctx.GetAssign("name")
		return ctx.Broadcast("message", map[string]any{"from": name, "text": req.Text}).Err()
	})

	search := rate.NewLimiter(searchRate, searchBurst)
	lobby.OnEvent("search", globalLimit(search, func(ctx *pondsocket.EventContext) error {
		var req struct {
			Query string `json:"query"`
		}
		_ = ctx.ParsePayload(&req)
		time.Sleep(50 * time.Millisecond) // stands for an expensive query
		return ctx.Reply("results", map[string]any{"query": req.Query, "hits": []string{req.Query + " #1", req.Query + " #2"}}).Err()
	}))

	if err := server.Listen(); err != nil {
		slog.Error("server failed", "err", err)
		os.Exit(1)
	}
}

// listenAddr is PONDSOCKET_ADDR, the variable every example and
// cmd/pondsocket listen on, or :8080.
func listenAddr() string {
	if a := os.Getenv("PONDSOCKET_ADDR"); a != "" {
		return a
	}
	return ":8080"
}
