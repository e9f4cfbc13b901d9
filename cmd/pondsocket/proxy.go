package main

// The backend proxy: instead of (or besides) a JWT, the application's own
// backend decides who connects, who joins which channel and what an event
// does. The server POSTs a JSON description of the request to the URL of
// proxy.connect_url, proxy.join_url or proxy.event_url and acts on the JSON
// answer. The request and answer shapes are documented in
// docs/configuration.md ("The backend proxy"); the Go types below are
// those shapes.
//
// A backend that cannot be reached, overruns proxy.timeout, answers a
// status other than 2xx, or answers something that is not one of the
// documented shapes never leaves the client waiting: the upgrade is
// declined (502, 504), the join declined with the same codes, the event
// answered with the protocol's error. Each failure is logged, rate-limited.
//
// Calls run where the library runs the handler that makes them: the
// connect call on the upgrade's handler goroutine (bounded by
// MaxPendingUpgrades and the handshake timeout), join and event calls on
// the hub's workers, where a handler may occupy at most
// Handlers.MaxPerHandler of them. Each kind has its own HTTP connection
// pool, bounded by proxy.max_connections: a slow event backend fills the
// event pool only, and connects and joins keep theirs.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/pondsocket/pondsocket"
)

// proxyConfig: the backend proxy (proxy.* in the file).
type proxyConfig struct {
	connectURL     string
	joinURL        string
	eventURL       string
	timeout        time.Duration
	forwardHeaders string // comma-separated header names
	maxConns       int
}

func (p proxyConfig) enabled() bool {
	return p.connectURL != "" || p.joinURL != "" || p.eventURL != ""
}

// maxProxyTimeout is below the engine's handshake timeout (10 s by
// default; the binary does not change it), which also bounds the connect
// handler's decision: a longer connect call would let the engine close the
// socket before the client hears the 504.
const maxProxyTimeout = 9 * time.Second

func defineProxyFlags(fs *flag.FlagSet, c *config, def func(name, env string) string) {
	fs.StringVar(&c.proxy.connectURL, "proxy-connect-url", "", "ask the backend at this URL whether a connection is accepted, and as which user "+def("proxy-connect-url", "PONDSOCKET_PROXY_CONNECT_URL"))
	fs.StringVar(&c.proxy.joinURL, "proxy-join-url", "", "ask the backend at this URL whether a join is accepted "+def("proxy-join-url", "PONDSOCKET_PROXY_JOIN_URL"))
	fs.StringVar(&c.proxy.eventURL, "proxy-event-url", "", "ask the backend at this URL what an event of mode proxy does "+def("proxy-event-url", "PONDSOCKET_PROXY_EVENT_URL"))
	fs.DurationVar(&c.proxy.timeout, "proxy-timeout", 3*time.Second, "deadline of one backend call, at most 9s "+def("proxy-timeout", "PONDSOCKET_PROXY_TIMEOUT"))
	fs.StringVar(&c.proxy.forwardHeaders, "proxy-forward-headers", "", "comma-separated upgrade request headers sent to the connect backend "+def("proxy-forward-headers", "PONDSOCKET_PROXY_FORWARD_HEADERS"))
	fs.IntVar(&c.proxy.maxConns, "proxy-max-connections", 64, "HTTP connections to the backend per kind of call (connect, join, event) "+def("proxy-max-connections", "PONDSOCKET_PROXY_MAX_CONNECTIONS"))
}

// validateProxy checks the proxy settings (with a configuration file).
func (c *config) validateProxy(bad func(name, want string) error) error {
	for _, u := range []struct{ name, url string }{
		{"proxy-connect-url", c.proxy.connectURL},
		{"proxy-join-url", c.proxy.joinURL},
		{"proxy-event-url", c.proxy.eventURL},
	} {
		if u.url == "" {
			continue
		}
		if !strings.HasPrefix(u.url, "http://") && !strings.HasPrefix(u.url, "https://") {
			return bad(u.name, "must be an http:// or https:// URL")
		}
		if _, err := http.NewRequest(http.MethodPost, u.url, nil); err != nil {
			return bad(u.name, "not a usable URL: "+err.Error())
		}
	}
	switch {
	case c.proxy.timeout <= 0 || c.proxy.timeout > maxProxyTimeout:
		return bad("proxy-timeout", "must be more than 0 and at most 9s (the upgrade's handshake timeout, 10s, bounds the connect call)")
	case c.proxy.maxConns < 1 || c.proxy.maxConns > 10000:
		return bad("proxy-max-connections", "must be from 1 to 10000")
	}
	for _, h := range splitList(c.proxy.forwardHeaders) {
		if !isHeaderName(h) {
			return bad("proxy-forward-headers", fmt.Sprintf("%q is not a header name", h))
		}
	}
	if c.inline && (c.proxy.joinURL != "" || c.proxy.eventURL != "") {
		return bad("inline-handlers", "not with proxy.join_url or proxy.event_url: backend calls wait on the network, and inline handlers run on the event loops")
	}
	proxied := false
	for i, e := range c.app.Endpoints {
		for j, ch := range e.Channels {
			for _, name := range ch.eventOrder {
				if ch.Events[name] != "proxy" {
					continue
				}
				proxied = true
				if c.proxy.eventURL == "" {
					return fmt.Errorf("%s: endpoints[%d].channels[%d].events.%s (line %d): mode proxy needs proxy.event_url",
						c.configFile, i, j, name, ch.eventLines[name])
				}
			}
		}
	}
	if c.proxy.eventURL != "" && !proxied {
		return bad("proxy-event-url", "no event has mode proxy (e.g. events: {message: proxy}), so it would never be called")
	}
	return nil
}

// isHeaderName reports whether s is an HTTP field name (RFC 9110 token).
func isHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}

// describe names the proxied calls for the startup line.
func (p proxyConfig) describe() string {
	var parts []string
	for _, u := range []struct{ kind, url string }{{"connect", p.connectURL}, {"join", p.joinURL}, {"event", p.eventURL}} {
		if u.url != "" {
			parts = append(parts, u.kind+" "+u.url)
		}
	}
	if len(parts) == 0 {
		return "off"
	}
	return strings.Join(parts, ", ") + " (timeout " + p.timeout.String() + ")"
}

// --- the wire: what the server sends and what the backend answers -------

// connectRequest describes an upgrade (WebSocket or SSE).
type connectRequest struct {
	Path       string            `json:"path"`
	Params     map[string]string `json:"params,omitempty"`
	Query      map[string]string `json:"query"`
	Headers    map[string]string `json:"headers"`
	RemoteAddr string            `json:"remote_addr"`
	// with auth.jwt: the verified token's sub and claims
	User   string         `json:"user,omitempty"`
	Claims map[string]any `json:"claims,omitempty"`
}

type joinRequest struct {
	User    string            `json:"user"`
	Assigns map[string]any    `json:"assigns"`
	Channel string            `json:"channel"`
	Params  map[string]string `json:"params"`
	Payload json.RawMessage   `json:"payload"`
}

type eventRequest struct {
	User    string          `json:"user"`
	Assigns map[string]any  `json:"assigns"`
	Channel string          `json:"channel"`
	Event   string          `json:"event"`
	Payload json.RawMessage `json:"payload"`
}

// proxyRefusal declines a connect or join, or denies an event.
type proxyRefusal struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func (r *proxyRefusal) check() error {
	if r.Code != 0 && (r.Code < 400 || r.Code > 599) {
		return fmt.Errorf("code %d is not from 400 to 599", r.Code)
	}
	return nil
}

// status and text of a refusal, with defaults for what the backend left out.
func (r *proxyRefusal) status(defMsg string) (int, string) {
	code, msg := r.Code, r.Message
	if code == 0 {
		code = http.StatusForbidden
	}
	if msg == "" {
		msg = defMsg
	}
	return code, msg
}

type connectAnswer struct {
	User     string         `json:"user"`
	Assigns  map[string]any `json:"assigns"`
	Presence map[string]any `json:"presence"`
	Channels *[]string      `json:"channels"`
	Decline  *proxyRefusal  `json:"decline"`
}

func (a *connectAnswer) check() error {
	if a.Decline != nil {
		if a.User != "" || a.Assigns != nil || a.Presence != nil || a.Channels != nil {
			return errors.New("decline together with user, assigns, presence or channels")
		}
		return a.Decline.check()
	}
	if len(a.User) > pondsocket.MaxUserIDBytes {
		return fmt.Errorf("user id of %d bytes, over %d", len(a.User), pondsocket.MaxUserIDBytes)
	}
	return nil
}

type joinAnswer struct {
	Assigns  map[string]any `json:"assigns"`
	Presence map[string]any `json:"presence"`
	Decline  *proxyRefusal  `json:"decline"`
}

func (a *joinAnswer) check() error {
	if a.Decline != nil {
		if a.Assigns != nil || a.Presence != nil {
			return errors.New("decline together with assigns or presence")
		}
		return a.Decline.check()
	}
	return nil
}

// proxyMessage is a message the event answer sends; event and payload
// default to the client's.
type proxyMessage struct {
	Event   string          `json:"event"`
	Payload json.RawMessage `json:"payload"`
}

func (m *proxyMessage) check() error {
	if m == nil || len(m.Payload) == 0 {
		return nil
	}
	if p := bytes.TrimSpace(m.Payload); len(p) == 0 || p[0] != '{' {
		return errors.New("payload is not a JSON object")
	}
	return nil
}

type eventAnswer struct {
	Reply         *proxyMessage `json:"reply"`
	Broadcast     *proxyMessage `json:"broadcast"`
	BroadcastFrom *proxyMessage `json:"broadcast_from"`
	Deny          *proxyRefusal `json:"deny"`
}

func (a *eventAnswer) check() error {
	switch {
	case a.Deny != nil && (a.Reply != nil || a.Broadcast != nil || a.BroadcastFrom != nil):
		return errors.New("deny together with reply or broadcast")
	case a.Deny != nil:
		return a.Deny.check()
	case a.Broadcast != nil && a.BroadcastFrom != nil:
		return errors.New("both broadcast and broadcast_from")
	case a.Reply == nil && a.Broadcast == nil && a.BroadcastFrom == nil:
		return errors.New("none of reply, broadcast, broadcast_from or deny")
	}
	for _, m := range []*proxyMessage{a.Reply, a.Broadcast, a.BroadcastFrom} {
		if err := m.check(); err != nil {
			return err
		}
	}
	return nil
}

// What a client is told when the backend fails it.
var (
	errBackendDown    = pondsocket.NewError(http.StatusBadGateway, "Backend unavailable")
	errBackendTimeout = pondsocket.NewError(http.StatusGatewayTimeout, "Backend timeout")
	errBackendAnswer  = pondsocket.NewError(http.StatusBadGateway, "Bad answer from backend")
)

// --- the client ----------------------------------------------------------

// backendProxy makes the calls.
type backendProxy struct {
	cfg       proxyConfig
	headers   []string // canonical names to forward
	maxAnswer int64
	log       *slog.Logger // rate-limited
	connect   *http.Client
	join      *http.Client
	event     *http.Client
}

func newBackendProxy(c proxyConfig, maxAnswer int64, log *slog.Logger) *backendProxy {
	p := &backendProxy{cfg: c, maxAnswer: maxAnswer, log: log}
	for _, h := range splitList(c.forwardHeaders) {
		p.headers = append(p.headers, http.CanonicalHeaderKey(h))
	}
	p.connect, p.join, p.event = p.newClient(), p.newClient(), p.newClient()
	return p
}

// newClient is one kind's client: its own bounded pool, every phase
// bounded by the timeout, no redirects (a 3xx is a bad answer), and no
// HTTP_PROXY from the environment (the backend is the application's own).
func (p *backendProxy) newClient() *http.Client {
	tr := &http.Transport{
		DialContext:           (&net.Dialer{Timeout: p.cfg.timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxConnsPerHost:       p.cfg.maxConns,
		MaxIdleConns:          p.cfg.maxConns,
		MaxIdleConnsPerHost:   p.cfg.maxConns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   p.cfg.timeout,
		ResponseHeaderTimeout: p.cfg.timeout,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       p.cfg.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// checker is an answer that can tell whether it is one of the shapes.
type checker interface{ check() error }

// call POSTs req to url and decodes the answer into out. Its error is what
// the client is told (502 or 504); the reason is logged here.
func (p *backendProxy) call(parent context.Context, client *http.Client, kind, url string, req any, out checker) *pondsocket.Error {
	body, err := json.Marshal(req)
	if err != nil { // assigns the library accepted always encode; be safe
		p.log.Error("proxy: cannot encode the request", "kind", kind, "err", err)
		return errBackendAnswer
	}
	ctx, cancel := context.WithTimeout(parent, p.cfg.timeout)
	defer cancel()
	start := time.Now()
	fail := func(msg string, e *pondsocket.Error, attrs ...any) *pondsocket.Error {
		if parent.Err() != nil { // the client went away: nobody to tell, nothing to report
			return e
		}
		p.log.Warn(msg, append([]any{"kind", kind, "url", url, "elapsed", time.Since(start).Round(time.Millisecond).String()}, attrs...)...)
		return e
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return fail("proxy: bad backend URL", errBackendDown, "err", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	resp, err := client.Do(hreq)
	if err != nil {
		if isTimeoutErr(err) {
			return fail("proxy: backend timed out", errBackendTimeout, "timeout", p.cfg.timeout.String())
		}
		return fail("proxy: backend unreachable", errBackendDown, "err", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, p.maxAnswer+1))
	if err != nil {
		if isTimeoutErr(err) {
			return fail("proxy: backend timed out", errBackendTimeout, "timeout", p.cfg.timeout.String())
		}
		return fail("proxy: backend unreachable", errBackendDown, "err", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fail("proxy: backend answered an error status", errBackendAnswer, "status", resp.StatusCode, "body", excerpt(data))
	}
	if int64(len(data)) > p.maxAnswer {
		return fail("proxy: backend answer too large", errBackendAnswer, "limit", p.maxAnswer)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields() // a misspelt "decline" must not mean accept
	if err := dec.Decode(out); err != nil {
		return fail("proxy: malformed backend answer", errBackendAnswer, "err", err, "body", excerpt(data))
	}
	if dec.More() {
		return fail("proxy: malformed backend answer", errBackendAnswer, "err", "data after the JSON object", "body", excerpt(data))
	}
	if err := out.check(); err != nil {
		return fail("proxy: malformed backend answer", errBackendAnswer, "err", err, "body", excerpt(data))
	}
	return nil
}

func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// excerpt is the start of an answer for the log.
func excerpt(b []byte) string {
	const n = 200
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// --- the three calls -----------------------------------------------------

// onConnect asks the connect backend. cl is the verified token (nil
// without auth.jwt), whose id and assigns are already set on ctx.
func (p *backendProxy) onConnect(ctx *pondsocket.ConnectionContext, cl *tokenClaims, token string) error {
	req := connectRequest{
		Path:       ctx.Route.Path,
		Query:      ctx.Route.Query,
		Headers:    map[string]string{},
		RemoteAddr: ctx.RemoteAddr(),
	}
	if len(ctx.Route.Params) > 0 {
		req.Params = ctx.Route.Params
	}
	if req.Query == nil {
		req.Query = map[string]string{}
	}
	for _, h := range p.headers {
		if v := ctx.Headers().Values(h); len(v) > 0 {
			req.Headers[h] = strings.Join(v, ", ")
		}
	}
	if cl != nil {
		req.User, req.Claims = cl.Subject, rawClaims(token)
	}
	var ans connectAnswer
	if e := p.call(context.Background(), p.connect, "connect", p.cfg.connectURL, req, &ans); e != nil {
		return ctx.Decline(e.Status, e.Message)
	}
	if ans.Decline != nil {
		return ctx.Decline(ans.Decline.status("Connection declined"))
	}
	if ans.User != "" {
		ctx.SetUserID(ans.User)
	}
	for k, v := range ans.Assigns {
		if !serverAssign(k) {
			ctx.SetAssigns(k, v)
		}
	}
	if ans.Presence != nil {
		ctx.SetAssigns(presenceAssign, ans.Presence)
	}
	if ans.Channels != nil {
		ctx.SetAssigns(channelsAssign, *ans.Channels)
	}
	if err := ctx.Accept(); err != nil { // assigns over the size limit
		p.log.Warn("proxy: backend answer not usable", "kind", "connect", "url", p.cfg.connectURL, "err", err)
		return ctx.Decline(errBackendAnswer.Status, errBackendAnswer.Message)
	}
	return nil
}

// rawClaims are a verified token's claims, all of them (tokenClaims keeps
// only those the server reads).
func rawClaims(token string) map[string]any {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return nil
	}
	return m
}

// onJoin asks the join backend; on acceptance it admits the user with the
// answer's assigns and tracks the answer's presence, or, on a channel with
// presence: true and no presence in the answer, the default one.
func (p *backendProxy) onJoin(ctx *pondsocket.JoinContext, presence bool) error {
	u := ctx.User()
	var payload json.RawMessage
	_ = ctx.ParsePayload(&payload)
	req := joinRequest{
		User:    u.UserID,
		Assigns: visibleAssigns(u.Assigns),
		Channel: ctx.ChannelName(),
		Params:  ctx.Route.Params,
		Payload: payload,
	}
	if len(req.Payload) == 0 {
		req.Payload = json.RawMessage("{}")
	}
	var ans joinAnswer
	if e := p.call(ctx.Context(), p.join, "join", p.cfg.joinURL, req, &ans); e != nil {
		return ctx.Decline(e.Status, e.Message)
	}
	if ans.Decline != nil {
		return ctx.Decline(ans.Decline.status("Join declined"))
	}
	if ctx.Accept(ans.Assigns).Err() != nil {
		return ctx.Err()
	}
	switch {
	case ans.Presence != nil:
		ans.Presence["id"] = u.UserID
		ctx.Track(ans.Presence)
	case presence:
		merged := &pondsocket.User{UserID: u.UserID, Assigns: map[string]any{}}
		for k, v := range u.Assigns {
			merged.Assigns[k] = v
		}
		for k, v := range ans.Assigns {
			merged.Assigns[k] = v
		}
		ctx.Track(presenceOf(merged))
	}
	return ctx.Err()
}

// onEvent asks the event backend what a client's event does.
func (p *backendProxy) onEvent(ctx *pondsocket.EventContext) error {
	u := ctx.User()
	ev := ctx.EventName()
	req := eventRequest{
		User:    u.UserID,
		Assigns: visibleAssigns(u.Assigns),
		Channel: ctx.ChannelName(),
		Event:   ev,
		Payload: ctx.RawPayload(),
	}
	var ans eventAnswer
	if e := p.call(ctx.Context(), p.event, "event", p.cfg.eventURL, req, &ans); e != nil {
		return e
	}
	if ans.Deny != nil {
		return pondsocket.NewError(ans.Deny.status("Event denied"))
	}
	send := func(m *proxyMessage, fn func(string, any) *pondsocket.EventContext) {
		if m == nil {
			return
		}
		event, payload := m.Event, m.Payload
		if event == "" {
			event = ev
		}
		if len(payload) == 0 {
			payload = ctx.RawPayload()
		}
		fn(event, payload)
	}
	// the reply first: a broadcast carries the request id too, and
	// sendForResponse resolves with the first message that has it
	send(ans.Reply, ctx.Reply)
	send(ans.Broadcast, ctx.Broadcast)
	send(ans.BroadcastFrom, ctx.BroadcastFrom)
	return ctx.Err()
}

// visibleAssigns are the assigns but the server's own (the channels
// claim, the chosen presence), for the backend.
func visibleAssigns(a map[string]any) map[string]any {
	out := make(map[string]any, len(a))
	for k, v := range a {
		if !serverAssign(k) {
			out[k] = v
		}
	}
	return out
}
