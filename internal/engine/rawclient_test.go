package engine

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawConn is a hand-driven WebSocket client: it writes exactly the bytes a
// test asks for, so each rule of RFC 6455 can be broken on purpose.
type rawConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader

	frames chan srvFrame // set by pump
}

// pump reads in the background, answers server pings like a browser would
// and queues every other frame for expectFrame.
func (r *rawConn) pump() *rawConn {
	r.frames = make(chan srvFrame, 1024)
	go func() {
		defer close(r.frames)
		for {
			f, err := r.readFrame(time.Minute)
			if err != nil {
				return
			}
			if f.op == 9 {
				_, _ = r.c.Write(frame(true, 0, 0xa, f.payload, true))
				continue
			}
			r.frames <- f
		}
	}()
	return r
}

func upgradeRequest(host, path string, extra ...string) string {
	key := make([]byte, 16)
	_, _ = rand.Read(key)
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", path, host, base64.StdEncoding.EncodeToString(key))
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

func dialTCP(t testing.TB, e *Engine) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialRaw upgrades and checks for 101.
func dialRaw(t testing.TB, e *Engine, path string, extra ...string) *rawConn {
	t.Helper()
	c := dialTCP(t, e)
	if _, err := io.WriteString(c, upgradeRequest(e.Addr().String(), path, extra...)); err != nil {
		t.Fatal(err)
	}
	r := &rawConn{t: t, c: c, br: bufio.NewReader(c)}
	resp := r.readResponse()
	if resp.StatusCode != 101 {
		t.Fatalf("upgrade: status %d", resp.StatusCode)
	}
	return r
}

func (r *rawConn) readResponse() *http.Response {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(r.br, nil)
	if err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	return resp
}

// frame builds a client frame; mask=true masks it with a random key.
func frame(fin bool, rsv, op byte, payload []byte, mask bool) []byte {
	b0 := op | rsv<<4
	if fin {
		b0 |= 0x80
	}
	out := []byte{b0, 0}
	n := len(payload)
	switch {
	case n < 126:
		out[1] = byte(n)
	case n <= 0xffff:
		out[1] = 126
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out[1] = 127
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	if !mask {
		return append(out, payload...)
	}
	out[1] |= 0x80
	var key [4]byte
	_, _ = rand.Read(key[:])
	out = append(out, key[:]...)
	start := len(out)
	out = append(out, payload...)
	for i := range payload {
		out[start+i] ^= key[i%4]
	}
	return out
}

func (r *rawConn) write(b []byte) {
	r.t.Helper()
	if _, err := r.c.Write(b); err != nil {
		r.t.Fatalf("write: %v", err)
	}
}

func (r *rawConn) send(op byte, payload string) { r.write(frame(true, 0, op, []byte(payload), true)) }

type srvFrame struct {
	fin     bool
	op      byte
	payload []byte
}

func (r *rawConn) readFrame(timeout time.Duration) (srvFrame, error) {
	_ = r.c.SetReadDeadline(time.Now().Add(timeout))
	var h [2]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		return srvFrame{}, err
	}
	if h[1]&0x80 != 0 {
		return srvFrame{}, errors.New("server frame is masked")
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r.br, b[:]); err != nil {
			return srvFrame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r.br, b[:]); err != nil {
			return srvFrame{}, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r.br, p); err != nil {
		return srvFrame{}, err
	}
	return srvFrame{fin: h[0]&0x80 != 0, op: h[0] & 0x0f, payload: p}, nil
}

func (r *rawConn) expectFrame(op byte, payload string) {
	r.t.Helper()
	if r.frames != nil {
		select {
		case f, ok := <-r.frames:
			if !ok {
				r.t.Fatalf("expected frame op=%d %q: connection ended", op, payload)
			}
			if f.op != op || string(f.payload) != payload {
				r.t.Fatalf("got frame op=%d %q, want op=%d %q", f.op, f.payload, op, payload)
			}
		case <-time.After(5 * time.Second):
			r.t.Fatalf("expected frame op=%d %q: timeout", op, payload)
		}
		return
	}
	f, err := r.readFrame(5 * time.Second)
	if err != nil {
		r.t.Fatalf("expected frame op=%d %q: %v", op, payload, err)
	}
	if f.op != op || string(f.payload) != payload {
		r.t.Fatalf("got frame op=%d %q, want op=%d %q", f.op, f.payload, op, payload)
	}
}

// expectClose reads frames until a close frame and checks its code; it then
// echoes the close like a well-behaved client and expects EOF.
func (r *rawConn) expectClose(code int) {
	r.t.Helper()
	for {
		f, err := r.readFrame(5 * time.Second)
		if err != nil {
			r.t.Fatalf("expected close %d: %v", code, err)
		}
		if f.op != 0x8 {
			continue
		}
		got := 1005
		if len(f.payload) >= 2 {
			got = int(binary.BigEndian.Uint16(f.payload))
		}
		if got != code {
			r.t.Fatalf("close code %d (%q), want %d", got, f.payload[min(2, len(f.payload)):], code)
		}
		_, _ = r.c.Write(frame(true, 0, 0x8, f.payload[:min(2, len(f.payload))], true))
		r.expectEOF(5 * time.Second)
		return
	}
}

func (r *rawConn) expectEOF(timeout time.Duration) {
	r.t.Helper()
	_ = r.c.SetReadDeadline(time.Now().Add(timeout))
	for {
		if _, err := r.br.ReadByte(); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				r.t.Fatalf("connection still open after %v", timeout)
			}
			return
		}
	}
}

// rawHTTP sends a request and returns the parsed response.
func rawHTTP(t testing.TB, e *Engine, req string) (*http.Response, string) {
	t.Helper()
	c := dialTCP(t, e)
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	r := &rawConn{t: t, c: c, br: bufio.NewReader(c)}
	resp := r.readResponse()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}
