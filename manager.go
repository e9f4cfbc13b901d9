package pondsocket

import (
	"context"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/pondsocket/pondsocket/internal/engine"
)

// Manager serves PondSocket endpoints through an HTTP server the
// application already runs (net/http, chi, echo, gin, gorilla/mux, fiber…):
// mount HTTPHandler on the router, and upgraded connections are handed to
// the event loops — after the upgrade they are served exactly like the
// standalone Server's.
type Manager struct {
	*core
}

// NewManager builds a manager; it stops when ctx ends (or on Stop). It
// starts (and joins the cluster, with Options.PubSub) on the first request
// or Ready call.
func NewManager(ctx context.Context, opts Options) *Manager {
	o := mergeOptions(&opts)
	cfg := engineConfig("", ServerOptions{}, o)
	cfg.NoListener = true
	m := &Manager{core: newCore(o, cfg)}
	if ctx != nil && ctx.Done() != nil {
		go func() {
			<-ctx.Done()
			_ = m.Stop(5 * time.Second)
		}()
	}
	return m
}

// CreateEndpoint registers an endpoint. Its path is matched against the
// full request path the router hands over (mount "/ws/" and create
// "/ws/api/socket", as in the original PondSocket Go README).
func (m *Manager) CreateEndpoint(path string, handler func(*ConnectionContext) error) *Endpoint {
	return m.hub.CreateEndpoint(path, handler)
}

// Ready is Server.Ready for a manager: nil once started and, with
// Options.PubSub, while the bus is reachable.
func (m *Manager) Ready() error {
	if err := m.start(nil); err != nil {
		return err
	}
	return m.ready()
}

// Stop closes every connection gracefully (close 1001), stops the cluster
// node and returns by the deadline; handlers still running then are
// abandoned, as in Server.Stop.
func (m *Manager) Stop(timeout time.Duration) error { return m.stop(timeout) }

// Stats returns a snapshot of the counters.
func (m *Manager) Stats() Stats { return m.stats() }

// HTTPHandler returns the handler to mount on a router for the WebSocket
// routes; on an endpoint path it also serves the SSE transport
// (docs/protocol.md §9), see serveSSE. It runs the endpoint's connection handler with the request's
// headers, cookies and query (after the router's own middleware), answers
// a decline with a normal HTTP response, and otherwise completes the
// upgrade, hijacks the connection and hands it to the event loops together
// with any bytes the server had already buffered.
func (m *Manager) HTTPHandler() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := m.start(nil); err != nil {
			m.log.Error("pondsocket manager cannot start", "err", err)
			http.Error(w, "WebSocket service unavailable", http.StatusServiceUnavailable)
			return
		}
		if !engine.WantsUpgrade(r.Header) && m.serveSSE(w, r) {
			return
		}
		m.eng.ServeUpgrade(w, r)
	}
}

// serveSSE serves the SSE transport's requests on an endpoint path and
// reports whether it did. A stream's GET runs the connection handler as an
// upgrade does; once accepted, the connection is hijacked, the stream's
// head written, and the connection handed to the event loops (or, when it
// cannot ride them — TLS, a framework's wrapper — to the fallback
// transport), so a stream costs no goroutine of the HTTP server. POST,
// DELETE and OPTIONS are answered here, reaching the stream by its id.
func (m *Manager) serveSSE(w http.ResponseWriter, r *http.Request) bool {
	if !m.hub.hasEndpoint(r.URL.Path) {
		return false
	}
	origin := r.Header.Get("Origin")
	switch r.Method {
	case http.MethodOptions:
		status, hdr := m.eng.Preflight(origin)
		for k, v := range hdr {
			w.Header()[k] = v
		}
		if status != http.StatusNoContent {
			http.Error(w, "Origin not allowed", status)
			return true
		}
		w.WriteHeader(status)
		return true
	case http.MethodPost, http.MethodDelete:
	case http.MethodGet:
		if !engine.WantsEventStream(r.Header) {
			return false
		}
	default:
		return false
	}
	if !m.eng.OriginAllowed(origin) {
		http.Error(w, "Origin not allowed", http.StatusForbidden)
		return true
	}
	engine.CORS(w.Header(), origin)
	if r.Method == http.MethodGet {
		m.openSSE(w, r)
		return true
	}
	id := r.Header.Get(engine.SSEHeaderID)
	if id == "" {
		http.Error(w, "Missing "+engine.SSEHeaderID+" header", http.StatusBadRequest)
		return true
	}
	if r.Method == http.MethodDelete {
		if m.eng.SSEClose(id) != http.StatusNoContent {
			http.Error(w, "Unknown connection", http.StatusNotFound)
			return true
		}
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	limit := int64(m.o.MaxMessageSize)
	if r.ContentLength > limit {
		http.Error(w, "Message too large", http.StatusRequestEntityTooLarge)
		return true
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		http.Error(w, "Message too large", http.StatusRequestEntityTooLarge)
		return true
	}
	switch status := m.eng.SSEMessage(id, body); status {
	case http.StatusAccepted:
		w.WriteHeader(status)
	case http.StatusBadRequest:
		http.Error(w, "Message is not UTF-8", status)
	case http.StatusTooManyRequests:
		http.Error(w, "Too many messages waiting for this stream", status)
	default:
		http.Error(w, "Unknown connection", status)
	}
	return true
}

// openSSE runs the connection handler for a stream and hands the accepted
// stream to the engine.
func (m *Manager) openSSE(w http.ResponseWriter, r *http.Request) {
	id := engine.NewSSEID()
	d := m.hub.Connect(&handshake{Path: strings.Clone(r.URL.Path), RawQuery: strings.Clone(r.URL.RawQuery),
		Header: engine.CloneHeader(r.Header), RemoteAddr: strings.Clone(r.RemoteAddr), SSEID: id})
	if d.Client == nil {
		http.Error(w, d.Message, d.Status)
		return
	}
	release := func() {
		for _, f := range d.Greeting {
			f.Release()
		}
	}
	if !m.eng.Reserve() {
		release()
		http.Error(w, "Too many connections", http.StatusServiceUnavailable)
		return
	}
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		m.eng.Unreserve()
		release()
		m.log.Error("hijack failed", "remote", r.RemoteAddr, "err", err)
		http.Error(w, "this HTTP server cannot hand connections over: "+err.Error(), http.StatusInternalServerError)
		return
	}
	_ = conn.SetDeadline(time.Time{}) // the HTTP server's timeouts end with the request
	_, err = conn.Write(engine.SSEHead(id, r.Header.Get("Origin"), nil))
	if err == nil {
		err = m.eng.AdoptSSE(conn, nil, engine.Decision{Accept: true, Context: d.Client, Greeting: d.Greeting}, id)
	}
	if err != nil {
		m.eng.Unreserve()
		release()
		m.log.Warn("cannot hand the event stream to the engine", "remote", r.RemoteAddr, "err", err)
		_ = conn.Close()
	}
}
