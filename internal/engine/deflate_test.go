package engine

import (
	"bytes"
	"compress/flate"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/internal/wsframe"

	"github.com/gorilla/websocket"

	"github.com/pondsocket/pondsocket/internal/testenv"
)

func deflateRaw(p []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.BestCompression)
	w.Write(p)
	w.Flush()
	return bytes.TrimSuffix(b.Bytes(), []byte{0, 0, 0xff, 0xff})
}

// Compression negotiated with gorilla: large messages travel compressed
// both ways (RSV1 on the wire, fewer bytes out than in), small ones do not.
func TestDeflateWithGorilla(t *testing.T) {
	h := newEchoHandler()
	e := startEngine(t, Config{EnableCompression: true}, h)
	d := websocket.Dialer{EnableCompression: true}
	c, resp, err := d.Dial(wsURL(e, "/z"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := resp.Header.Get("Sec-Websocket-Extensions"); got != DeflateExtension {
		t.Fatalf("negotiated %q", got)
	}
	msg := strings.Repeat(`{"text":"hello hello hello"},`, 200) // 5.8 KB, compressible
	before := e.Stats().BytesOut.Load()
	c.EnableWriteCompression(true)
	for i := 0; i < 5; i++ {
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, got, err := c.ReadMessage()
		if err != nil || string(got) != msg {
			t.Fatalf("echo %d: %v (len %d)", i, err, len(got))
		}
	}
	if out := e.Stats().BytesOut.Load() - before; out > int64(5*len(msg)/4) {
		t.Fatalf("%d bytes out for 5×%d-byte messages: not compressed", out, len(msg))
	}
	if in := e.Stats().BytesIn.Load(); in > int64(5*len(msg)/4) {
		t.Fatalf("%d bytes in: the client's compressed messages were not taken", in)
	}
}

// The raw wire: RSV1 frames are inflated, the size limit applies to the
// inflated size, garbage is refused, and RSV1 without negotiation is 1002.
func TestDeflateRules(t *testing.T) {
	e := startEngine(t, oneLoop(Config{EnableCompression: true, MaxMessageSize: 64 << 10}), newEchoHandler())
	by := dialRaw(t, e, "/bystander").pump()
	ext := "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits"

	// a compressed client message, fragmented: RSV1 on the first frame only
	r := dialRaw(t, e, "/x", ext)
	small := []byte(strings.Repeat("abc", 20))
	z := deflateRaw(small)
	r.write(append(frame(false, 4, 1, z[:len(z)/2], true), frame(true, 0, 0, z[len(z)/2:], true)...))
	r.expectFrame(wsframe.OpText, string(small)) // 60 bytes: echoed uncompressed

	// zip bomb: 1 MiB of zeros compresses to ~1 KB; the 64 KiB limit applies
	// to the inflated size
	bomb := deflateRaw(make([]byte, 1<<20))
	if len(bomb) > 64<<10 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	r.write(frame(true, 4, 1, bomb, true))
	r.expectClose(1009)
	bystanderOK(t, by, "bomb")

	// not deflate at all
	r = dialRaw(t, e, "/x", ext)
	r.write(frame(true, 4, 1, []byte{0xff, 0xff, 0xff, 0xff, 0x12}, true))
	r.expectClose(1007)

	// RSV1 on a continuation frame
	r = dialRaw(t, e, "/x", ext)
	r.write(append(frame(false, 0, 1, []byte("a"), true), frame(true, 4, 0, []byte("b"), true)...))
	r.expectClose(1002)

	// RSV1 without the extension negotiated
	r = dialRaw(t, e, "/x")
	r.write(frame(true, 4, 1, z, true))
	r.expectClose(1002)
	bystanderOK(t, by, "end")
}

// A broadcast is compressed once and the compressed bytes are shared by
// every recipient that negotiated the extension.
func TestDeflateCompressedOnce(t *testing.T) {
	payload := []byte(strings.Repeat("shared bytes ", 100))
	f := wsframe.NewStaticFrame(wsframe.OpText, payload)
	defer f.Release()
	a, b := deflatedFrame(f), deflatedFrame(f)
	if &a[0] != &b[0] {
		t.Fatal("the compressed form was built twice")
	}
	if a[0] != 0x80|0x40|wsframe.OpText || len(a) >= len(f.Bytes()) {
		t.Fatalf("compressed frame header %#x, len %d vs %d", a[0], len(a), len(f.Bytes()))
	}
}

// Real clients that offer the extension: Node's ws (perMessageDeflate) and
// Python's websockets (compression on by default).
func TestDeflateWithRealClients(t *testing.T) {
	for _, k := range testenv.AllDrivers() {
		if k.Name == "go-gorilla" {
			continue // TestDeflateWithGorilla
		}
		t.Run(k.Name, func(t *testing.T) {
			e := startEngine(t, Config{EnableCompression: true}, newEchoHandler())
			d := k.Start(t)
			d.Send(map[string]any{"op": "connect", "url": wsURL(e, "/z"), "deflate": true})
			d.Expect(t, "open", 5*time.Second)
			msg := strings.Repeat("compress me please ", 300)
			before := e.Stats().BytesOut.Load()
			d.Send(map[string]any{"op": "send", "data": msg})
			if ev := d.Expect(t, "message", 5*time.Second); ev.Data != msg {
				t.Fatalf("echo of %d bytes came back as %d", len(msg), len(ev.Data))
			}
			if out := e.Stats().BytesOut.Load() - before; out >= int64(len(msg)) {
				t.Fatalf("%d bytes out for a %d-byte message: not compressed", out, len(msg))
			}
		})
	}
}

// BenchmarkDeflateBroadcast is the cost of compressing one 2 KiB JSON
// broadcast (done once per message, whatever the number of recipients) and
// the wire bytes saved.
//
//	go test -run=^$ -bench=DeflateBroadcast -benchmem ./engine/
func BenchmarkDeflateBroadcast(b *testing.B) {
	var msgs []string
	for i := 0; len(strings.Join(msgs, ",")) < 2000; i++ {
		msgs = append(msgs, `{"id":"m`+strings.Repeat("7", i%5+1)+`","user":"alice","text":"see you at the standup in room 4, bring the notes","ts":1795301284743}`)
	}
	payload := []byte(`{"action":"BROADCAST","event":"history","channelName":"/chat/lobby","requestId":"r1","payload":{"messages":[` + strings.Join(msgs, ",") + `]}}`)
	var wire int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f := wsframe.NewStaticFrame(wsframe.OpText, payload)
		wire = len(deflatedFrame(f))
		f.Release()
	}
	b.ReportMetric(float64(len(payload)), "bytes-plain")
	b.ReportMetric(float64(wire), "bytes-deflated")
}

// The bytes a client may make the server inflate are bounded per second:
// 60 KiB messages that arrive as a few hundred bytes each, sent as fast as
// possible, end with close 1008 once the budget is spent; before, every
// one was inflated (1 MB of upload could cost a gigabyte of work).
func TestInflateRateBounded(t *testing.T) {
	h := &countingEcho{echoHandler: newEchoHandler()}
	e := startEngine(t, oneLoop(Config{EnableCompression: true, MaxMessageSize: 64 << 10, MaxInflateRate: 1 << 20}), h)
	by := dialRaw(t, e, "/bystander").pump()
	r := dialRaw(t, e, "/x", "Sec-WebSocket-Extensions: permessage-deflate")
	z := frame(true, 4, 1, deflateRaw(make([]byte, 60<<10)), true)
	// budget: 4 × 64 KiB burst + 1 MiB/s; 200 messages of 60 KiB = 12 MiB
	for range 200 {
		if _, err := r.c.Write(z); err != nil {
			break
		}
	}
	r.expectClose(1008)
	if n := h.messages.Load(); n >= 200 || n < 4 {
		t.Fatalf("%d of 200 compressed messages were inflated", n)
	}
	bystanderOK(t, by, "after-inflate-flood")
}

type countingEcho struct {
	*echoHandler
	messages atomic.Int64
}

func (h *countingEcho) OnMessage(c *Conn, op byte, data []byte) {
	if len(data) < 1024 {
		h.echoHandler.OnMessage(c, op, data)
		return
	}
	h.messages.Add(1)
}
