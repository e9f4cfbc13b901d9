package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"runtime/debug"
	"strings"
	"time"

	"github.com/pondsocket/pondsocket/internal/ratelog"

	"github.com/pondsocket/pondsocket"
)

// Connection assigns the server keeps for itself (never shown as assigns):
// the token's channels claim, and the presence a connect proxy answer
// chose.
const (
	channelsAssign = "_channels"
	presenceAssign = "_presence"
)

func serverAssign(k string) bool { return k == channelsAssign || k == presenceAssign }

// registerApp creates the file's endpoints, channels and events on srv;
// auth (JWT) and px (the backend proxy) may each be nil.
func registerApp(srv *pondsocket.Server, app *appConfig, auth *authenticator, px *backendProxy) (eps []*pondsocket.Endpoint, err error) {
	at := ""
	defer func() { // bad patterns panic in the library: name the key
		if p := recover(); p != nil {
			err = fmt.Errorf("%s: %v", at, p)
		}
	}()
	for i, e := range app.Endpoints {
		at = fmt.Sprintf("endpoints[%d].path", i)
		ep := srv.CreateEndpoint(e.Path, func(ctx *pondsocket.ConnectionContext) error {
			var cl *tokenClaims
			tok := ""
			if auth != nil {
				tok = tokenOf(ctx)
				var err error
				if cl, err = auth.verify(tok); err != nil {
					return ctx.Decline(401, err.Error())
				}
				ctx.SetUserID(cl.Subject)
				for k, v := range cl.Info {
					ctx.SetAssigns(k, v)
				}
				if cl.Channels != nil {
					ctx.SetAssigns(channelsAssign, cl.Channels)
				}
			}
			if px != nil && px.cfg.connectURL != "" {
				return px.onConnect(ctx, cl, tok)
			}
			return ctx.Accept()
		})
		eps = append(eps, ep)
		for j, c := range e.Channels {
			at = fmt.Sprintf("endpoints[%d].channels[%d].pattern", i, j)
			c := c
			ch := ep.CreateChannel(c.Pattern, func(ctx *pondsocket.JoinContext) error {
				u := ctx.User()
				if !mayJoin(u.Assigns[channelsAssign], ctx.ChannelName()) {
					return ctx.Decline(403, "Not allowed to join "+ctx.ChannelName())
				}
				if px != nil && px.cfg.joinURL != "" {
					return px.onJoin(ctx, c.Presence)
				}
				ctx.Accept()
				if c.Presence {
					ctx.Track(presenceOf(u))
				}
				return ctx.Err()
			})
			// in file order: the first matching pattern decides. Every
			// mode but proxy only sends, so it runs on the event loop.
			for _, name := range c.eventOrder {
				at = fmt.Sprintf("endpoints[%d].channels[%d].events.%s", i, j, name)
				mode := c.Events[name]
				if mode == "proxy" {
					ch.OnEvent(name, eventHandler(mode, px))
				} else {
					ch.OnEventInline(name, eventHandler(mode, px))
				}
			}
			ch.OnEventInline("*", eventHandler("forbidden", nil))
		}
	}
	return eps, nil
}

func eventHandler(mode string, px *backendProxy) func(*pondsocket.EventContext) error {
	switch mode {
	case "broadcast":
		return func(ctx *pondsocket.EventContext) error {
			return ctx.Broadcast(ctx.EventName(), ctx.RawPayload()).Err()
		}
	case "broadcast_from":
		return func(ctx *pondsocket.EventContext) error {
			return ctx.BroadcastFrom(ctx.EventName(), ctx.RawPayload()).Err()
		}
	case "reply":
		return func(ctx *pondsocket.EventContext) error {
			return ctx.Reply(ctx.EventName(), ctx.RawPayload()).Err()
		}
	case "proxy": // validateProxy made sure px has an event URL
		return px.onEvent
	}
	return func(ctx *pondsocket.EventContext) error {
		return pondsocket.Forbidden("Event not allowed: " + ctx.EventName())
	}
}

// mayJoin applies a token's channels claim: nil (no claim) allows every
// configured channel; otherwise one of its patterns (path.Match syntax,
// "/chat/*") must match the channel name.
func mayJoin(claim any, name string) bool {
	var pats []string
	switch v := claim.(type) {
	case nil:
		return true
	case []string:
		pats = v
	case []any:
		for _, p := range v {
			if s, ok := p.(string); ok {
				pats = append(pats, s)
			}
		}
	default:
		return false
	}
	for _, p := range pats {
		if ok, err := path.Match(p, name); err == nil && ok {
			return true
		}
	}
	return false
}

// presenceOf is what a member shows in presence: its id and the presence
// a connect proxy answer chose, or else its token's info and the proxy's
// assigns (the assigns but the server's own).
func presenceOf(u *pondsocket.User) map[string]any {
	p := map[string]any{}
	if chosen, ok := u.Assigns[presenceAssign].(map[string]any); ok {
		for k, v := range chosen {
			p[k] = v
		}
	} else {
		for k, v := range u.Assigns {
			if !serverAssign(k) {
				p[k] = v
			}
		}
	}
	p["id"] = u.UserID
	return p
}

// serveApp registers the configuration file's application and, with an
// api.key, the server API.
func serveApp(srv *pondsocket.Server, mux *http.ServeMux, c config, log *slog.Logger) error {
	var auth *authenticator
	if c.auth.enabled() {
		var err error
		if auth, err = newAuthenticator(c.auth, ratelog.New(log, 0, 0)); err != nil {
			return err
		}
	} else if c.proxy.connectURL == "" {
		log.Warn("no auth.jwt or proxy.connect_url in the configuration: every connection is accepted with a random user id")
	}
	var px *backendProxy
	if c.proxy.enabled() {
		// an answer may carry a reply or broadcast payload as large as a
		// client message, plus assigns and presence
		px = newBackendProxy(c.proxy, c.maxMessageSize+64<<10, ratelog.New(log, 0, 0))
	}
	eps, err := registerApp(srv, c.app, auth, px)
	if err != nil {
		return fmt.Errorf("%s: %w", c.configFile, err)
	}
	if c.api.key != "" {
		api := &serverAPI{key: []byte(c.api.key), maxBody: c.api.maxBody, eps: eps, srv: srv, started: time.Now(), log: ratelog.New(log, 0, 0),
			clustered: c.redisAddr != "" || c.kafkaBrokers != ""}
		api.register(mux)
	}
	return nil
}

// describe names the token checks for the startup line.
func (a authConfig) describe() string {
	var parts []string
	if a.hmacSecret != "" {
		parts = append(parts, "HS256")
	}
	if a.publicKeyFile != "" {
		parts = append(parts, "public key "+a.publicKeyFile)
	}
	if a.jwksURL != "" {
		parts = append(parts, "JWKS "+a.jwksURL)
	}
	if len(parts) == 0 {
		return "none"
	}
	return "JWT (" + strings.Join(parts, ", ") + ")"
}

// version is the module version the binary was built from.
func version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		v := bi.Main.Version
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				v += " " + s.Value[:12]
			}
		}
		return v
	}
	return "(devel)"
}
