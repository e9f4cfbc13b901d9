package testenv

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

const wait = 10 * time.Second

// echoServer is a gorilla/websocket server for exercising the drivers:
//
//	/deny    refuses the upgrade with 401
//	/frames  reports the frames of the first data message it receives
//	/hdr     first sends "X-Test=...;Origin=...;offer-deflate=..." then echoes
//	/*       echoes text and binary; "close-me" makes it close with 4000
//
// Pings are answered by gorilla's default ping handler.
type echoServer struct {
	*httptest.Server
	mu    sync.Mutex
	conns []*websocket.Conn
}

func newEchoServer(t *testing.T) *echoServer {
	s := &echoServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(func() {
		s.mu.Lock()
		for _, c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.Close()
	})
	return s
}

func (s *echoServer) url(path string) string {
	return "ws" + strings.TrimPrefix(s.URL, "http") + path
}

func (s *echoServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/deny" {
		http.Error(w, "denied", http.StatusUnauthorized)
		return
	}
	up := websocket.Upgrader{
		CheckOrigin:       func(*http.Request) bool { return true },
		EnableCompression: r.URL.Path != "/frames",
	}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	s.mu.Lock()
	s.conns = append(s.conns, conn)
	s.mu.Unlock()
	defer conn.Close()

	switch r.URL.Path {
	case "/frames":
		s.reportFrames(conn)
		return
	case "/hdr":
		offered := strings.Contains(r.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate")
		hello := fmt.Sprintf("X-Test=%s;Origin=%s;offer-deflate=%v", r.Header.Get("X-Test"), r.Header.Get("Origin"), offered)
		if conn.WriteMessage(websocket.TextMessage, []byte(hello)) != nil {
			return
		}
	}
	for {
		mt, data, err := conn.ReadMessage()
		if err != nil {
			return
		}
		if mt == websocket.TextMessage && string(data) == "close-me" {
			conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "bye-4000"), time.Now().Add(wait))
			continue // read on until the client's close frame or EOF
		}
		if conn.WriteMessage(mt, data) != nil {
			return
		}
	}
}

type frameInfo struct {
	Op   int    `json:"op"`
	Fin  bool   `json:"fin"`
	Data string `json:"data"`
}

// reportFrames parses client frames straight off the socket (gorilla has
// not read anything yet: it refuses clients that send before the 101) until
// one data message is complete, then sends the frames back as JSON.
func (s *echoServer) reportFrames(conn *websocket.Conn) {
	nc := conn.UnderlyingConn()
	nc.SetReadDeadline(time.Now().Add(wait))
	var frames []frameInfo
	for {
		var h [2]byte
		if _, err := io.ReadFull(nc, h[:]); err != nil {
			return
		}
		fin, op, n := h[0]&0x80 != 0, int(h[0]&0x0f), uint64(h[1]&0x7f)
		switch n {
		case 126:
			var b [2]byte
			if _, err := io.ReadFull(nc, b[:]); err != nil {
				return
			}
			n = uint64(binary.BigEndian.Uint16(b[:]))
		case 127:
			var b [8]byte
			if _, err := io.ReadFull(nc, b[:]); err != nil {
				return
			}
			n = binary.BigEndian.Uint64(b[:])
		}
		var key [4]byte
		if h[1]&0x80 != 0 {
			if _, err := io.ReadFull(nc, key[:]); err != nil {
				return
			}
		}
		data := make([]byte, n)
		if _, err := io.ReadFull(nc, data); err != nil {
			return
		}
		for i := range data {
			data[i] ^= key[i&3]
		}
		if op >= 8 { // control frames: not part of the message
			if op == 8 {
				return
			}
			continue
		}
		frames = append(frames, frameInfo{Op: op, Fin: fin, Data: string(data)})
		if fin {
			break
		}
	}
	out, _ := json.Marshal(frames)
	conn.WriteMessage(websocket.TextMessage, out)
	conn.ReadMessage() // wait for the client to go away
}

func send(d *Driver, t *testing.T, cmd map[string]any) {
	t.Helper()
	d.Send(cmd)
	ack := d.Expect(t, "ack", wait)
	if want := cmd["op"]; ack.Op != want {
		t.Fatalf("ack for %v, want %v", ack.Op, want)
	}
}

func connect(t *testing.T, d *Driver, url string) {
	t.Helper()
	send(d, t, map[string]any{"op": "connect", "url": url})
	d.Expect(t, "open", wait)
}

func expectMessage(t *testing.T, d *Driver, data string, bin bool) {
	t.Helper()
	m := d.Expect(t, "message", wait)
	if m.Data != data || m.Binary != bin {
		t.Fatalf("message = %q (binary=%v), want %q (binary=%v)", m.Data, m.Binary, data, bin)
	}
}

func TestDrivers(t *testing.T) {
	srv := newEchoServer(t)
	for _, k := range AllDrivers() {
		t.Run(k.Name, func(t *testing.T) {
			t.Parallel()

			t.Run("echo", func(t *testing.T) {
				d := k.Start(t)
				connect(t, d, srv.url("/echo?x=1"))

				send(d, t, map[string]any{"op": "send", "data": "hello"})
				expectMessage(t, d, "hello", false)

				bin := []byte{0, 1, 2, 0xfe, 0xff}
				send(d, t, map[string]any{"op": "send", "data": base64.StdEncoding.EncodeToString(bin), "b64": true, "binary": true})
				expectMessage(t, d, string(bin), true)

				for i, part := range []string{"ab", "cd", "ef"} {
					send(d, t, map[string]any{"op": "send", "data": part, "fin": i == 2})
				}
				expectMessage(t, d, "abcdef", false)

				send(d, t, map[string]any{"op": "ping", "data": "p1"})
				if p := d.Expect(t, "pong", wait); p.Data != "p1" {
					t.Fatalf("pong data = %q, want p1", p.Data)
				}

				frame, err := clientFrame(true, 1, []byte("raw-hi"))
				if err != nil {
					t.Fatal(err)
				}
				send(d, t, map[string]any{"op": "raw", "b64": base64.StdEncoding.EncodeToString(frame)})
				expectMessage(t, d, "raw-hi", false)

				send(d, t, map[string]any{"op": "send", "data": "close-me"})
				c := d.Expect(t, "close", wait)
				if c.Code != 4000 || c.Reason != "bye-4000" {
					t.Fatalf("close = %d %q, want 4000 bye-4000", c.Code, c.Reason)
				}
				if e, ok := d.Next(0); ok {
					t.Fatalf("unexpected event after close: %v", e)
				}
			})

			t.Run("client-close", func(t *testing.T) {
				d := k.Start(t)
				connect(t, d, srv.url("/echo"))
				send(d, t, map[string]any{"op": "close", "code": 1000, "reason": "bye"})
				// gorilla's server echoes the close frame it receives.
				if c := d.Expect(t, "close", wait); c.Code != 1000 {
					t.Fatalf("close code = %d, want 1000", c.Code)
				}
			})

			t.Run("fragments-on-the-wire", func(t *testing.T) {
				d := k.Start(t)
				connect(t, d, srv.url("/frames"))
				for i, part := range []string{"ab", "cd", "ef"} {
					send(d, t, map[string]any{"op": "send", "data": part, "fin": i == 2})
				}
				m := d.Expect(t, "message", wait)
				var frames []frameInfo
				if err := json.Unmarshal([]byte(m.Data), &frames); err != nil {
					t.Fatalf("bad report %q: %v", m.Data, err)
				}
				t.Logf("frames on the wire: %+v", frames)
				var parts []string
				for i, f := range frames {
					wantOp := 0
					if i == 0 {
						wantOp = 1
					}
					if f.Op != wantOp || f.Fin != (i == len(frames)-1) {
						t.Fatalf("frame %d of %+v: want op %d, fin only on the last", i, frames, wantOp)
					}
					if f.Data != "" {
						parts = append(parts, f.Data)
					}
				}
				if strings.Join(parts, ",") != "ab,cd,ef" {
					t.Fatalf("fragments = %+v, want ab, cd, ef", frames)
				}
			})

			t.Run("headers-and-deflate", func(t *testing.T) {
				d := k.Start(t)
				send(d, t, map[string]any{
					"op":      "connect",
					"url":     srv.url("/hdr"),
					"headers": map[string]any{"Origin": "http://a.example", "X-Test": "v1"},
					"deflate": true,
				})
				d.Expect(t, "open", wait)
				expectMessage(t, d, "X-Test=v1;Origin=http://a.example;offer-deflate=true", false)
				big := strings.Repeat("pondsocket ", 400) // above ws's 1 KiB compression threshold
				send(d, t, map[string]any{"op": "send", "data": big})
				expectMessage(t, d, big, false)
			})

			t.Run("refused-upgrade", func(t *testing.T) {
				d := k.Start(t)
				send(d, t, map[string]any{"op": "connect", "url": srv.url("/deny")})
				e := d.Expect(t, "error", wait)
				if e.Status != http.StatusUnauthorized {
					t.Fatalf("refused upgrade: status = %d, want 401 (%v)", e.Status, e)
				}
				if c := d.Expect(t, "close", wait); c.Code != 1006 {
					t.Fatalf("close after refused upgrade: code %d, want 1006", c.Code)
				}
			})

			t.Run("not-connected", func(t *testing.T) {
				d := k.Start(t)
				d.Send(map[string]any{"op": "send", "data": "x"})
				if e := d.Expect(t, "error", wait); e.Op != "send" {
					t.Fatalf("error = %v, want one for op send", e)
				}
			})

			t.Run("exit", func(t *testing.T) {
				d := k.Start(t)
				d.Send(map[string]any{"op": "exit"})
				if e, ok := d.Next(wait); ok {
					t.Fatalf("event after exit: %v", e)
				}
				d.mu.Lock()
				done := d.done
				d.mu.Unlock()
				if !done {
					t.Fatal("driver did not stop after exit")
				}
			})
		})
	}
}

func TestExpectKeepsOtherEventsInOrder(t *testing.T) {
	d := newDriver("fake")
	for _, ev := range []string{"ack", "message", "pong", "message", "close"} {
		d.push(Event{Ev: ev, Data: ev})
	}
	if e := d.Expect(t, "pong", time.Second); e.Ev != "pong" {
		t.Fatalf("got %v", e)
	}
	var got []string
	for {
		e, ok := d.Next(0)
		if !ok {
			break
		}
		got = append(got, e.Ev)
	}
	if want := "ack,message,message,close"; strings.Join(got, ",") != want {
		t.Fatalf("remaining = %v, want %s", got, want)
	}
	if len(d.History()) != 5 {
		t.Fatalf("history has %d events, want 5", len(d.History()))
	}
}

func TestExpectWakesOnLateEvent(t *testing.T) {
	d := newDriver("fake")
	go d.push(Event{Ev: "open"})
	d.Expect(t, "open", wait)
	d.finish("gone")
	if _, ok := d.Next(wait); ok {
		t.Fatal("Next after finish returned an event")
	}
}

func TestDecodeEvent(t *testing.T) {
	ev := decodeEvent([]byte(`{"ev":"message","data":"AAH/","binary":true}` + "\n"))
	if ev.Ev != "message" || !ev.Binary || !bytes.Equal([]byte(ev.Data), []byte{0, 1, 0xff}) {
		t.Fatalf("decoded %+v", ev)
	}
	ev = decodeEvent([]byte(`{"ev":"close","code":1006,"reason":""}`))
	if ev.Ev != "close" || ev.Code != 1006 {
		t.Fatalf("decoded %+v", ev)
	}
	if ev = decodeEvent([]byte("not json")); ev.Ev != "error" {
		t.Fatalf("decoded %+v", ev)
	}
}

func TestRepoRoot(t *testing.T) {
	root := RepoRoot()
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "internal", "testenv")); err != nil {
		t.Fatal(err)
	}
}

func TestClientFrameLengths(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		f, err := clientFrame(true, 2, bytes.Repeat([]byte{'x'}, n))
		if err != nil {
			t.Fatal(err)
		}
		hdr := 6
		switch {
		case n > 65535:
			hdr = 14
		case n >= 126:
			hdr = 8
		}
		if len(f) != hdr+n || f[0] != 0x82 || f[1]&0x80 == 0 {
			t.Fatalf("n=%d: frame len %d, header % x", n, len(f), f[:2])
		}
	}
}
