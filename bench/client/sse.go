//go:build linux

package client

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// The SSE transport (docs/protocol.md §9) for the load generator.
//
// A stream is a Conn like a WebSocket one: its socket belongs to a loop,
// which sends the GET, parses the response head and then the event stream
// line by line, so an idle or busy stream costs no goroutine. Each "data:"
// line is one PondSocket message (the server writes one message per line)
// and reaches Handler.OnMessage as a WebSocket text frame's line does.
//
// The client's messages leave as POSTs on other connections. WriteText
// queues the message in the stream's outbox; a goroutine, started when the
// outbox gets its first message and ended when it is empty, posts them one
// after another, so the server receives a stream's messages in the order
// they were written (the npm SSEClient posts without waiting, so its
// messages may overtake each other). The goroutines share one keep-alive
// HTTP client whose connections per server are capped
// (Config.SSEPostConns), so the number of sockets the posts use is bounded
// whatever the number of streams. (The engine's listener closes the
// connection after each POST, so there each message costs a connect.)

// ErrStream is wrapped by every failure to open an event stream.
var ErrStream = errors.New("client: event stream request failed")

// AppendStreamRequest appends the GET that opens an event stream.
func AppendStreamRequest(dst []byte, host, path string) []byte {
	dst = append(dst, "GET "...)
	dst = append(dst, path...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"...)
	return dst
}

// ParseStreamResponse looks for a complete HTTP response head in b, as
// ParseUpgradeResponse does, for an event stream: it returns n = 0 while
// the head is incomplete; once it is complete, its length and the stream's
// id (X-Connection-ID). A status other than 200 is a *StatusError
// wrapping ErrStream. A chunked stream is refused: the PondSocket server
// writes the stream unframed, and this parser reads it so.
func ParseStreamResponse(b []byte) (n int, id string, err error) {
	n, headers, err := responseHead(b, "200", ErrStream)
	if n == 0 || err != nil {
		return 0, "", err
	}
	eventStream := false
	for name, value := range headerFields(headers) {
		switch {
		case bytes.EqualFold(name, []byte("X-Connection-ID")):
			id = string(value)
		case bytes.EqualFold(name, []byte("Content-Type")):
			mt, _, _ := bytes.Cut(value, []byte(";"))
			eventStream = bytes.EqualFold(bytes.TrimSpace(mt), []byte("text/event-stream"))
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			return 0, "", fmt.Errorf("%w: Transfer-Encoding %q is not supported", ErrStream, value)
		}
	}
	if !eventStream || id == "" {
		return 0, "", fmt.Errorf("%w: missing Content-Type: text/event-stream or X-Connection-ID", ErrStream)
	}
	return n, id, nil
}

// processSSE handles bytes read from a stream: the response head, then
// complete lines. It returns how many bytes it consumed (a line split
// across reads waits in c.in, as a split frame does).
func (l *Loop) processSSE(c *Conn, data []byte, now int64) (int, error) {
	consumed := 0
	if c.state == stateHandshake {
		n, id, err := ParseStreamResponse(data)
		if err != nil || n == 0 {
			return 0, err
		}
		consumed = n
		c.SSEID = id
		if !l.open(c, now) {
			return consumed, nil
		}
	}
	for c.state == stateOpen {
		i := bytes.IndexByte(data[consumed:], '\n')
		if i < 0 {
			if int64(len(data)-consumed) > l.pool.cfg.MaxFrame {
				return consumed, fmt.Errorf("client: event stream line longer than %d bytes", l.pool.cfg.MaxFrame)
			}
			break
		}
		line := data[consumed : consumed+i]
		consumed += i + 1
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			if c.sseData {
				c.sseData = false
				l.FramesIn.Add(1) // an event: the WebSocket frame's counterpart
			}
			continue
		}
		rest, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue // a comment (": keepalive") or a field this client ignores
		}
		c.sseData = true
		rest = bytes.TrimPrefix(rest, []byte(" "))
		if err := ParseMessage(rest, &l.msg); err != nil {
			l.BadMessages.Add(1)
			continue
		}
		l.MessagesIn.Add(1)
		l.h.OnMessage(c, &l.msg, now)
	}
	return consumed, nil
}

// sseOutbox holds a stream's messages waiting to be posted. The loop adds
// to it; the posting goroutine takes from it.
type sseOutbox struct {
	mu      sync.Mutex
	q       [][]byte
	running bool // a goroutine is posting
	closed  bool // the stream closed: drop what is queued
}

// postText queues payload for c's posting goroutine, starting it if none
// runs. Loop goroutine only.
func (c *Conn) postText(payload []byte) {
	ob := c.outbox
	msg := append([]byte(nil), payload...)
	ob.mu.Lock()
	ob.q = append(ob.q, msg)
	start := !ob.running
	ob.running = true
	ob.mu.Unlock()
	if start {
		go c.loop.drainOutbox(c, ob, c.postURL, c.SSEID)
	}
}

// drainOutbox posts ob's messages in order until it is empty. A failed
// post closes the stream (on its loop) with the error. It reads nothing
// of c but on the loop.
func (l *Loop) drainOutbox(c *Conn, ob *sseOutbox, url, id string) {
	for {
		ob.mu.Lock()
		if ob.closed || len(ob.q) == 0 {
			ob.running = false
			ob.q = nil
			ob.mu.Unlock()
			return
		}
		body := ob.q[0]
		ob.q[0] = nil
		ob.q = ob.q[1:]
		ob.mu.Unlock()
		if err := l.pool.post(url, id, body); err != nil {
			ob.mu.Lock()
			ob.closed, ob.running, ob.q = true, false, nil
			ob.mu.Unlock()
			l.Post(func() { l.closeConn(c, err) })
			return
		}
	}
}

// closeOutbox drops what a closing stream has not posted yet.
func (c *Conn) closeOutbox() {
	if c.outbox == nil {
		return
	}
	c.outbox.mu.Lock()
	c.outbox.closed = true
	c.outbox.q = nil
	c.outbox.mu.Unlock()
}

// post sends one client message for stream id; anything but 202 is an
// error.
func (p *Pool) post(url, id string, body []byte) error {
	p.httpOnce.Do(func() {
		conns := p.cfg.SSEPostConns
		p.http = &http.Client{
			Timeout: p.cfg.ConnectTimeout,
			Transport: &http.Transport{
				Proxy:               nil, // the target, never a proxy from the environment
				DialContext:         (&net.Dialer{Timeout: p.cfg.ConnectTimeout, KeepAlive: -1}).DialContext,
				MaxConnsPerHost:     conns,
				MaxIdleConns:        conns,
				MaxIdleConnsPerHost: conns,
				IdleConnTimeout:     30 * time.Second,
				DisableCompression:  true,
			},
		}
	})
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Connection-ID", id)
	resp, err := p.http.Do(req)
	if err != nil {
		return fmt.Errorf("client: sse post: %w", err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("client: sse post: status %d", resp.StatusCode)
	}
	return nil
}
