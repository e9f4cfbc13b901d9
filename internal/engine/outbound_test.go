package engine

import (
	"bytes"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/internal/wsframe"
)

// burstHandler answers "burst:N" with N frames of 1 MiB, all sent at once,
// and echoes anything else.
type burstHandler struct{ *echoHandler }

func (h burstHandler) OnMessage(c *Conn, op byte, data []byte) {
	if n, ok := strings.CutPrefix(string(data), "burst:"); ok {
		big := bytes.Repeat([]byte("x"), 1<<20)
		for range len(n) {
			f := wsframe.NewStaticFrame(wsframe.OpText, big)
			c.Send(f)
			f.Release()
		}
		return
	}
	h.echoHandler.OnMessage(c, op, data)
}

func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// A client that sends pings and never reads: before, every ping was
// answered by a pong written straight to the socket, bypassing the
// outbound limit, and the heap grew by the size of the flood. Now pongs
// are collapsed (one per read, for the latest ping) and count against the
// limit; a peer that stays over it is cut as a slow consumer.
func TestPingFloodIsBounded(t *testing.T) {
	h := newEchoHandler()
	e := startEngine(t, oneLoop(Config{MaxOutboundBytes: 256 << 10, SlowConsumerTimeout: 200 * time.Millisecond}), h)
	by := dialRaw(t, e, "/bystander").pump()
	att := dialRaw(t, e, "/attacker")
	before := heapInUse()
	ping := frame(true, 0, 0x9, bytes.Repeat([]byte("p"), 125), true)
	chunk := bytes.Repeat(ping, (256<<10)/len(ping))
	const total = 96 << 20
	deadline := time.Now().Add(20 * time.Second)
	sent := 0
	for sent < total && time.Now().Before(deadline) {
		_ = att.c.SetWriteDeadline(time.Now().Add(2 * time.Second))
		n, err := att.c.Write(chunk)
		sent += n
		if err != nil {
			break // cut: that is one of the allowed outcomes
		}
	}
	peak := heapInUse()
	t.Logf("sent %d MB of pings; heap in use %d → %d MB; slow consumers %d", sent>>20, before>>20, peak>>20, e.Stats().SlowConsumers.Load())
	if peak > before+32<<20 {
		t.Errorf("heap grew by %d MB during a ping flood; pongs are not bounded", (peak-before)>>20)
	}
	bystanderOK(t, by, "after-ping-flood")
}

// A burst of frames queued for a reader that keeps up is not a slow
// consumer: before, bytes queued in one loop iteration were compared with
// the limit before any was written, and a 6 MiB burst cut a healthy
// reader.
func TestMomentaryBurstIsNotSlow(t *testing.T) {
	h := burstHandler{newEchoHandler()}
	e := startEngine(t, oneLoop(Config{MaxOutboundBytes: 4 << 20}), h)
	r := dialRaw(t, e, "/reader").pump()
	r.send(wsframe.OpText, "burst:123456")
	for i := range 6 {
		select {
		case f, ok := <-r.frames:
			if !ok {
				t.Fatalf("connection closed after %d of 6 frames (slow consumers %d)", i, e.Stats().SlowConsumers.Load())
			}
			if f.op == 0x8 {
				t.Fatalf("closed after %d of 6 frames: %q", i, f.payload)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("frame %d of 6 did not arrive", i)
		}
	}
	bystanderOK(t, r, "after-burst")
}

// A reader that stops reading is still cut, once it has stayed over the
// limit for SlowConsumerTimeout, with close 1008, and the handler learns
// of it at once (not after the close handshake times out).
func TestStalledReaderIsCut(t *testing.T) {
	h := burstHandler{newEchoHandler()}
	e := startEngine(t, oneLoop(Config{MaxOutboundBytes: 1 << 20, SlowConsumerTimeout: 200 * time.Millisecond, CloseTimeout: time.Minute}), h)
	by := dialRaw(t, e, "/bystander").pump()
	r := dialRaw(t, e, "/stalled")
	if tc, ok := r.c.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4 << 10)
	}
	r.send(wsframe.OpText, "burst:12345678")
	select {
	case code := <-h.closeC:
		if code != 1008 {
			t.Fatalf("closed with %d, want 1008", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a stalled reader was not cut")
	}
	if e.Stats().SlowConsumers.Load() != 1 {
		t.Fatalf("slow consumers %d, want 1", e.Stats().SlowConsumers.Load())
	}
	bystanderOK(t, by, "after-cut")
}

// Without waiting for SlowConsumerTimeout, a stalled reader is cut at once
// when its pending bytes pass MaxOutboundBurst, or when it is over
// MaxOutboundBytes while all connections together pass
// MaxTotalOutboundBytes.
func TestOutboundHardLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"burst", Config{MaxOutboundBytes: 1 << 20, MaxOutboundBurst: 2 << 20}},
		{"total", Config{MaxOutboundBytes: 1 << 20, MaxOutboundBurst: 64 << 20, MaxTotalOutboundBytes: 2 << 20}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := burstHandler{newEchoHandler()}
			cfg := tc.cfg
			cfg.SlowConsumerTimeout = time.Hour
			cfg.CloseTimeout = time.Minute
			e := startEngine(t, oneLoop(cfg), h)
			by := dialRaw(t, e, "/bystander").pump()
			r := dialRaw(t, e, "/stalled")
			if tc, ok := r.c.(*net.TCPConn); ok {
				_ = tc.SetReadBuffer(4 << 10)
			}
			r.send(wsframe.OpText, "burst:"+strings.Repeat("x", 12))
			select {
			case code := <-h.closeC:
				if code != 1008 {
					t.Fatalf("closed with %d, want 1008", code)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("a stalled reader over the hard limit was not cut")
			}
			bystanderOK(t, by, "after-"+tc.name)
		})
	}
}
