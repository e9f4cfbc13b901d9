package engine

// Fuzz targets for the two parsers that see untrusted bytes: the HTTP
// request head (parseHead) and the frame reader (Conn.readFrames), the
// latter driven without sockets through a fake gnet.Conn.
//
//	go test -run='^$' -fuzz=FuzzParseHead  -fuzztime=90s ./engine/
//	go test -run='^$' -fuzz=FuzzReadFrames -fuzztime=90s ./engine/
//
// The seeds below are also stored in testdata/fuzz/<Name>/ together with
// every failing input the fuzzers found, so plain `go test` replays them.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pondsocket/pondsocket/internal/wsframe"

	"github.com/panjf2000/gnet/v2"
)

// ---------------------------------------------------------------- parseHead

func FuzzParseHead(f *testing.F) {
	for _, s := range fzHeadSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := append([]byte(nil), data...) // never scribble on the fuzzer's input
		if !bytes.HasSuffix(in, crlfcrlf) {
			in = append(in, crlfcrlf...)
		}
		orig := append([]byte(nil), in...)
		r, err := parseHead(in)
		if err != nil {
			if r != nil {
				t.Fatalf("parseHead returned a request and the error %v", err)
			}
			return
		}
		if r.Method == "" {
			t.Fatal("empty method accepted")
		}
		for i := 0; i < len(r.Method); i++ {
			if c := r.Method[i]; c < 'A' || c > 'Z' {
				t.Fatalf("method %q is not uppercase letters", r.Method)
			}
		}
		if !strings.HasPrefix(r.Path, "/") {
			t.Fatalf("path %q does not start with /", r.Path)
		}
		if strings.Contains(r.Path, "?") {
			t.Fatalf("path %q contains the query separator", r.Path)
		}
		if !strings.HasPrefix(r.Proto, "HTTP/1.") {
			t.Fatalf("proto %q", r.Proto)
		}
		for k, vs := range r.Header {
			if ck := textproto.CanonicalMIMEHeaderKey(k); ck != k {
				t.Fatalf("header key %q is not canonical (%q)", k, ck)
			}
			if len(vs) == 0 {
				t.Fatalf("header %q without values", k)
			}
		}
		if r.Host != r.Header.Get("Host") {
			t.Fatalf("Host %q, Host header %q", r.Host, r.Header.Get("Host"))
		}
		// The request keeps its own copy of the head: gnet reuses its buffer.
		if !bytes.Equal(r.head, orig) {
			t.Fatal("head differs from the input")
		}
		for i := range in {
			in[i] = 'X'
		}
		if !bytes.Equal(r.head, orig) {
			t.Fatal("head aliases the input buffer")
		}
	})
}

var fzHeadSeeds = []string{
	"GET /chat?token=abc HTTP/1.1\r\nHost: example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
	"GET http://example.com/abs/path?x=1 HTTP/1.1\r\nhost: example.com\r\n\r\n",
	"GET http://example.com HTTP/1.1\r\n\r\n",
	"GET https://h?x=/y HTTP/1.1\r\n\r\n",
	"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
	"get / HTTP/1.1\r\n\r\n",
	"GET / HTTP/2.0\r\n\r\n",
	"GET  / HTTP/1.1\r\n\r\n",
	"GET / HTTP/1.1\r\nX-Folded: a\r\n continued\r\n\r\n",
	"GET / HTTP/1.1\r\nno colon here\r\n\r\n",
	"GET / HTTP/1.1\r\n: empty key\r\n\r\n",
	"GET / HTTP/1.1\r\nbad key: v\r\n\r\n",
	"GET / HTTP/1.1\r\nsec-websocket-key: a\r\nSEC-WEBSOCKET-KEY: b\r\nx-a_b: \t v \t\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\nInjected: b\r\n\r\n",
	"GET /\x00\xff HTTP/1.1\r\n\r\n",
	"POST /x HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello",
	"GET / HTTP/1.1\r\n\r\n\r\nHost: after-blank\r\n\r\n",
	"",
	"\r\n\r\n",
	"GET",
}

// ------------------------------------------------------------- readFrames

// fzMax is the MaxMessageSize of the fuzzed engine.
const fzMax = 4096

// fzConn is a gnet.Conn without a socket: an inbound buffer the test fills
// and the frame reader peeks and discards, and a record of every write.
// Only the methods the frame reader and its callees use are implemented;
// any other call hits the nil embedded interface and panics, which is a
// finding too.
type fzConn struct {
	gnet.Conn

	in     []byte
	writes [][]byte
	ctx    any
}

func (f *fzConn) Peek(n int) ([]byte, error) {
	if n < 0 {
		return f.in, nil
	}
	if n > len(f.in) {
		return nil, io.ErrShortBuffer
	}
	return f.in[:n], nil
}

// Discard drops n bytes and, like a reused ring buffer, scribbles over
// them so that a reader still holding them sees garbage.
func (f *fzConn) Discard(n int) (int, error) {
	if n < 0 || n > len(f.in) {
		n = len(f.in)
	}
	rest := append([]byte(nil), f.in[n:]...)
	for i := range f.in {
		f.in[i] = 0xAA
	}
	f.in = rest
	return n, nil
}

func (f *fzConn) InboundBuffered() int { return len(f.in) }

func (f *fzConn) Write(b []byte) (int, error) {
	f.writes = append(f.writes, append([]byte(nil), b...))
	return len(b), nil
}

func (f *fzConn) Writev(bs [][]byte) (int, error) {
	var all []byte
	for _, b := range bs {
		all = append(all, b...)
	}
	return f.Write(all)
}

func (f *fzConn) OutboundBuffered() int { return 0 }
func (f *fzConn) Context() any          { return f.ctx }
func (f *fzConn) SetContext(ctx any)    { f.ctx = ctx }
func (f *fzConn) RemoteAddr() net.Addr  { return fzAddr }

var fzAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}

// fzHandler records what the engine delivers and checks it on the spot.
// It never sends: Conn.Send would post to a loop without an event loop.
type fzHandler struct {
	max       int
	msgs      int
	problems  []string
	closes    int
	closeCode int
}

func (h *fzHandler) Upgrade(*Request) Decision { return Decision{} }
func (h *fzHandler) OnOpen(*Conn)              {}
func (h *fzHandler) OnMessage(_ *Conn, op byte, data []byte) {
	h.msgs++
	switch {
	case op != wsframe.OpText && op != wsframe.OpBinary:
		h.problems = append(h.problems, fmt.Sprintf("message %d with opcode %d", h.msgs, op))
	case op == wsframe.OpText && !utf8.Valid(data):
		h.problems = append(h.problems, fmt.Sprintf("text message %d is not valid UTF-8: %q", h.msgs, data))
	}
	if len(data) > h.max {
		h.problems = append(h.problems, fmt.Sprintf("message %d of %d bytes exceeds MaxMessageSize %d", h.msgs, len(data), h.max))
	}
}
func (h *fzHandler) OnClose(_ *Conn, code int, _ error) {
	h.closes++
	h.closeCode = code
}

// fzSession is one open connection on an engine that was never started.
type fzSession struct {
	e  *Engine
	h  *fzHandler
	fc *fzConn
	c  *Conn
	g  *gnetHandler
}

func newFzSession() *fzSession {
	h := &fzHandler{max: fzMax}
	e := New(Config{MaxMessageSize: fzMax, Logger: quietLogger()}, h)
	fc := &fzConn{}
	l := newLoop(e, nil, 0)
	c := &Conn{gc: fc, loop: l, e: e, state: stateOpen, opened: true, qhead: -1, qtail: -1}
	l.add(c)
	fc.SetContext(c)
	return &fzSession{e: e, h: h, fc: fc, c: c, g: &gnetHandler{e}}
}

// feed appends b to the inbound buffer and runs the engine's traffic
// callback once, as gnet does when bytes arrive.
func (s *fzSession) feed(b []byte) gnet.Action {
	s.fc.in = append(s.fc.in, b...)
	return s.g.OnTraffic(s.fc)
}

// srvFrames parses everything the engine wrote as server frames.
func (s *fzSession) srvFrames() ([]srvFrame, error) {
	var out []srvFrame
	for wi, w := range s.fc.writes {
		for len(w) > 0 {
			if len(w) < 2 {
				return out, fmt.Errorf("write %d: truncated frame header % x", wi, w)
			}
			b0, b1 := w[0], w[1]
			if b1&0x80 != 0 {
				return out, fmt.Errorf("write %d: server frame is masked", wi)
			}
			if b0&0x70 != 0 {
				return out, fmt.Errorf("write %d: server frame has reserved bits", wi)
			}
			n, hl := uint64(b1&0x7f), 2
			switch n {
			case 126:
				if len(w) < 4 {
					return out, fmt.Errorf("write %d: truncated length", wi)
				}
				n, hl = uint64(binary.BigEndian.Uint16(w[2:])), 4
			case 127:
				if len(w) < 10 {
					return out, fmt.Errorf("write %d: truncated length", wi)
				}
				n, hl = binary.BigEndian.Uint64(w[2:]), 10
			}
			if uint64(len(w)-hl) < n {
				return out, fmt.Errorf("write %d: frame of %d bytes truncated to %d", wi, n, len(w)-hl)
			}
			out = append(out, srvFrame{fin: b0&0x80 != 0, op: b0 & 0x0f, payload: w[hl : hl+int(n)]})
			w = w[hl+int(n):]
		}
	}
	return out, nil
}

// fzValidCloseCode: the codes an endpoint may put in a close frame
// (RFC 6455 7.4 and the IANA registry): 1000-1003, 1007-1014, 3000-4999.
func fzValidCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// checkWrites checks every frame written so far; it returns whether a
// close frame was among them.
func (s *fzSession) checkWrites(t *testing.T) (closeSent bool) {
	t.Helper()
	frames, err := s.srvFrames()
	if err != nil {
		t.Fatalf("engine wrote an invalid frame: %v", err)
	}
	for i, f := range frames {
		if closeSent {
			t.Fatalf("frame %d (op %d) written after the close frame", i, f.op)
		}
		if f.op >= 8 && (!f.fin || len(f.payload) > 125) {
			t.Fatalf("invalid control frame op %d fin %v len %d", f.op, f.fin, len(f.payload))
		}
		if f.op != 8 {
			continue
		}
		closeSent = true
		switch len(f.payload) {
		case 0: // no status code: allowed (the echo of an empty close)
		case 1:
			t.Fatalf("close frame with a 1-byte payload")
		default:
			code := int(binary.BigEndian.Uint16(f.payload))
			if !fzValidCloseCode(code) {
				t.Fatalf("close frame carries the invalid code %d (reason %q)", code, f.payload[2:])
			}
			if !utf8.Valid(f.payload[2:]) {
				t.Fatalf("close reason is not valid UTF-8: %q", f.payload[2:])
			}
		}
	}
	return closeSent
}

// FuzzReadFrames feeds arbitrary client bytes to an open connection in one
// to three reads (cut1 and cut2 pick the read boundaries) and checks:
// nothing panics; every delivered text message is valid UTF-8 and no
// message exceeds MaxMessageSize; everything written parses as unmasked
// server frames, control frames are FIN and at most 125 bytes; at most one
// close frame is written, nothing after it, and its code (if any) is one an
// endpoint may send; once it is written the connection is closing or done;
// OnClose runs exactly once and releases the fragment buffer.
func FuzzReadFrames(f *testing.F) {
	for _, s := range fzFrameSeeds() {
		f.Add(s.data, s.cut1, s.cut2)
	}
	f.Fuzz(func(t *testing.T, data []byte, cut1, cut2 uint16) {
		s := newFzSession()
		a, b := int(cut1)%(len(data)+1), int(cut2)%(len(data)+1)
		if a > b {
			a, b = b, a
		}
		for _, chunk := range [][]byte{data[:a], data[a:b], data[b:]} {
			if len(chunk) == 0 {
				continue
			}
			act := s.feed(chunk)
			if s.checkWrites(t) && s.c.state != stateClosing && s.c.state != stateDone {
				t.Fatalf("close frame written but the connection is in state %s", fzStateName(s.c.state))
			}
			if act == gnet.Close {
				break // gnet closes the socket: no more traffic
			}
		}
		if len(s.h.problems) > 0 {
			t.Fatalf("delivered messages broke the rules:\n%s", strings.Join(s.h.problems, "\n"))
		}
		// gnet always ends a connection with OnClose.
		_ = s.g.OnClose(s.fc, nil)
		if s.h.closes != 1 {
			t.Fatalf("OnClose ran %d times", s.h.closes)
		}
		if s.c.frag != nil || s.c.fragOp != 0 {
			t.Fatal("fragment buffer not released on close")
		}
	})
}

func fzStateName(s connState) string {
	names := [...]string{"handshake", "deciding", "http", "open", "closing", "done", "closed"}
	if int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprintf("state(%d)", s)
}

type fzSeed struct {
	name       string
	data       []byte
	cut1, cut2 uint16
}

// fzMasked builds a client frame masked with key (a zero key leaves the
// payload readable, which lets the fuzzer mutate it meaningfully).
func fzMasked(fin bool, rsv, op byte, payload []byte, key [4]byte) []byte {
	b := frame(fin, rsv, op, payload, false)
	hl := len(b) - len(payload)
	out := append([]byte(nil), b[:hl]...)
	out[1] |= 0x80
	out = append(out, key[:]...)
	for i, c := range payload {
		out = append(out, c^key[i%4])
	}
	return out
}

// fzFrameSeeds are small on purpose: the fuzzer minimises every new
// interesting input for up to a minute, and inputs of MaxMessageSize bytes
// make that take the whole minute. The size limit itself is checked
// exactly by TestReadFramesSizeLimit.
func fzFrameSeeds() []fzSeed {
	var z [4]byte
	k := [4]byte{0x37, 0xfa, 0x21, 0x3d}
	cat := func(bs ...[]byte) []byte { return slices.Concat(bs...) }
	closeP := func(code uint16, reason string) []byte {
		return append(binary.BigEndian.AppendUint16(nil, code), reason...)
	}
	return []fzSeed{
		// valid traffic
		{"text", fzMasked(true, 0, 1, []byte("hello"), z), 0, 0},
		{"text-utf8-split-reads", fzMasked(true, 0, 1, []byte("héllo wörld"), k), 3, 9},
		{"binary", fzMasked(true, 0, 2, []byte{0, 1, 0xfe, 0xff}, z), 1, 5},
		{"fragmented-3", cat(fzMasked(false, 0, 1, []byte("fr"), z), fzMasked(false, 0, 0, []byte("ag"), z), fzMasked(true, 0, 0, []byte("ment"), z)), 7, 14},
		{"fragmented-ping-inside", cat(fzMasked(false, 0, 2, []byte{1}, k), fzMasked(true, 0, 9, []byte("p"), k), fzMasked(true, 0, 0, []byte{2}, k)), 0, 0},
		{"fragmented-rune-split", cat(fzMasked(false, 0, 1, []byte{0xe2, 0x82}, z), fzMasked(true, 0, 0, []byte{0xac}, z)), 4, 9},
		{"ping", fzMasked(true, 0, 9, []byte("ping payload"), z), 0, 0},
		{"pong-unsolicited", fzMasked(true, 0, 10, []byte("unsolicited"), z), 0, 0},
		{"two-texts-then-close", cat(fzMasked(true, 0, 1, []byte("a"), z), fzMasked(true, 0, 1, []byte("b"), z), fzMasked(true, 0, 8, closeP(1000, "bye"), z)), 0, 0},
		{"len16", fzMasked(true, 0, 1, make([]byte, 126), z), 0, 0},
		{"len64-small", cat([]byte{0x81, 0xff, 0, 0, 0, 0, 0, 0, 0, 2}, z[:], []byte("ok")), 0, 0}, // not minimal, legal to parse
		// close frames
		{"close-1000", fzMasked(true, 0, 8, closeP(1000, "bye"), z), 0, 0},
		{"close-4001", fzMasked(true, 0, 8, closeP(4001, ""), k), 0, 0},
		{"close-empty", fzMasked(true, 0, 8, nil, z), 0, 0},
		{"close-1-byte", fzMasked(true, 0, 8, []byte{3}, z), 0, 0},
		{"close-1005", fzMasked(true, 0, 8, closeP(1005, ""), z), 0, 0},
		{"close-bad-utf8-reason", fzMasked(true, 0, 8, closeP(1000, "\xff"), z), 0, 0},
		{"close-2999", fzMasked(true, 0, 8, closeP(2999, ""), z), 0, 0},
		{"close-then-text", cat(fzMasked(true, 0, 8, closeP(1000, ""), z), fzMasked(true, 0, 1, []byte("late"), z)), 0, 0},
		// broken rules
		{"unmasked", frame(true, 0, 1, []byte("unmasked"), false), 0, 0},
		{"unmasked-then-close", cat(frame(true, 0, 1, []byte("x"), false), fzMasked(true, 0, 8, closeP(1000, ""), z)), 0, 0},
		{"rsv1", fzMasked(true, 4, 1, []byte("rsv1"), z), 0, 0},
		{"reserved-opcode-3", fzMasked(true, 0, 3, []byte("x"), z), 0, 0},
		{"reserved-opcode-b", fzMasked(true, 0, 0xb, nil, z), 0, 0},
		{"ping-not-fin", fzMasked(false, 0, 9, nil, z), 0, 0},
		{"ping-126", fzMasked(true, 0, 9, make([]byte, 126), z), 0, 0},
		{"continuation-orphan", fzMasked(true, 0, 0, []byte("orphan"), z), 0, 0},
		{"text-inside-fragmented", cat(fzMasked(false, 0, 1, []byte("a"), z), fzMasked(true, 0, 1, []byte("b"), z)), 0, 0},
		{"text-bad-utf8", fzMasked(true, 0, 1, []byte{0xff, 0xfe}, z), 0, 0},
		{"rejected-then-more", cat(fzMasked(true, 4, 1, []byte("rsv"), z), fzMasked(true, 0, 1, []byte("ignored"), z), fzMasked(true, 0, 8, closeP(1000, ""), z)), 0, 0},
		// a header announcing 4097 bytes, with only a little payload
		{"oversized-header", cat([]byte{0x81, 0xfe, 0x10, 0x01}, z[:], []byte("partial")), 0, 0},
		// 127-length encoding with the top bit set
		{"len64-top-bit", cat([]byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 5}, z[:], []byte("hello")), 0, 0},
		// truncated headers
		{"truncated-1", []byte{0x81}, 0, 0},
		{"truncated-len16", []byte{0x81, 0xfe, 0x00}, 0, 0},
		{"truncated-len64", []byte{0x82, 0xff, 0, 0, 0, 0}, 0, 0},
		{"truncated-mask", []byte{0x81, 0x85, 1, 2}, 0, 0},
	}
}

// TestReadFramesSizeLimit: a message of exactly MaxMessageSize is
// delivered, in one frame or in fragments, whichever way the bytes arrive;
// one byte more is refused with 1009 before its payload is awaited.
func TestReadFramesSizeLimit(t *testing.T) {
	var z [4]byte
	k := [4]byte{9, 8, 7, 6}
	big := bytes.Repeat([]byte("é"), fzMax/2)
	cases := []struct {
		name string
		in   []byte
		code int // 0: delivered
	}{
		{"one frame at the limit", fzMasked(true, 0, 1, big, k), 0},
		{"2048+2048 fragments", slices.Concat(fzMasked(false, 0, 1, big[:2048], z), fzMasked(true, 0, 0, big[2048:], k)), 0},
		{"3000+1096 fragments, a rune split", slices.Concat(fzMasked(false, 0, 1, big[:3001], k), fzMasked(true, 0, 0, big[3001:], z)), 0},
		{"one frame over the limit", fzMasked(true, 0, 2, append(big, 'x'), k), 1009},
		{"3000+1097 fragments", slices.Concat(fzMasked(false, 0, 2, big[:3000], z), fzMasked(true, 0, 0, append(big[3000:], 'x'), z)), 1009},
		{"header over the limit, no payload yet", []byte{0x81, 0xfe, 0x10, 0x01, 0, 0, 0, 0}, 1009},
	}
	for _, tc := range cases {
		for _, step := range []int{1, 7, 1000, len(tc.in)} {
			t.Run(fmt.Sprintf("%s/%d-byte-reads", tc.name, step), func(t *testing.T) {
				s := newFzSession()
				for i := 0; i < len(tc.in) && s.c.state == stateOpen; i += step {
					s.feed(tc.in[i:min(i+step, len(tc.in))])
				}
				if len(s.h.problems) > 0 {
					t.Fatal(strings.Join(s.h.problems, "\n"))
				}
				frames, err := s.srvFrames()
				if err != nil {
					t.Fatal(err)
				}
				if tc.code == 0 {
					if s.h.msgs != 1 || len(frames) != 0 || s.c.state != stateOpen {
						t.Fatalf("%d messages, %d frames written, state %s; want the message delivered", s.h.msgs, len(frames), fzStateName(s.c.state))
					}
					return
				}
				if s.h.msgs != 0 || len(frames) != 1 || frames[0].op != 8 || int(binary.BigEndian.Uint16(frames[0].payload)) != tc.code {
					t.Fatalf("%d messages, frames %v; want close %d", s.h.msgs, frames, tc.code)
				}
			})
		}
	}
}

// TestReadFramesEndsClosingHandshake replays, deterministically, close
// handshakes that the fuzz invariants or a raw socket showed going wrong:
// once the peer's close frame has been read and the server's close frame
// written, the handshake is over and the engine must close the socket
// (gnet.Close, stateDone) instead of waiting CloseTimeout for a second
// close frame the peer will never send; and a close code the RFC does not
// allow is refused with 1002, not echoed.
func TestReadFramesEndsClosingHandshake(t *testing.T) {
	var z [4]byte
	closeFrame := func(p ...byte) []byte { return fzMasked(true, 0, 8, p, z) }
	cases := []struct {
		name string
		in   []byte
		code int // close code the engine must write
	}{
		{"peer close with a 1-byte payload", closeFrame(3), 1002},
		{"peer close with code 1005", closeFrame(0x03, 0xed), 1002},
		{"peer close with code 2999", closeFrame(0x0b, 0xb7), 1002},
		{"peer close with an invalid UTF-8 reason", closeFrame(0x03, 0xe8, 0xff), 1007},
		{"peer close with code 5000", closeFrame(0x13, 0x88), 1002},
		{"peer close with code 65535", closeFrame(0xff, 0xff), 1002},
		{"unmasked frame then close, one read", slices.Concat(frame(true, 0, 1, []byte("x"), false), closeFrame(0x03, 0xe8)), 1002},
		{"oversized frame then close, one read", slices.Concat([]byte{0x82, 0xfe, 0x10, 0x01}, z[:], make([]byte, fzMax+1), closeFrame(0x03, 0xe8)), 1009},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newFzSession()
			act := s.feed(tc.in)
			frames, err := s.srvFrames()
			if err != nil {
				t.Fatal(err)
			}
			if len(frames) != 1 || frames[0].op != 8 || len(frames[0].payload) < 2 {
				t.Fatalf("engine wrote %v, want one close frame with a code", frames)
			}
			if got := int(binary.BigEndian.Uint16(frames[0].payload)); got != tc.code {
				t.Errorf("engine wrote close %d (%q), want %d", got, frames[0].payload[2:], tc.code)
			}
			if act != gnet.Close || s.c.state != stateDone && s.c.state != stateClosing {
				t.Errorf("after reading the peer's close frame and answering it: action %v, state %s, %d bytes left unread; want gnet.Close (the handshake is complete)", act, fzStateName(s.c.state), len(s.fc.in))
			}
		})
	}
}
