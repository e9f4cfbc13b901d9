package client

import (
	"bytes"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"iter"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

const websocketGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// ErrHandshake is wrapped by every upgrade failure.
var ErrHandshake = errors.New("client: websocket upgrade failed")

// AcceptKey is Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 §4.2.2).
func AcceptKey(key string) string {
	h := sha1.New()
	h.Write([]byte(key))
	h.Write([]byte(websocketGUID))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Target is one server the pool connects to.
type Target struct {
	URL  *url.URL
	Addr string // host:port to connect to
	Host string // Host header
	Path string // request target: path and query

	sa     unix.Sockaddr
	family int
	saErr  error
}

// sockaddr returns a fresh copy of the address: unix.Connect writes into
// the Sockaddr it is given, so loops must not share one.
func (t *Target) sockaddr() (unix.Sockaddr, int, error) {
	switch sa := t.sa.(type) {
	case *unix.SockaddrInet4:
		c := *sa
		return &c, t.family, t.saErr
	case *unix.SockaddrInet6:
		c := *sa
		return &c, t.family, t.saErr
	}
	return t.sa, t.family, t.saErr
}

// ParseTarget parses a ws:// URL. wss is not supported: the tool measures
// servers, not TLS libraries.
func ParseTarget(raw string) (*Target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("target %q: %w", raw, err)
	}
	switch u.Scheme {
	case "ws", "http":
	default:
		return nil, fmt.Errorf("target %q: scheme %q not supported (use ws://)", raw, u.Scheme)
	}
	host := u.Host
	if u.Port() == "" {
		host += ":80"
	}
	path := u.EscapedPath()
	if path == "" {
		path = "/"
	}
	if u.RawQuery != "" {
		path += "?" + u.RawQuery
	}
	t := &Target{URL: u, Addr: host, Host: u.Host, Path: path}
	t.sa, t.family, t.saErr = sockaddrOf(host)
	if t.saErr != nil {
		return nil, fmt.Errorf("target %q: %w", raw, t.saErr)
	}
	return t, nil
}

// WithQuery returns the request target with extra query parameters, the way
// the PondSocket client passes its parameters (docs/protocol.md §1.1).
func (t *Target) WithQuery(q url.Values) string {
	if len(q) == 0 {
		return t.Path
	}
	sep := "?"
	if strings.Contains(t.Path, "?") {
		sep = "&"
	}
	return t.Path + sep + q.Encode()
}

// AppendUpgradeRequest appends the HTTP upgrade request.
func AppendUpgradeRequest(dst []byte, host, path, key string) []byte {
	dst = append(dst, "GET "...)
	dst = append(dst, path...)
	dst = append(dst, " HTTP/1.1\r\nHost: "...)
	dst = append(dst, host...)
	dst = append(dst, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: "...)
	dst = append(dst, key...)
	dst = append(dst, "\r\n\r\n"...)
	return dst
}

// StatusError is the upgrade failure of a server that answered with a
// status other than 101 (a 503 at the connection cap, say), or the failure
// of an event stream's GET answered with a status other than 200. It wraps
// ErrHandshake, or ErrStream for a stream.
type StatusError struct {
	Code   int    // the status code, 0 when it is not a number
	Line   string // the status line after the HTTP version
	Stream bool   // an event stream's GET (then it wraps ErrStream)
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%v: status %q", e.Unwrap(), e.Line)
}

func (e *StatusError) Unwrap() error {
	if e.Stream {
		return ErrStream
	}
	return ErrHandshake
}

// ParseUpgradeResponse looks for a complete HTTP response head in b. It
// returns n = 0 while the head is incomplete, and the head's length once it
// is complete and valid for the expected accept value. A status other than
// 101 is a *StatusError.
func ParseUpgradeResponse(b []byte, accept string) (n int, err error) {
	n, headers, err := responseHead(b, "101", ErrHandshake)
	if n == 0 || err != nil {
		return 0, err
	}
	gotAccept := false
	upgrade := false
	for name, value := range headerFields(headers) {
		switch {
		case bytes.EqualFold(name, []byte("Sec-WebSocket-Accept")):
			if string(value) != accept {
				return 0, fmt.Errorf("%w: Sec-WebSocket-Accept %q, want %q", ErrHandshake, value, accept)
			}
			gotAccept = true
		case bytes.EqualFold(name, []byte("Upgrade")):
			upgrade = bytes.EqualFold(value, []byte("websocket"))
		}
	}
	if !gotAccept || !upgrade {
		return 0, fmt.Errorf("%w: missing Upgrade or Sec-WebSocket-Accept header", ErrHandshake)
	}
	return n, nil
}

// responseHead finds a complete HTTP/1.x response head in b, for the
// upgrade (kind ErrHandshake) or an event stream (kind ErrStream). It
// returns n = 0 while the head is incomplete; once it is complete, its
// length and its header lines, if the status is want. Another status is a
// *StatusError; every other failure wraps kind.
func responseHead(b []byte, want string, kind error) (n int, headers []byte, err error) {
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		if len(b) > 16<<10 {
			return 0, nil, fmt.Errorf("%w: response head longer than 16 KiB", kind)
		}
		return 0, nil, nil
	}
	line, headers, _ := bytes.Cut(b[:end], []byte("\r\n"))
	parts := bytes.SplitN(line, []byte(" "), 3)
	if len(parts) < 2 || !bytes.HasPrefix(parts[0], []byte("HTTP/1.")) {
		return 0, nil, fmt.Errorf("%w: bad status line %q", kind, line)
	}
	if string(parts[1]) != want {
		code, _ := strconv.Atoi(string(parts[1]))
		return 0, nil, &StatusError{Code: code, Line: string(bytes.TrimSpace(line[len(parts[0]):])), Stream: kind == ErrStream}
	}
	return end + 4, headers, nil
}

// headerFields yields the name and trimmed value of each header line
// (lines without a colon are skipped).
func headerFields(headers []byte) iter.Seq2[[]byte, []byte] {
	return func(yield func(name, value []byte) bool) {
		for len(headers) > 0 {
			var h []byte
			h, headers, _ = bytes.Cut(headers, []byte("\r\n"))
			name, value, ok := bytes.Cut(h, []byte(":"))
			if ok && !yield(name, bytes.TrimSpace(value)) {
				return
			}
		}
	}
}
