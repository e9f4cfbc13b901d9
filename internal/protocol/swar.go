package protocol

import (
	"encoding/binary"
	"unsafe"
)

// Eight bytes at a time. Most of a message is string content that needs no
// attention, so the scanner, the compactor and the unquoter skip it a
// 64-bit word at a time. Each test below is exact about whether some byte
// of the word qualifies (the has-zero-byte and has-less-than expressions
// have no false negatives, and their false positives only ever fall on
// bytes above one that qualifies), so a word they pass is plain, and any
// other word is left to the byte-by-byte code.

const (
	lsb = 0x0101010101010101
	msb = 0x8080808080808080
)

func word(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

// stringWordAt is word(s[i:]) for a string, without a copy.
func stringWordAt(s string, i int) uint64 {
	return binary.LittleEndian.Uint64(unsafe.Slice(unsafe.StringData(s[i:]), 8))
}

// zeroByte has the top bit of a byte set when that byte of w is 0 (exact
// for the lowest such byte).
func zeroByte(w uint64) uint64 { return (w - lsb) &^ w }

// ctlByte has the top bit of a byte set when that byte of w is below 0x20
// (exact for the lowest such byte).
func ctlByte(w uint64) uint64 { return (w - lsb*0x20) &^ w }

// stringWord reports whether none of the 8 bytes of w ends a JSON string
// or needs a look there: no '"', no '\\', no control character. Bytes of
// 0x80 and above pass.
func stringWord(w uint64) bool { return stringStop(w) == 0 }

// stringStop has the top bit set of the first byte of w that ends a JSON
// string or needs a look there ('"', '\\' or a control character), and
// maybe of later bytes; 0 when there is none. bits.TrailingZeros64 of it,
// divided by 8, is that first byte's index.
func stringStop(w uint64) uint64 {
	return (zeroByte(w^(lsb*'"')) | zeroByte(w^(lsb*'\\')) | ctlByte(w)) & msb
}

// asciiStringWord is stringWord for ASCII only: bytes of 0x80 and above
// (UTF-8 to check) fail too.
func asciiStringWord(w uint64) bool {
	return (zeroByte(w^(lsb*'"'))|zeroByte(w^(lsb*'\\'))|ctlByte(w)|w)&msb == 0
}

// escapeFreeWord reports whether w has neither '\\' nor a byte of 0x80 or
// above: string content whose value is its bytes.
func escapeFreeWord(w uint64) bool {
	return (zeroByte(w^(lsb*'\\'))|w)&msb == 0
}

// plainJSON reports whether b has no whitespace, control character or byte
// of 0x80 and above: valid JSON made only of other bytes is already
// compact, single-line ASCII, so appendCompact copies it as it is.
func plainJSON(b []byte) bool {
	for ; len(b) >= 8; b = b[8:] {
		w := word(b)
		if ((w-lsb*0x21)&^w|w)&msb != 0 {
			return false
		}
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x80 {
			return false
		}
	}
	return true
}
