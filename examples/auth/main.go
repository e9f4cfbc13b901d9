// Command auth shows authentication and authorisation with PondSocket:
//
//   - the connection handler verifies a signed JWT (HS256) taken from the
//     query (?token=...) or an "Authorization: Bearer ..." header and
//     declines the upgrade with HTTP 401 when it is missing, invalid or
//     expired;
//   - the token's claims (sub, name, roles) become the connection's
//     assigns, which every channel handler can read;
//   - /rooms/:id is open to every authenticated user, /admin/:id only to
//     users with the "admin" role (others are declined with 403), and the
//     "kick" event of a room checks the role again, per event.
//
// Run it with
//
//	JWT_SECRET=change-me go run ./examples/auth
//
// and mint a demo token with
//
//	JWT_SECRET=change-me go run ./examples/auth -mint alice admin
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pondsocket/pondsocket"
)

// demoSecret is used when JWT_SECRET is not set. Never deploy with it.
const demoSecret = "pondsocket-demo-secret-do-not-use-in-production"

// Claims is what our tokens carry besides the registered claims (sub, exp,
// iat...).
type Claims struct {
	Name  string   `json:"name"`
	Roles []string `json:"roles"`
	jwt.RegisteredClaims
}

// Assigns is the typed view of the assigns the connection handler sets;
// handlers read them back with ParseAssigns.
type Assigns struct {
	UserID    string   `json:"userId"`
	Name      string   `json:"name"`
	Roles     []string `json:"roles"`
	ExpiresAt int64    `json:"exp"`
}

func (a Assigns) has(role string) bool { return slices.Contains(a.Roles, role) }

func main() {
	mint := flag.Bool("mint", false, "print a demo token for: -mint <sub> [role...] and exit")
	name := flag.String("name", "", "with -mint: the display name (default: the subject)")
	ttl := flag.Duration("ttl", time.Hour, "with -mint: token lifetime (negative: an already expired token)")
	flag.Parse()

	secret := []byte(os.Getenv("JWT_SECRET"))
	if len(secret) == 0 {
		secret = []byte(demoSecret)
		slog.Warn("!!! JWT_SECRET is not set: using the PUBLIC DEMO SECRET; anyone can mint tokens for this server. Set JWT_SECRET before exposing it !!!")
	}

	if *mint {
		if flag.NArg() < 1 {
			fmt.Fprintln(os.Stderr, "usage: go run ./examples/auth -mint <sub> [role...]")
			os.Exit(2)
		}
		tok, err := mintToken(secret, flag.Arg(0), *name, flag.Args()[1:], *ttl)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println(tok)
		return
	}

	server := pondsocket.NewServer(&pondsocket.ServerOptions{
		ServerAddr: listenAddr(),
		Options:    pondsocket.DefaultOptions(),
	})
	endpoint := server.CreateEndpoint("/api/socket", authenticate(secret))

	rooms := endpoint.CreateChannel("/rooms/:id", joinRoom)
	// The token was checked at connect; a connection can outlive it. This
	// middleware refuses events once the token has expired.
	rooms.Use(requireFreshToken)
	rooms.OnEvent("message", roomMessage)
	rooms.OnEvent("whoami", whoami)
	rooms.OnEvent("kick", requireRole("admin", kick))

	admin := endpoint.CreateChannel("/admin/:id", joinAdmin)
	admin.Use(requireFreshToken)
	admin.OnEvent("announce", func(ctx *pondsocket.EventContext) error {
		a, text, err := textFrom(ctx)
		if err != nil {
			return err
		}
		// rooms is the pattern handle: this reaches every live /rooms/* channel.
		if err := rooms.Broadcast("announcement", map[string]any{"from": a.Name, "text": text}); err != nil {
			return err
		}
		return ctx.Reply("announced", map[string]any{"rooms": len(rooms.Channels())}).Err()
	})

	if err := server.Listen(); err != nil {
		slog.Error("server failed", "err", err)
		os.Exit(1)
	}
}

// mintToken signs a demo token.
func mintToken(secret []byte, sub, name string, roles []string, ttl time.Duration) (string, error) {
	if name == "" {
		name = sub
	}
	if roles == nil {
		roles = []string{}
	}
	now := time.Now()
	claims := Claims{
		Name:  name,
		Roles: roles,
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   sub,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
		},
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
}

// bearer returns the token from ?token= or the Authorization header.
func bearer(ctx *pondsocket.ConnectionContext) string {
	if t := ctx.Route.Query.Get("token"); t != "" {
		return t
	}
	h := ctx.Headers().Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// authenticate is the connection handler: no valid token, no socket.
func authenticate(secret []byte) func(*pondsocket.ConnectionContext) error {
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), // refuse "none" and RS/HS confusion
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(5*time.Second),
	)
	keyFunc := func(*jwt.Token) (any, error) { return secret, nil }
	return func(ctx *pondsocket.ConnectionContext) error {
		raw := bearer(ctx)
		if raw == "" {
			return ctx.Decline(401, "missing token")
		}
		var claims Claims
		if _, err := parser.ParseWithClaims(raw, &claims, keyFunc); err != nil {
			if errors.Is(err, jwt.ErrTokenExpired) {
				return ctx.Decline(401, "token expired")
			}
			return ctx.Decline(401, "invalid token")
		}
		if claims.Subject == "" {
			return ctx.Decline(401, "token has no subject")
		}
		return ctx.Accept(map[string]any{
			"userId": claims.Subject,
			"name":   claims.Name,
			"roles":  claims.Roles,
			"exp":    claims.ExpiresAt.Unix(),
		})
	}
}

func joinRoom(ctx *pondsocket.JoinContext) error {
	var a Assigns
	if err := ctx.ParseAssigns(&a); err != nil {
		return ctx.Decline(500, "cannot read assigns")
	}
	return ctx.Accept().
		Track(map[string]any{"userId": a.UserID, "name": a.Name}).
		Reply("welcome", map[string]any{"room": ctx.Route.Params["id"], "name": a.Name, "roles": a.Roles}).
		Err()
}

func joinAdmin(ctx *pondsocket.JoinContext) error {
	var a Assigns
	if err := ctx.ParseAssigns(&a); err != nil {
		return ctx.Decline(500, "cannot read assigns")
	}
	if !a.has("admin") {
		return ctx.Decline(403, "admin role required")
	}
	return ctx.Accept().
		Track(map[string]any{"userId": a.UserID, "name": a.Name}).
		Err()
}

// requireFreshToken is middleware refusing events after the token's expiry.
func requireFreshToken(_ context.Context, req *pondsocket.MessageEvent, _ *pondsocket.Channel, next pondsocket.NextFunc) error {
	var exp int64
	switch v := req.User.Assigns["exp"].(type) {
	case int64:
		exp = v
	case float64: // assigns that crossed a cluster are JSON numbers
		exp = int64(v)
	}
	if exp != 0 && time.Now().Unix() > exp {
		return pondsocket.Unauthorized("token expired: reconnect with a new one")
	}
	return next()
}

// requireRole wraps an event handler with a per-event role check.
func requireRole(role string, h func(*pondsocket.EventContext) error) func(*pondsocket.EventContext) error {
	return func(ctx *pondsocket.EventContext) error {
		var a Assigns
		if err := ctx.ParseAssigns(&a); err != nil {
			return err
		}
		if !a.has(role) {
			return pondsocket.Forbidden(role + " role required")
		}
		return h(ctx)
	}
}

func roomMessage(ctx *pondsocket.EventContext) error {
	a, text, err := textFrom(ctx)
	if err != nil {
		return err
	}
	return ctx.Broadcast("message", map[string]any{"from": a.Name, "userId": a.UserID, "text": text}).Err()
}

// textFrom reads the {"text"} payload of a message or an announcement and
// who sends it.
func textFrom(ctx *pondsocket.EventContext) (Assigns, string, error) {
	var a Assigns
	var req struct {
		Text string `json:"text"`
	}
	if err := ctx.ParsePayload(&req); err != nil || req.Text == "" {
		return a, "", pondsocket.BadRequest(`expected {"text": "..."}`)
	}
	if err := ctx.ParseAssigns(&a); err != nil {
		return a, "", err
	}
	return a, req.Text, nil
}

func whoami(ctx *pondsocket.EventContext) error {
	var a Assigns
	if err := ctx.ParseAssigns(&a); err != nil {
		return err
	}
	return ctx.Reply("whoami", map[string]any{"userId": a.UserID, "name": a.Name, "roles": a.Roles,
		"expiresAt": time.Unix(a.ExpiresAt, 0).UTC().Format(time.RFC3339)}).Err()
}

// kick evicts every connection of a user (by token subject) from the room.
func kick(ctx *pondsocket.EventContext) error {
	var req struct {
		UserID string `json:"userId"`
	}
	if err := ctx.ParsePayload(&req); err != nil || req.UserID == "" {
		return pondsocket.BadRequest(`expected {"userId": "<token subject>"}`)
	}
	// Connection ids are random; the token subject lives in the assigns.
	kicked := 0
	for connID, as := range ctx.GetAllAssigns() {
		if m, _ := as.(map[string]any); m != nil && m["userId"] == req.UserID {
			if err := ctx.Channel().EvictUser(connID, "removed by an admin"); err == nil {
				kicked++
			}
		}
	}
	if kicked == 0 {
		return pondsocket.NotFound("no such user in this room")
	}
	return ctx.Reply("kicked", map[string]any{"userId": req.UserID, "connections": kicked}).Err()
}

// listenAddr is PONDSOCKET_ADDR, the variable every example and
// cmd/pondsocket listen on, or :8080.
func listenAddr() string {
	if a := os.Getenv("PONDSOCKET_ADDR"); a != "" {
		return a
	}
	return ":8080"
}
