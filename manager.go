package pondsocket

import (
	"context"
	"net/http"
	"time"
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
// routes. It runs the endpoint's connection handler with the request's
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
		m.eng.ServeUpgrade(w, r, m.br.Upgrade)
	}
}
