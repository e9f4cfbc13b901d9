package client

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/gobwas/ws"
)

// WebSocket opcodes (RFC 6455 §5.2).
const (
	OpContinuation byte = 0x0
	OpText         byte = 0x1
	OpBinary       byte = 0x2
	OpClose        byte = 0x8
	OpPing         byte = 0x9
	OpPong         byte = 0xA
)

// Errors of the frame reader; each closes the connection.
var (
	ErrFrameTooLarge   = errors.New("client: frame larger than the limit")
	ErrProtocol        = errors.New("client: websocket protocol violation")
	ErrUnexpectedMask  = errors.New("client: server frame is masked")
	ErrBadContinuation = errors.New("client: continuation without a started message")
)

// FrameHeader is a parsed frame header.
type FrameHeader struct {
	Fin    bool
	Op     byte
	Masked bool
	Mask   [4]byte
	Len    int64
}

// ParseHeader parses the frame header at the start of b. It returns n = 0
// and no error when b does not yet hold the whole header.
func ParseHeader(b []byte) (h FrameHeader, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	h.Fin = b[0]&0x80 != 0
	if b[0]&0x70 != 0 {
		return h, 0, fmt.Errorf("%w: reserved bits set (no extension negotiated)", ErrProtocol)
	}
	h.Op = b[0] & 0x0f
	h.Masked = b[1]&0x80 != 0
	n = 2
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.Len = int64(binary.BigEndian.Uint16(b[2:4]))
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			return h, 0, fmt.Errorf("%w: 64-bit length with the top bit set", ErrProtocol)
		}
		h.Len = int64(u)
		n = 10
	default:
		h.Len = int64(l)
	}
	if h.Masked {
		if len(b) < n+4 {
			return h, 0, nil
		}
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	if h.Op >= 0x8 {
		if !h.Fin || h.Len > 125 {
			return h, 0, fmt.Errorf("%w: fragmented or long control frame", ErrProtocol)
		}
	} else if h.Op > OpBinary {
		return h, 0, fmt.Errorf("%w: reserved opcode %#x", ErrProtocol, h.Op)
	}
	return h, n, nil
}

// FrameReader turns a byte stream from a server into complete messages. It
// parses in place: a message that arrives whole in one buffer is handed over
// without a copy; only fragmented messages are assembled.
//
// Not safe for concurrent use; one per connection, used by its event loop.
type FrameReader struct {
	// MaxFrame bounds a frame's and an assembled message's payload.
	MaxFrame int64
	// AllowMasked accepts masked frames (a server reading client frames).
	AllowMasked bool

	frag   []byte
	fragOp byte
	inFrag bool
}

// Feed parses complete frames from the start of b and calls onFrame for each
// complete data message (op is OpText or OpBinary, after reassembly) and for
// each control frame (OpPing, OpPong, OpClose). The payload is only valid
// during the call and masked payloads are unmasked in place. Feed returns
// how many bytes it consumed; the caller keeps b[consumed:] and feeds it
// again, followed by more data, later.
func (r *FrameReader) Feed(b []byte, onFrame func(op byte, payload []byte) error) (consumed int, err error) {
	for {
		h, n, err := ParseHeader(b[consumed:])
		if err != nil {
			return consumed, err
		}
		if n == 0 {
			return consumed, nil
		}
		if h.Masked && !r.AllowMasked {
			return consumed, ErrUnexpectedMask
		}
		limit := r.MaxFrame
		if limit <= 0 {
			limit = 64 << 20
		}
		if h.Len > limit {
			return consumed, fmt.Errorf("%w: %d bytes", ErrFrameTooLarge, h.Len)
		}
		if int64(len(b)-consumed-n) < h.Len {
			return consumed, nil
		}
		payload := b[consumed+n : consumed+n+int(h.Len)]
		consumed += n + int(h.Len)
		if h.Masked {
			ws.Cipher(payload, h.Mask, 0)
		}
		switch h.Op {
		case OpPing, OpPong, OpClose:
			if err := onFrame(h.Op, payload); err != nil {
				return consumed, err
			}
		case OpContinuation:
			if !r.inFrag {
				return consumed, ErrBadContinuation
			}
			if int64(len(r.frag))+h.Len > limit {
				return consumed, fmt.Errorf("%w: fragmented message", ErrFrameTooLarge)
			}
			r.frag = append(r.frag, payload...)
			if h.Fin {
				r.inFrag = false
				err := onFrame(r.fragOp, r.frag)
				r.frag = r.frag[:0]
				if cap(r.frag) > 64<<10 {
					r.frag = nil
				}
				if err != nil {
					return consumed, err
				}
			}
		default: // text or binary
			if r.inFrag {
				return consumed, fmt.Errorf("%w: new message inside a fragmented one", ErrProtocol)
			}
			if h.Fin {
				if err := onFrame(h.Op, payload); err != nil {
					return consumed, err
				}
				continue
			}
			r.inFrag = true
			r.fragOp = h.Op
			r.frag = append(r.frag[:0], payload...)
		}
	}
}

// AppendFrame appends a client frame (FIN set, masked with mask) holding
// payload to dst. A client must mask every frame (RFC 6455 §5.3).
func AppendFrame(dst []byte, op byte, payload []byte, mask [4]byte) []byte {
	dst = append(dst, 0x80|op)
	switch l := len(payload); {
	case l < 126:
		dst = append(dst, 0x80|byte(l))
	case l <= 0xffff:
		dst = append(dst, 0x80|126, byte(l>>8), byte(l))
	default:
		dst = append(dst, 0x80|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(l))
	}
	dst = append(dst, mask[:]...)
	start := len(dst)
	dst = append(dst, payload...)
	ws.Cipher(dst[start:], mask, 0)
	return dst
}

// AppendServerFrame appends an unmasked (server to client) frame.
func AppendServerFrame(dst []byte, op byte, payload []byte) []byte {
	dst = append(dst, 0x80|op)
	switch l := len(payload); {
	case l < 126:
		dst = append(dst, byte(l))
	case l <= 0xffff:
		dst = append(dst, 126, byte(l>>8), byte(l))
	default:
		dst = append(dst, 127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(l))
	}
	return append(dst, payload...)
}
