// Package wsframe holds the server side of RFC 6455 framing: the opcodes,
// the one function that writes a frame header, and the pooled,
// reference-counted Frame that a broadcast is encoded into once and written
// to every recipient. The engine owns it; the protocol package only appends
// JSON into a Frame and seals it.
package wsframe

import (
	"encoding/binary"
	"unicode/utf8"
)

// WebSocket opcodes (RFC 6455 §5.2).
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xa
)

// Header bits of the first byte.
const (
	Fin  byte = 0x80
	RSV1 byte = 0x40 // permessage-deflate: the message is compressed
)

// MaxHeader is the longest header of an unmasked (server) frame.
const MaxHeader = 10

// AppendHeader appends the header of an unmasked server frame carrying n
// payload bytes; b0 is FIN, RSV and the opcode. Every server frame's header
// is written by this function.
func AppendHeader(dst []byte, b0 byte, n int) []byte {
	switch {
	case n < 126:
		return append(dst, b0, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(dst, b0, 126), uint16(n))
	default:
		return binary.BigEndian.AppendUint64(append(dst, b0, 127), uint64(n))
	}
}

// Append appends a complete unmasked server frame.
func Append(dst []byte, b0 byte, payload []byte) []byte {
	return append(AppendHeader(dst, b0, len(payload)), payload...)
}

// Close is a close frame with code and reason (code 0: no code, as RFC
// 6455 allows); the reason is cut to fit a control frame, on a UTF-8
// boundary.
func Close(code uint16, reason string) []byte {
	if code == 0 {
		return Append(nil, Fin|OpClose, nil)
	}
	if len(reason) > 123 {
		reason = reason[:123]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	p := binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), code)
	return Append(nil, Fin|OpClose, append(p, reason...))
}
