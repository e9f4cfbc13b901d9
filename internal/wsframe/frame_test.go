package wsframe

import (
	"bytes"
	"encoding/binary"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

func TestFrameSealHeaders(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 0xffff, 0x10000, 70000} {
		payload := bytes.Repeat([]byte{'a'}, n)
		f := NewStaticFrame(OpText, payload)
		b := f.Bytes()
		var hdr []byte
		switch {
		case n < 126:
			hdr = []byte{0x81, byte(n)}
		case n <= 0xffff:
			hdr = binary.BigEndian.AppendUint16([]byte{0x81, 126}, uint16(n))
		default:
			hdr = binary.BigEndian.AppendUint64([]byte{0x81, 127}, uint64(n))
		}
		if !bytes.Equal(b[:len(hdr)], hdr) || !bytes.Equal(b[len(hdr):], payload) || !bytes.Equal(f.Payload(), payload) {
			t.Errorf("n=%d: header % x, want % x", n, b[:len(hdr)], hdr)
		}
		if f.Len() != n || !f.Sealed() || f.Op() != OpText {
			t.Errorf("n=%d: Len %d Sealed %v Op %#x", n, f.Len(), f.Sealed(), f.Op())
		}
		f.Release()
	}
}

func TestFrameBuild(t *testing.T) {
	f := NewFrame()
	if f.Sealed() || f.Refs() != 1 {
		t.Fatalf("new frame: sealed %v refs %d", f.Sealed(), f.Refs())
	}
	_, _ = f.WriteString("hello")
	_ = f.WriteByte(' ')
	_, _ = f.Write([]byte("world"))
	f.AppendTo(func(dst []byte) []byte { return append(dst, '!') })
	f.Seal(OpBinary)
	if got := string(f.Bytes()); got != "\x82\x0chello world!" {
		t.Fatalf("Bytes = %q", got)
	}
	f.Release()
}

func TestFrameRefcountAndDerived(t *testing.T) {
	f := NewStaticFrame(OpText, []byte("payload"))
	f.Retain(8)
	var wg sync.WaitGroup
	calls := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := f.Derived("upper", func(p []byte) []byte {
				calls++ // under f.mu
				return bytes.ToUpper(p)
			})
			if string(d) != "PAYLOAD" {
				t.Errorf("derived %q", d)
			}
			f.Release()
		}()
	}
	wg.Wait()
	if calls != 1 || f.Refs() != 1 {
		t.Fatalf("build calls %d, refs %d", calls, f.Refs())
	}
	f.Release()
	defer func() {
		if recover() == nil {
			t.Error("over-release did not panic")
		}
	}()
	var g Frame // zero references
	g.Release()
}

func TestCloseFrame(t *testing.T) {
	if got := Close(0, ""); !bytes.Equal(got, []byte{0x88, 0}) {
		t.Fatalf("no code: % x", got)
	}
	if got := Close(1011, ""); !bytes.Equal(got, []byte{0x88, 2, 0x03, 0xf3}) {
		t.Fatalf("1011: % x", got)
	}
	// a reason cut to the 125-byte control limit, never inside a rune
	long := strings.Repeat("é", 100) // 200 bytes
	got := Close(1008, long)
	if len(got) > 2+125 || got[1] != byte(len(got)-2) || !utf8.Valid(got[4:]) {
		t.Fatalf("long reason: len %d, header %d, valid %v", len(got), got[1], utf8.Valid(got[4:]))
	}
}

// A frame's buffer waits in the pool with it, unless a large message grew
// it past maxPooledBuffer: that one is dropped, not kept for small ones.
func TestReleasedBufferIsKeptOnlyWhenSmall(t *testing.T) {
	small := NewStaticFrame(OpText, []byte("hello"))
	small.Release()
	if small.spare == nil || small.buf != nil {
		t.Fatal("a small frame's buffer was not kept with it")
	}
	big := NewStaticFrame(OpText, make([]byte, maxPooledBuffer+1))
	big.Release()
	if big.spare != nil || big.buf != nil {
		t.Fatalf("a %d-byte buffer was kept for reuse", cap(big.spare.B))
	}
}
