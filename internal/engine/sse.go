package engine

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/pondsocket/pondsocket/internal/wsframe"

	"github.com/panjf2000/gnet/v2"
)

// Server-Sent Events (docs/protocol.md §9).
//
// An SSE stream is a connection like a WebSocket one: it lives on an event
// loop, in stateOpen with c.sse set, and everything the write path does for
// a WebSocket (batched writes, the outbound limits, the timers) applies to
// it. Only the bytes differ: a frame goes out in its SSE form, derived once
// from the frame's payload and shared by every SSE recipient, as the
// compressed form is shared by every deflate recipient. The client's
// messages arrive as separate POST requests on other TCP connections; the
// engine finds the stream by the id it announced (X-Connection-ID and the
// CONNECT event) in a map that holds only open streams, and runs
// Handler.OnMessage on the stream's own loop, so a stream's messages are
// handled in order on one loop exactly as a WebSocket's frames are.
//
// The id is a credential: whoever knows it can speak for the connection.
// It is random (the layer above chooses it, never the user id others see)
// and it is only ever sent to the stream's own client.

// SSE request kinds recognised on an endpoint path.
const (
	sseNone = iota
	sseStream
	sseMessage
	sseClose
	ssePreflight
)

// sseKind says what a request on an SSE-capable path asks for.
func (e *Engine) sseKind(r *Request) int {
	if e.cfg.SSEPath == nil || !e.cfg.SSEPath(r.Path) {
		return sseNone
	}
	switch r.Method {
	case http.MethodGet:
		if WantsEventStream(r.Header) {
			return sseStream
		}
	case http.MethodPost:
		return sseMessage
	case http.MethodDelete:
		return sseClose
	case http.MethodOptions:
		return ssePreflight
	}
	return sseNone
}

// WantsEventStream reports whether a GET asks for an event stream (an
// EventSource sends Accept: text/event-stream).
func WantsEventStream(h http.Header) bool {
	for _, v := range h.Values("Accept") {
		for _, t := range strings.Split(v, ",") {
			mt, _, _ := strings.Cut(t, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "text/event-stream") {
				return true
			}
		}
	}
	return false
}

// SSEHeaderID is the request and response header carrying a stream's id.
const SSEHeaderID = "X-Connection-ID"

// CORS adds the cross-origin headers of the SSE transport to h for a
// request from origin (nothing for a request without Origin). The caller
// has checked the origin with OriginAllowed.
func CORS(h http.Header, origin string) {
	if origin == "" {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Set("Access-Control-Expose-Headers", SSEHeaderID)
	h.Add("Vary", "Origin")
}

// Preflight is the answer to an OPTIONS preflight on an endpoint path:
// 204 with the CORS headers for an allowed origin, 403 otherwise.
func (e *Engine) Preflight(origin string) (int, http.Header) {
	if !e.OriginAllowed(origin) {
		return 403, nil
	}
	h := http.Header{}
	CORS(h, origin)
	h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
	h.Set("Access-Control-Allow-Headers", "Content-Type, "+SSEHeaderID)
	h.Set("Access-Control-Max-Age", "600")
	return 204, h
}

// SSEHead is the response head that opens an event stream.
func SSEHead(id, origin string, extra http.Header) []byte {
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: keep-alive\r\nX-Accel-Buffering: no\r\n")
	h := http.Header{}
	for k, v := range extra {
		h[k] = v
	}
	for _, k := range []string{"Content-Type", "Cache-Control", "Connection", "X-Accel-Buffering", "Content-Length", "Transfer-Encoding"} {
		h.Del(k)
	}
	h.Set(SSEHeaderID, id)
	CORS(h, origin)
	_ = h.Write(&b)
	b.WriteString("\r\n")
	return b.Bytes()
}

// sseKeepalive is the comment written every PingInterval.
var sseKeepalive = []byte(": keepalive\n\n")

// sseFrame is f's SSE form: one unnamed event whose data lines are the
// lines of the payload (several messages sharing a frame are separated by
// "\n"; each becomes a data line, which EventSource joins with "\n" again).
// Computed once per frame and shared by every SSE recipient.
func sseFrame(f *wsframe.Frame) []byte {
	return f.Derived("sse", func(p []byte) []byte {
		out := make([]byte, 0, len(p)+16)
		for len(p) > 0 {
			i := bytes.IndexAny(p, "\r\n")
			line := p
			if i >= 0 {
				line, p = p[:i], p[i+1:]
			} else {
				p = nil
			}
			if len(line) == 0 {
				continue
			}
			out = append(out, "data: "...)
			out = append(out, line...)
			out = append(out, '\n')
		}
		if len(out) == 0 {
			return nil // nothing to say (a control frame's empty payload)
		}
		return append(out, '\n')
	})
}

// sseStreams maps the ids of open streams to their connections.
type sseStreams struct {
	mu sync.Mutex
	m  map[string]*Conn
}

func (s *sseStreams) add(id string, c *Conn) {
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[string]*Conn)
	}
	s.m[id] = c
	s.mu.Unlock()
}

func (s *sseStreams) remove(id string, c *Conn) {
	s.mu.Lock()
	if s.m[id] == c {
		delete(s.m, id)
	}
	s.mu.Unlock()
}

func (s *sseStreams) get(id string) *Conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[id]
}

// maxSSEPending is how many bytes of POSTed messages one stream may have
// waiting for its loop: each POST is answered before the loop hands the
// message on, so without a bound a flood of POSTs to one stream would pile
// up copies in the loop's inbox while that loop is busy.
func (e *Engine) maxSSEPending() int64 { return 4 * int64(e.cfg.MaxSSEBody) }

// SSEMessage delivers one client message (a POST body) to the stream id:
// Handler.OnMessage runs on the stream's loop, after what is already
// queued there. It returns the HTTP status to answer: 202, 404 for an
// unknown (or closed) stream, 400 for a body that is not UTF-8, 413 for a
// body over MaxSSEBody, 429 while the stream's earlier messages waiting
// for its loop exceed maxSSEPending. Safe from any goroutine.
func (e *Engine) SSEMessage(id string, body []byte) int {
	if len(body) > e.cfg.MaxSSEBody {
		return 413
	}
	c := e.sse.get(id)
	if c == nil {
		return 404
	}
	if !utf8.Valid(body) {
		return 400
	}
	if c.ssePending.Add(int64(len(body))) > e.maxSSEPending() {
		c.ssePending.Add(-int64(len(body)))
		return 429
	}
	data := append([]byte(nil), body...)
	c.exec(func() {
		c.ssePending.Add(-int64(len(data)))
		if c.state != stateOpen || !c.sse {
			return
		}
		now := time.Now().UnixNano()
		c.lastRead, c.lastData = now, now
		e.stats.MessagesIn.Add(c.loop.idx, 1)
		e.stats.BytesIn.Add(c.loop.idx, int64(len(data)))
		e.h.OnMessage(c, wsframe.OpText, data)
	})
	return 202
}

// SSEClose ends the stream id as a disconnect; 204, or 404 for an unknown
// stream. Safe from any goroutine.
func (e *Engine) SSEClose(id string) int {
	c := e.sse.get(id)
	if c == nil {
		return 404
	}
	c.Close(1000, "")
	return 204
}

// readSSERequest serves a POST, DELETE or OPTIONS on an endpoint path on
// the loop (each is a map look-up and a post to the stream's loop).
func (c *Conn) readSSERequest(kind int, req *Request, buf []byte, end int) gnet.Action {
	e := c.e
	origin := req.Header.Get("Origin")
	if kind != sseMessage {
		e.stats.HTTPRequests.Add(1) // a POST counts once its body is in
	}
	if kind == ssePreflight {
		status, hdr := e.Preflight(origin)
		if status != 204 {
			return c.answer(status, "Origin not allowed", nil)
		}
		return c.answerEmpty(status, hdr)
	}
	if !e.OriginAllowed(origin) {
		return c.answer(403, "Origin not allowed", nil)
	}
	hdr := http.Header{}
	CORS(hdr, origin)
	id := req.Header.Get(SSEHeaderID)
	if id == "" {
		return c.answer(400, "Missing "+SSEHeaderID+" header", hdr)
	}
	if kind == sseClose {
		status := e.SSEClose(id)
		if status != 204 {
			return c.answer(status, "Unknown connection", hdr)
		}
		return c.answerEmpty(status, hdr)
	}
	if te := req.Header.Get("Transfer-Encoding"); te != "" {
		return c.answer(411, "Chunked request bodies are not supported; send Content-Length", hdr)
	}
	n := 0
	if cl := req.Header.Get("Content-Length"); cl != "" {
		v, err := strconv.Atoi(cl)
		if err != nil || v < 0 {
			return c.answer(400, "Invalid Content-Length", hdr)
		}
		n = v
	}
	if n > e.cfg.MaxSSEBody {
		return c.answer(413, "Message too large", hdr)
	}
	if e.sse.get(id) == nil {
		return c.answer(404, "Unknown connection", hdr)
	}
	if len(buf) < end+n {
		c.waitForBody(end + n)
		return gnet.None
	}
	e.stats.HTTPRequests.Add(1)
	switch status := e.SSEMessage(id, buf[end:end+n]); status {
	case 202:
		return c.answerEmpty(202, hdr)
	case 400:
		return c.answer(400, "Message is not UTF-8", hdr)
	case 429:
		return c.answer(429, "Too many messages waiting for this stream", hdr)
	default:
		return c.answer(status, "Unknown connection", hdr)
	}
}

// answerEmpty writes a response without a body and marks the connection
// done, as answer does.
func (c *Conn) answerEmpty(status int, hdr http.Header) gnet.Action {
	_, _ = c.gc.Discard(-1)
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + statusText(status) + "\r\n")
	_ = hdr.Write(&b)
	b.WriteString("Content-Length: 0\r\nConnection: close\r\n\r\n")
	c.e.stats.Writes.Add(c.loop.idx, 1)
	_, _ = c.gc.Write(b.Bytes())
	c.state = stateDone
	c.since = time.Now().UnixNano()
	return gnet.Close
}

// endStream ends an SSE connection that the server closes: the layer
// above learns it at once, the stream leaves the id map, and the socket
// closes after what is queued has been written (the close runs as a task,
// never in the middle of a sweep over the loop's connections).
func (c *Conn) endStream(code uint16) {
	if c.state != stateOpen {
		return
	}
	c.closeCode = code
	c.state = stateDone
	c.since = time.Now().UnixNano()
	c.e.sse.remove(c.sseID, c)
	c.notifyClosed(int(code), nil)
	c.exec(func() {
		if c.state == stateDone {
			_ = c.loop.el.closeSocket(c.gc)
		}
	})
}

// NewSSEID is a fresh stream id: 128 random bits, URL-safe.
func NewSSEID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validateStream is validateUpgrade for an event stream.
func (e *Engine) validateStream(r *Request) (int, string, http.Header) {
	if e.draining.Load() {
		return 503, "Server shutting down", nil
	}
	if r.Host == "" && r.Proto == "HTTP/1.1" {
		return 400, "Missing Host header", nil
	}
	if !e.OriginAllowed(r.Header.Get("Origin")) {
		return 403, "Origin not allowed", nil
	}
	return 0, "", nil
}

// openStream applies an accepted decision to an event stream (on the
// loop): the 200 head and the greeting events leave in one write, and the
// stream becomes reachable by its id.
func (c *Conn) openStream(d Decision) {
	e := c.e
	now := time.Now().UnixNano()
	c.state = stateOpen
	c.opened = true
	c.ctx = d.Context
	c.sseID = c.req.SSEID
	c.since, c.lastRead, c.lastData, c.lastPing = now, now, now, now
	iov := make([][]byte, 0, 1+len(d.Greeting))
	iov = append(iov, SSEHead(c.sseID, c.req.Header.Get("Origin"), d.Header))
	for _, f := range d.Greeting {
		if b := sseFrame(f); len(b) > 0 {
			iov = append(iov, b)
		}
	}
	// Reachable before the client can know the id: a POST that follows
	// the CONNECT at once must find the stream. Its message runs as a task
	// on this loop, so after OnOpen below. socketClosed removes the id.
	e.sse.add(c.sseID, c)
	e.stats.Writes.Add(c.loop.idx, 1)
	_, _ = c.gc.Writev(iov)
	e.stats.Accepted.Add(1)
	if c.state == stateOpen {
		e.h.OnOpen(c)
	}
	c.req = nil
}
