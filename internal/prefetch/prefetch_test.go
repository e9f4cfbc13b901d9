package prefetch

import (
	"testing"
	"unsafe"
)

// A prefetch is a hint: whatever it is given, it must not fault or
// change memory.
func TestPrefetchIsHarmless(t *testing.T) {
	buf := make([]byte, 4096)
	for i := range buf {
		buf[i] = byte(i)
	}
	Line(nil)
	Lines(nil, 4)
	Line(unsafe.Pointer(&buf[0]))
	Lines(unsafe.Pointer(&buf[0]), len(buf)/64)
	Lines(unsafe.Pointer(&buf[0]), 0)
	Lines(unsafe.Pointer(&buf[0]), -1)
	// past the end of the buffer
	Lines(unsafe.Pointer(&buf[len(buf)-1]), 64)
	Any(nil, 2)
	Any(42, 2)
	Any("text", 1)
	Any(&buf, 2)
	for i := range buf {
		if buf[i] != byte(i) {
			t.Fatalf("byte %d changed", i)
		}
	}
}

func BenchmarkLine(b *testing.B) {
	x := new([64]byte)
	for b.Loop() {
		Line(unsafe.Pointer(x))
	}
}
