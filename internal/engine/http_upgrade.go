package engine

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/pondsocket/pondsocket/internal/wsframe"
)

// The net/http side of the upgrade. An application's router (net/http,
// chi, echo, gin, gorilla/mux, fiber's adaptor) hands ServeUpgrade the
// request; the engine checks it with the same rules as its own listener
// (CheckUpgrade, the Origin list, the connection limit), asks the layer
// above for its decision, then hijacks the connection, writes the 101
// (SwitchingProtocols) and adopts it: plain TCP onto an event loop, a TLS
// or wrapped connection onto the fallback transport. Both upgrade paths
// therefore share every byte the engine writes.

// ServeUpgrade answers r: an HTTP error for a request that is not a valid
// upgrade or that the Handler's Upgrade declines, otherwise the switch to
// WebSocket. It runs on the HTTP server's goroutine, which the Handler's
// Upgrade may block.
func (e *Engine) ServeUpgrade(w http.ResponseWriter, r *http.Request) {
	if !WantsUpgrade(r.Header) {
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "Expected a WebSocket upgrade", http.StatusUpgradeRequired)
		return
	}
	// the same checks as the engine's own listener, before any user code
	status, msg, hdr := CheckUpgrade(r.Method, r.Proto, r.Host, r.Header)
	if status == 0 && e.draining.Load() {
		status, msg = http.StatusServiceUnavailable, "Server shutting down"
	}
	if status == 0 && !e.OriginAllowed(r.Header.Get("Origin")) {
		status, msg = http.StatusForbidden, "Origin not allowed"
	}
	if status != 0 {
		for k, v := range hdr {
			w.Header()[k] = v
		}
		e.stats.Declined.Add(1)
		http.Error(w, msg, status)
		return
	}
	// copies: some adaptors (fasthttp's) hand over strings that alias
	// buffers they reuse after the handler returns
	req := &Request{Method: r.Method, URI: strings.Clone(r.URL.RequestURI()), Path: strings.Clone(r.URL.Path),
		RawQuery: strings.Clone(r.URL.RawQuery), Proto: r.Proto, Host: strings.Clone(r.Host),
		Header: CloneHeader(r.Header), RemoteAddr: remoteAddr(r.RemoteAddr)}
	d := e.decide(req)
	release := func() {
		for _, f := range d.Greeting {
			f.Release()
		}
	}
	if !d.Accept {
		release()
		e.stats.Declined.Add(1)
		status := d.Status
		if status < 400 || status > 599 {
			status = http.StatusBadRequest
		}
		if d.Message == "" {
			d.Message = http.StatusText(status)
		}
		for k, v := range d.Header {
			w.Header()[k] = v
		}
		http.Error(w, d.Message, status)
		return
	}
	if !e.reserve() {
		release()
		e.stats.Declined.Add(1)
		http.Error(w, "Too many connections", http.StatusServiceUnavailable)
		return
	}
	// ResponseController follows Unwrap chains of middleware wrappers.
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		e.upgraded.Add(-1)
		release()
		http.Error(w, "this HTTP server cannot hand connections over: "+err.Error(), http.StatusInternalServerError)
		e.rlog.Error("hijack failed", "remote", r.RemoteAddr, "err", err)
		return
	}
	prefix, err := buffered(brw)
	deflate := e.cfg.EnableCompression && NegotiateDeflate(r.Header)
	if err == nil {
		_, err = conn.Write(SwitchingProtocols(req.Header.Get("Sec-Websocket-Key"), deflate, d.Header))
	}
	if err == nil {
		dec := Decision{Accept: true, Context: d.Context, Greeting: d.Greeting}
		if Adoptable(conn) {
			err = e.adopt(conn, prefix, nil, dec, deflate)
		} else {
			// TLS (an HTTPS server) or a framework's wrapped
			// connection: the goroutine-based fallback transport
			err = e.adoptStream(conn, prefix, nil, dec, deflate)
		}
	}
	if err != nil {
		e.upgraded.Add(-1)
		release()
		e.rlog.Warn("cannot hand the connection to the event loops", "remote", r.RemoteAddr, "err", err)
		// the 101 may be out: say goodbye in WebSocket terms
		_, _ = conn.Write(wsframe.Close(1011, ""))
		_ = conn.Close()
	}
}

// CloneHeader copies h down to the bytes of every string: some adaptors
// (fasthttp's) hand over headers whose strings alias buffers they reuse.
func CloneHeader(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		c := make([]string, len(vs))
		for i, v := range vs {
			c[i] = strings.Clone(v)
		}
		out[strings.Clone(k)] = c
	}
	return out
}

// buffered returns what the HTTP server's reader holds beyond the request.
func buffered(brw *bufio.ReadWriter) ([]byte, error) {
	if brw == nil || brw.Reader == nil {
		return nil, nil
	}
	n := brw.Reader.Buffered()
	if n == 0 {
		return nil, nil
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(brw.Reader, b); err != nil {
		return nil, err
	}
	return b, nil
}

// remoteAddr turns net/http's "host:port" into a net.Addr.
func remoteAddr(s string) net.Addr {
	if a, err := net.ResolveTCPAddr("tcp", s); err == nil {
		return a
	}
	return stringAddr(s)
}

type stringAddr string

func (a stringAddr) Network() string { return "tcp" }
func (a stringAddr) String() string  { return string(a) }
