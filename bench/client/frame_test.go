package client

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

type gotFrame struct {
	op      byte
	payload string
}

// feedChunks feeds chunks the way a loop does: unconsumed bytes are kept
// and prefixed to the next chunk.
func feedChunks(t *testing.T, r *FrameReader, chunks [][]byte) ([]gotFrame, error) {
	t.Helper()
	var got []gotFrame
	var held []byte
	for _, ch := range chunks {
		data := append(held, ch...)
		n, err := r.Feed(data, func(op byte, p []byte) error {
			got = append(got, gotFrame{op, string(p)})
			return nil
		})
		if err != nil {
			return got, err
		}
		held = append([]byte(nil), data[n:]...)
	}
	if len(held) != 0 {
		return got, fmt.Errorf("%d bytes left unconsumed", len(held))
	}
	return got, nil
}

func serverStream() ([]byte, []gotFrame) {
	var s []byte
	var want []gotFrame
	add := func(op byte, p string) {
		s = AppendServerFrame(s, op, []byte(p))
		want = append(want, gotFrame{op, p})
	}
	add(OpText, `{"action":"CONNECT","event":"CONNECTION","channelName":"ENDPOINT","requestId":"x","payload":{}}`)
	add(OpText, strings.Repeat("a", 126))   // 16-bit length, smallest
	add(OpText, strings.Repeat("b", 70000)) // 64-bit length
	add(OpPing, "hb")
	add(OpText, "")
	// fragmented: text(FIN=0) "he", ping, continuation(FIN=0) "ll", continuation(FIN=1) "o"
	s = append(s, 0x01, 2, 'h', 'e')
	s = AppendServerFrame(s, OpPing, []byte("mid"))
	want = append(want, gotFrame{OpPing, "mid"})
	s = append(s, 0x00, 2, 'l', 'l')
	s = append(s, 0x80, 1, 'o')
	want = append(want, gotFrame{OpText, "hello"})
	add(OpBinary, "\x00\x01")
	add(OpClose, "\x03\xe8bye")
	return s, want
}

func TestFrameReaderSplitAtEveryByte(t *testing.T) {
	stream, want := serverStream()
	check := func(name string, chunks [][]byte) {
		t.Helper()
		r := &FrameReader{}
		got, err := feedChunks(t, r, chunks)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d frames, want %d", name, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: frame %d = op %d len %d, want op %d len %d", name, i, got[i].op, len(got[i].payload), want[i].op, len(want[i].payload))
			}
		}
	}
	check("whole", [][]byte{stream})
	for i := 1; i < len(stream); i++ {
		if i > 400 && i < len(stream)-400 && i%997 != 0 {
			continue // the long frame's middle: every boundary is the same case
		}
		check(fmt.Sprintf("split@%d", i), [][]byte{stream[:i], stream[i:]})
	}
	// The first 300 bytes one at a time, which covers every header.
	chunks := [][]byte{}
	for i := 0; i < 300; i++ {
		chunks = append(chunks, stream[i:i+1])
	}
	chunks = append(chunks, stream[300:])
	check("bytewise", chunks)
}

func TestFrameReaderMaskedFrames(t *testing.T) {
	mask := [4]byte{1, 2, 3, 4}
	var s []byte
	s = AppendFrame(s, OpText, []byte(`{"a":1}`), mask)
	s = AppendFrame(s, OpText, bytes.Repeat([]byte("z"), 300), mask)
	for i := 1; i < len(s); i++ {
		r := &FrameReader{AllowMasked: true}
		got, err := feedChunks(t, r, [][]byte{s[:i], s[i:]})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got[0].payload != `{"a":1}` || got[1].payload != strings.Repeat("z", 300) {
			t.Fatalf("split@%d: got %+v", i, got)
		}
	}
	r := &FrameReader{}
	if _, err := feedChunks(t, r, [][]byte{s}); !errors.Is(err, ErrUnexpectedMask) {
		t.Fatalf("masked server frame: err %v, want ErrUnexpectedMask", err)
	}
}

func TestFrameReaderErrors(t *testing.T) {
	for _, c := range []struct {
		name  string
		in    []byte
		max   int64
		match error
	}{
		{"reserved bits", []byte{0xC1, 0}, 0, ErrProtocol},
		{"reserved opcode", []byte{0x83, 0}, 0, ErrProtocol},
		{"fragmented ping", []byte{0x09, 0}, 0, ErrProtocol},
		{"long ping", append([]byte{0x89, 126, 0, 126}, make([]byte, 126)...), 0, ErrProtocol},
		{"lone continuation", []byte{0x80, 1, 'x'}, 0, ErrBadContinuation},
		{"text inside fragments", []byte{0x01, 1, 'a', 0x81, 1, 'b'}, 0, ErrProtocol},
		{"too large", []byte{0x81, 126, 0x10, 0x00}, 1000, ErrFrameTooLarge},
		{"fragments too large", append([]byte{0x01, 100}, append(make([]byte, 100), append([]byte{0x80, 100}, make([]byte, 100)...)...)...), 150, ErrFrameTooLarge},
	} {
		r := &FrameReader{MaxFrame: c.max}
		_, err := r.Feed(c.in, func(byte, []byte) error { return nil })
		if !errors.Is(err, c.match) {
			t.Errorf("%s: err %v, want %v", c.name, err, c.match)
		}
	}
}

func TestAppendFrameRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 100000} {
		p := bytes.Repeat([]byte{'q'}, n)
		f := AppendFrame(nil, OpText, p, [4]byte{9, 8, 7, 6})
		h, hn, err := ParseHeader(f)
		if err != nil || hn == 0 {
			t.Fatalf("n=%d: header %v %d", n, err, hn)
		}
		if !h.Masked || h.Len != int64(n) || h.Op != OpText || !h.Fin {
			t.Fatalf("n=%d: header %+v", n, h)
		}
		if len(f) != hn+n {
			t.Fatalf("n=%d: frame is %d bytes, header %d", n, len(f), hn)
		}
		r := &FrameReader{AllowMasked: true}
		var got []byte
		if _, err := r.Feed(f, func(_ byte, q []byte) error { got = append(got, q...); return nil }); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, p) {
			t.Fatalf("n=%d: round trip differs", n)
		}
	}
}

// FuzzFrameReader checks that feeding a stream in two pieces gives the same
// frames as feeding it whole, and that nothing panics on any input.
func FuzzFrameReader(f *testing.F) {
	s, _ := serverStream()
	f.Add(s[:200], 7)
	f.Add([]byte{0x81, 126, 0, 200}, 3)
	f.Add([]byte{0x01, 1, 'a', 0x89, 0, 0x80, 1, 'b'}, 4)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		if split < 0 {
			split = -split
		}
		split %= len(data) + 1
		collect := func(chunks ...[]byte) ([]gotFrame, error) {
			r := &FrameReader{MaxFrame: 1 << 20}
			var got []gotFrame
			var held []byte
			for _, ch := range chunks {
				buf := append(append([]byte(nil), held...), ch...)
				n, err := r.Feed(buf, func(op byte, p []byte) error {
					got = append(got, gotFrame{op, string(p)})
					return nil
				})
				if err != nil {
					return got, err
				}
				held = buf[n:]
			}
			return got, nil
		}
		whole, errW := collect(data)
		parts, errP := collect(data[:split], data[split:])
		if (errW == nil) != (errP == nil) {
			t.Fatalf("whole feed error %v, split feed error %v", errW, errP)
		}
		if errW == nil && fmt.Sprint(whole) != fmt.Sprint(parts) {
			t.Fatalf("whole feed gave %d frames, split at %d gave %d", len(whole), split, len(parts))
		}
	})
}
