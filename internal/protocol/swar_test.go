package protocol

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// The word tests agree with their byte-by-byte definitions on words made
// of the bytes that matter (every byte near a boundary) and random ones.
func TestWordTests(t *testing.T) {
	edge := []byte{0x00, 0x01, 0x08, 0x09, 0x0a, 0x0d, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x2f, 0x5b, 0x5c, 0x5d, 0x7e, 0x7f, 0x80, 0x81, 0xa0, 0xc2, 0xe2, 0xfe, 0xff, 'a', 'x', '{', '}'}
	all := func(b []byte, ok func(byte) bool) bool {
		for _, c := range b {
			if !ok(c) {
				return false
			}
		}
		return true
	}
	r := rand.New(rand.NewPCG(1, 2))
	var b [8]byte
	for n := 0; n < 2_000_000; n++ {
		for i := range b {
			if r.IntN(4) == 0 {
				b[i] = byte(r.IntN(256))
			} else {
				b[i] = edge[r.IntN(len(edge))]
			}
		}
		w := binary.LittleEndian.Uint64(b[:])
		inString := func(c byte) bool { return c >= 0x20 && c != '"' && c != '\\' }
		if got, want := stringWord(w), all(b[:], inString); got != want {
			t.Fatalf("stringWord(% x) = %v, want %v", b, got, want)
		}
		if got, want := asciiStringWord(w), all(b[:], func(c byte) bool { return inString(c) && c < 0x80 }); got != want {
			t.Fatalf("asciiStringWord(% x) = %v, want %v", b, got, want)
		}
		if got, want := escapeFreeWord(w), all(b[:], func(c byte) bool { return c != '\\' && c < 0x80 }); got != want {
			t.Fatalf("escapeFreeWord(% x) = %v, want %v", b, got, want)
		}
		if got, want := plainJSON(b[:]), all(b[:], func(c byte) bool { return c > ' ' && c < 0x80 }); got != want {
			t.Fatalf("plainJSON(% x) = %v, want %v", b, got, want)
		}
	}
}
