package engine

import (
	"bufio"
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/pondsocket/pondsocket/internal/wsframe"

	"github.com/panjf2000/gnet/v2"
)

// Request is a parsed HTTP request head: an upgrade request handed to
// Handler.Upgrade, or a plain request routed to Config.HTTP. It is
// immutable once handed over.
type Request struct {
	Method     string
	URI        string // request-target as sent: path and query
	Path       string // URI before the first '?'
	RawQuery   string // URI after the first '?'
	Proto      string
	Host       string
	Header     http.Header
	RemoteAddr net.Addr
	Body       []byte // plain HTTP requests only
	// SSEID is set on a request for a Server-Sent Events stream (sse.go):
	// the stream's random id, which the accepted stream announces in its
	// X-Connection-ID header and which its client must send with every
	// POST and DELETE. Empty for a WebSocket upgrade.
	SSEID string

	head []byte
}

// Decision is the Handler's answer to an upgrade request.
type Decision struct {
	Accept bool
	// Status and Message form the HTTP response of a declined upgrade
	// (defaults 400 and the status text).
	Status  int
	Message string
	// Header is added to the response (101 or the decline).
	Header http.Header
	// Context is attached to the connection on accept (Conn.Context).
	Context any
	// Greeting frames are written right after the 101 response, in the same
	// write. The engine takes over one reference of each.
	Greeting []*wsframe.Frame
}

var crlfcrlf = []byte("\r\n\r\n")

// waitForBody: the head is parsed and its body ends at end. Reads are not
// looked at again until that many bytes are in, so a body trickling in
// costs no rescans of what arrived before; the head is then parsed once
// more, with the body complete. The handshake timeout bounds the wait.
func (c *Conn) waitForBody(end int) {
	c.scanned = 0
	c.bodyEnd = end
}

// bareLF reports whether buf has, from index from on, a line feed not
// preceded by a carriage return. Such a head would never complete (the
// engine looks for CRLFCRLF) and would wait for the handshake timeout;
// it is refused at once instead (RFC 9112 §2.2 lets a server reject it).
func bareLF(buf []byte, from int) bool {
	for i := from; i < len(buf); {
		j := bytes.IndexByte(buf[i:], '\n')
		if j < 0 {
			return false
		}
		i += j
		if i == 0 || buf[i-1] != '\r' {
			return true
		}
		i++
	}
	return false
}

// readHandshake accumulates the request head in gnet's inbound buffer (it
// may arrive a byte at a time) and acts on it once complete.
func (c *Conn) readHandshake() gnet.Action {
	e := c.e
	gc := c.gc
	buf, _ := gc.Peek(-1)
	if len(buf) < c.bodyEnd {
		return gnet.None // the body is still arriving; its head was checked
	}
	c.bodyEnd = 0
	limit := e.cfg.MaxHeaderBytes
	from := c.scanned - 3
	if from < 0 {
		from = 0
	}
	i := bytes.Index(buf[from:], crlfcrlf)
	if i < 0 {
		if bareLF(buf, from) {
			return c.answer(400, "Header lines must end in CRLF", nil)
		}
		if len(buf) > limit {
			return c.answer(431, "Request header too large", nil)
		}
		c.scanned = len(buf)
		return gnet.None
	}
	end := from + i + 4
	// only the head's lines need CRLF: a body may hold any bytes
	if bareLF(buf[:end], from) {
		return c.answer(400, "Header lines must end in CRLF", nil)
	}
	if end > limit {
		return c.answer(431, "Request header too large", nil)
	}
	req, err := parseHead(buf[:end])
	if err != nil {
		return c.answer(400, err.Error(), nil)
	}
	req.RemoteAddr = c.remote

	kind := sseNone
	if !headerHasToken(req.Header, "Upgrade", "websocket") {
		switch kind = e.sseKind(req); kind {
		case sseNone:
			return c.readPlainHTTP(req, buf, end)
		case sseMessage, sseClose, ssePreflight:
			return c.readSSERequest(kind, req, buf, end)
		}
	}
	_, _ = gc.Discard(-1)
	if c.overCap {
		e.stats.Declined.Add(1)
		return c.answer(503, "Server at its connection limit", nil)
	}
	validate := e.validateUpgrade
	if kind == sseStream {
		c.sse = true
		req.SSEID = NewSSEID()
		validate = e.validateStream
	}
	if status, msg, hdr := validate(req); status != 0 {
		e.stats.Declined.Add(1)
		return c.answer(status, msg, hdr)
	}
	// The origin passed: a page may read why its stream is refused (the
	// only way a browser learns it, docs/protocol.md §1.3).
	var limitHdr http.Header
	if c.sse {
		limitHdr = http.Header{}
		CORS(limitHdr, req.Header.Get("Origin"))
	}
	if !e.reserve() {
		e.stats.Declined.Add(1)
		return c.answer(503, "Too many connections", limitHdr)
	}
	c.reserved = true
	c.req = req
	c.state = stateDeciding
	c.since = time.Now().UnixNano()
	if e.cfg.InlineUpgrade {
		c.applyDecision(e.decide(req))
		return gnet.None
	}
	// Connection handlers may block (a database, an auth service): each
	// runs on its own goroutine, and at most MaxPendingUpgrades at once, so
	// a slow dependency cannot pile up goroutines without bound.
	if e.deciding.Add(1) > int64(e.cfg.MaxPendingUpgrades) {
		e.deciding.Add(-1)
		e.stats.Declined.Add(1)
		return c.answer(503, "Too many upgrades in progress", limitHdr)
	}
	go func() {
		d := e.decide(req)
		e.deciding.Add(-1)
		c.exec(func() { c.applyDecision(d) })
	}()
	return gnet.None
}

// decide runs the handler's Upgrade, turning a panic into a 500.
func (e *Engine) decide(r *Request) (d Decision) {
	defer func() {
		if p := recover(); p != nil {
			e.rlog.Error("upgrade handler panicked", "path", r.Path, "panic", p, "stack", string(debug.Stack()))
			d = Decision{Status: 500, Message: "Internal Server Error"}
		}
	}()
	return e.h.Upgrade(r)
}

func (e *Engine) reserve() bool {
	max := int64(e.cfg.MaxConnections)
	for {
		n := e.upgraded.Load()
		if max > 0 && n >= max {
			return false
		}
		if e.upgraded.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// applyDecision runs on the loop once the handler has decided.
func (c *Conn) applyDecision(d Decision) {
	release := func() {
		for _, f := range d.Greeting {
			f.Release()
		}
	}
	defer release()
	e := c.e
	if c.state != stateDeciding {
		return // the connection died (or timed out) meanwhile
	}
	if e.draining.Load() {
		d = Decision{Status: 503, Message: "Server shutting down"}
	}
	if !d.Accept {
		e.stats.Declined.Add(1)
		status := d.Status
		if status < 400 || status > 599 {
			status = 400
		}
		msg := d.Message
		if msg == "" {
			msg = http.StatusText(status)
		}
		hdr := d.Header
		if c.sse {
			// a cross-origin page may read why its stream was refused
			hdr = hdr.Clone()
			if hdr == nil {
				hdr = http.Header{}
			}
			CORS(hdr, c.req.Header.Get("Origin"))
		}
		if c.answer(status, msg, hdr) == gnet.Close {
			_ = c.loop.el.closeSocket(c.gc)
		}
		return
	}
	if c.sse {
		c.openStream(d)
		return
	}
	hdr := d.Header
	if e.cfg.EnableCompression && NegotiateDeflate(c.req.Header) {
		c.deflate = true
		e.stats.Deflate.Add(1)
	}
	out := SwitchingProtocols(c.req.Header.Get("Sec-Websocket-Key"), c.deflate, hdr)
	now := time.Now().UnixNano()
	c.state = stateOpen
	c.opened = true
	c.ctx = d.Context
	c.since, c.lastRead, c.lastData, c.lastPing = now, now, now, now
	iov := make([][]byte, 0, 1+len(d.Greeting))
	iov = append(iov, out)
	for _, f := range d.Greeting {
		iov = append(iov, f.Bytes())
	}
	e.stats.Writes.Add(c.loop.idx, 1)
	if len(iov) == 1 {
		_, _ = c.gc.Write(iov[0])
	} else {
		_, _ = c.gc.Writev(iov)
	}
	e.stats.Accepted.Add(1)
	if c.state == stateOpen {
		e.h.OnOpen(c)
	}
	c.req = nil
}

// answer writes a complete HTTP response and marks the connection done; the
// caller closes it (returning gnet.Close from a callback, or el.Close).
func (c *Conn) answer(status int, msg string, hdr http.Header) gnet.Action {
	_, _ = c.gc.Discard(-1)
	c.e.stats.Writes.Add(c.loop.idx, 1)
	_, _ = c.gc.Write(httpResponse(status, msg, hdr))
	c.state = stateDone
	c.since = time.Now().UnixNano()
	return gnet.Close
}

func (e *Engine) validateUpgrade(r *Request) (int, string, http.Header) {
	if e.draining.Load() {
		return 503, "Server shutting down", nil
	}
	if status, msg, hdr := CheckUpgrade(r.Method, r.Proto, r.Host, r.Header); status != 0 {
		return status, msg, hdr
	}
	if !e.OriginAllowed(r.Header.Get("Origin")) {
		return 403, "Origin not allowed", nil
	}
	return 0, "", nil
}

// WantsUpgrade reports whether a request asks for a WebSocket upgrade.
func WantsUpgrade(h http.Header) bool { return headerHasToken(h, "Upgrade", "websocket") }

// CheckUpgrade validates a WebSocket upgrade request (RFC 6455 §4.2.1)
// and returns the HTTP status, message and headers of the refusal, or
// status 0. The engine's listener and the net/http bridge both use it.
func CheckUpgrade(method, proto, host string, h http.Header) (int, string, http.Header) {
	switch {
	case method != http.MethodGet:
		return 405, "WebSocket upgrade requires GET", http.Header{"Allow": {"GET"}}
	case proto != "HTTP/1.1":
		return 400, "WebSocket upgrade requires HTTP/1.1", nil
	case host == "":
		return 400, "Missing Host header", nil
	case !WantsUpgrade(h):
		return 400, "Upgrade header must be websocket", nil
	case !headerHasToken(h, "Connection", "upgrade"):
		return 400, "Connection header must contain Upgrade", nil
	case h.Get("Sec-Websocket-Version") != "13":
		return 426, "Unsupported WebSocket version", http.Header{"Sec-Websocket-Version": {"13"}}
	}
	key := h.Get("Sec-Websocket-Key")
	if raw, err := base64.StdEncoding.DecodeString(key); err != nil || len(raw) != 16 {
		return 400, "Invalid Sec-WebSocket-Key", nil
	}
	return 0, "", nil
}

// SwitchingProtocols is the 101 response to a request CheckUpgrade
// accepted (RFC 6455 §4.2.2), with the permessage-deflate agreement when
// deflate is set and the application's extra headers (values are
// sanitised by http.Header.Write, so they cannot inject lines). The
// engine's listener and the net/http bridge both answer with it.
func SwitchingProtocols(key string, deflate bool, extra http.Header) []byte {
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ")
	b.WriteString(base64.StdEncoding.EncodeToString(sum[:]))
	b.WriteString("\r\n")
	if deflate {
		b.WriteString("Sec-WebSocket-Extensions: " + DeflateExtension + "\r\n")
	}
	if len(extra) > 0 {
		extra = extra.Clone()
		for _, k := range []string{"Upgrade", "Connection", "Sec-Websocket-Accept", "Sec-Websocket-Extensions", "Content-Length", "Transfer-Encoding"} {
			extra.Del(k)
		}
		_ = extra.Write(&b)
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// OriginAllowed applies CheckOrigin/AllowedOrigins. A request without
// Origin (not a browser) passes; browsers always send one.
func (e *Engine) OriginAllowed(origin string) bool {
	if !e.cfg.CheckOrigin || origin == "" {
		return true
	}
	for _, o := range e.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// readPlainHTTP handles a request that is not an upgrade: it waits for the
// body (Content-Length only) and hands the request to Config.HTTP on its
// own goroutine.
func (c *Conn) readPlainHTTP(req *Request, buf []byte, end int) gnet.Action {
	e := c.e
	if te := req.Header.Get("Transfer-Encoding"); te != "" {
		return c.answer(411, "Chunked request bodies are not supported; send Content-Length", nil)
	}
	n := 0
	if cl := req.Header.Get("Content-Length"); cl != "" {
		v, err := strconv.Atoi(cl)
		if err != nil || v < 0 {
			return c.answer(400, "Invalid Content-Length", nil)
		}
		n = v
	}
	if n > e.cfg.MaxBodyBytes {
		return c.answer(413, "Request body too large", nil)
	}
	if len(buf) < end+n {
		c.waitForBody(end + n)
		return gnet.None
	}
	req.Body = append([]byte(nil), buf[end:end+n]...)
	_, _ = c.gc.Discard(-1)
	c.state = stateHTTP
	c.since = time.Now().UnixNano()
	go e.serveHTTP(c, req)
	return gnet.None
}

func (e *Engine) serveHTTP(c *Conn, r *Request) {
	e.stats.HTTPRequests.Add(1)
	out := e.runHTTP(r)
	c.exec(func() {
		if c.state != stateHTTP {
			return
		}
		c.writeNow(out)
		c.state = stateDone
		_ = c.loop.el.closeSocket(c.gc)
	})
}

func (e *Engine) runHTTP(r *Request) (out []byte) {
	if e.cfg.HTTP == nil {
		return httpResponse(404, "Not Found", nil)
	}
	hr, err := http.ReadRequest(bufio.NewReader(io.MultiReader(bytes.NewReader(r.head), bytes.NewReader(r.Body))))
	if err != nil {
		return httpResponse(400, "Bad Request", nil)
	}
	hr.RemoteAddr = r.RemoteAddr.String()
	rec := &recorder{header: http.Header{}}
	defer func() {
		if p := recover(); p != nil {
			e.rlog.Error("HTTP handler panicked", "path", r.Path, "panic", p, "stack", string(debug.Stack()))
			out = httpResponse(500, "Internal Server Error", nil)
		}
	}()
	e.cfg.HTTP.ServeHTTP(rec, hr)
	return rec.response()
}

// recorder is the http.ResponseWriter given to Config.HTTP: it buffers the
// response, which is written with Content-Length and Connection: close.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}
func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.Write(p)
}

func (r *recorder) response() []byte {
	if r.status == 0 {
		r.status = 200
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", r.status, statusText(r.status))
	r.header.Del("Content-Length")
	r.header.Del("Connection")
	r.header.Del("Transfer-Encoding")
	if r.header.Get("Content-Type") == "" && r.body.Len() > 0 {
		r.header.Set("Content-Type", http.DetectContentType(r.body.Bytes()))
	}
	_ = r.header.Write(&b)
	fmt.Fprintf(&b, "Content-Length: %d\r\nConnection: close\r\n\r\n", r.body.Len())
	b.Write(r.body.Bytes())
	return b.Bytes()
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return "Status " + strconv.Itoa(code)
}

// httpResponse is a complete short HTTP response: the message is the body,
// never part of the status line (no header injection).
func httpResponse(status int, msg string, hdr http.Header) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "HTTP/1.1 %d %s\r\n", status, statusText(status))
	_ = hdr.Write(&b)
	body := msg + "\n"
	fmt.Fprintf(&b, "Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", len(body))
	b.WriteString(body)
	return b.Bytes()
}

var errBadRequestLine = errors.New("malformed HTTP request line")

// parseHead parses a request head ending in CRLFCRLF. It copies what it
// keeps: the input is gnet's buffer.
func parseHead(b []byte) (*Request, error) {
	head := append([]byte(nil), b...)
	s := string(head[:len(head)-4])
	line, rest, _ := strings.Cut(s, "\r\n")
	if strings.ContainsAny(line, "\r\n\x00") {
		return nil, errBadRequestLine
	}
	method, rest1, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(rest1, " ")
	if !ok1 || !ok2 || method == "" || target == "" || !strings.HasPrefix(proto, "HTTP/1.") || strings.ContainsAny(target, " \t") {
		return nil, errBadRequestLine
	}
	for i := 0; i < len(method); i++ {
		if method[i] < 'A' || method[i] > 'Z' {
			return nil, errBadRequestLine
		}
	}
	r := &Request{Method: method, URI: target, Proto: proto, Header: make(http.Header, 12), head: head}
	r.Path, r.RawQuery, _ = strings.Cut(target, "?")
	if !strings.HasPrefix(r.Path, "/") {
		// absolute-form (http://host/path) is allowed by HTTP/1.1
		if i := strings.Index(r.Path, "://"); i > 0 {
			p := r.Path[i+3:]
			if j := strings.IndexByte(p, '/'); j >= 0 {
				r.Path = p[j:]
			} else {
				r.Path = "/"
			}
		} else {
			return nil, errBadRequestLine
		}
	}
	for rest != "" {
		var l string
		l, rest, _ = strings.Cut(rest, "\r\n")
		if l == "" {
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			return nil, errors.New("obsolete header line folding is not supported")
		}
		if strings.ContainsAny(l, "\r\n\x00") {
			return nil, fmt.Errorf("malformed header line %q", truncate(l, 40))
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok || k == "" || !validHeaderKey(k) {
			return nil, fmt.Errorf("malformed header line %q", truncate(l, 40))
		}
		r.Header.Add(textproto.CanonicalMIMEHeaderKey(k), strings.Trim(v, " \t"))
	}
	if hosts := r.Header.Values("Host"); len(hosts) > 1 {
		return nil, errors.New("duplicate Host header")
	}
	r.Host = r.Header.Get("Host")
	return r, nil
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func validHeaderKey(k string) bool {
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte("\"(),/:;<=>?@[\\]{}", c) >= 0 {
			return false
		}
	}
	return true
}

// headerHasToken reports whether a comma-separated header contains token
// (case-insensitive), e.g. "Connection: keep-alive, Upgrade".
func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
