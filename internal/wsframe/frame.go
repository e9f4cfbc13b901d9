package wsframe

import (
	"sync"
	"sync/atomic"

	"github.com/valyala/bytebufferpool"
)

// Headroom is the space reserved in front of a Frame's payload for the
// largest server-to-client WebSocket header. Reserving it lets a message be
// JSON-encoded straight into the buffer and framed afterwards without
// copying the payload.
const Headroom = MaxHeader

// Sink is a connection frames are sent to: the engine's connections, its
// fallback transports and the channel layer's virtual connections. Both
// methods are safe from any goroutine; Send keeps the order of the calls one
// goroutine makes and takes its own reference to f. A broadcast's
// recipients travel from the channel layer to the engine as one []Sink.
type Sink interface {
	Send(f *Frame)
	Close(code int, reason string)
}

// Frame is one encoded server message held in a pooled, reference-counted
// buffer. It is the unit of encode-once fan-out: a broadcast is encoded into
// one Frame and the very same bytes are written to every recipient.
//
// Layout of the buffer: [Headroom bytes][payload]. Seal writes the WebSocket
// header into the tail end of the headroom, so Bytes() is header+payload
// with no copy, and Payload() stays available for other transports (SSE,
// the cluster bus).
//
// Concurrency: building (Write, Append, Seal) belongs to one goroutine.
// After Seal the frame is immutable and Bytes/Payload/Retain/Release are
// safe from any goroutine. The creator holds one reference; every holder
// that outlives the creator's use must Retain, and each reference is
// Released exactly once. The buffer returns to the pool at zero.
type Frame struct {
	refs  atomic.Int32
	buf   *bytebufferpool.ByteBuffer
	spare *bytebufferpool.ByteBuffer // buf, kept while the frame waits in the pool
	start int                        // index of the first header byte once sealed
	op    byte                       // opcode once sealed; 0 while building

	// lazily derived forms (SSE event, compressed frame) hang off here
	mu      sync.Mutex
	derived map[string][]byte
}

// framePool recycles frames together with their buffers. A sync.Pool
// keeps a cache per P, so two loops building and releasing frames at once
// write nothing they share. (The buffers came from a bytebufferpool.Pool,
// whose Put adds to a per-size counter shared by every core: a cache line
// that bounced between the loops on every message.) A buffer that grew
// past maxPooledBuffer for a large message is not kept.
var framePool sync.Pool

const (
	newBufferCap    = 512
	maxPooledBuffer = 64 << 10
)

// NewFrame returns an empty frame with one reference, ready for the payload
// to be appended.
func NewFrame() *Frame {
	f, _ := framePool.Get().(*Frame)
	if f == nil {
		f = &Frame{}
	}
	f.buf, f.spare = f.spare, nil
	if f.buf == nil {
		f.buf = &bytebufferpool.ByteBuffer{B: make([]byte, 0, newBufferCap)}
	}
	f.buf.B = append(f.buf.B[:0], make([]byte, Headroom)...)
	f.start = 0
	f.op = 0
	f.refs.Store(1)
	return f
}

// NewStaticFrame builds and seals a frame holding a copy of payload.
func NewStaticFrame(op byte, payload []byte) *Frame {
	f := NewFrame()
	f.buf.B = append(f.buf.B, payload...)
	f.Seal(op)
	return f
}

// Write appends p to the payload. It never fails; it lets encoders such as
// encoding/json write directly into the frame.
func (f *Frame) Write(p []byte) (int, error) {
	f.buf.B = append(f.buf.B, p...)
	return len(p), nil
}

// WriteString appends s to the payload.
func (f *Frame) WriteString(s string) (int, error) {
	f.buf.B = append(f.buf.B, s...)
	return len(s), nil
}

// WriteByte appends c to the payload.
func (f *Frame) WriteByte(c byte) error {
	f.buf.B = append(f.buf.B, c)
	return nil
}

// AppendTo gives encoders direct access to the underlying slice: fn gets
// the current buffer (headroom included) and returns the grown one.
func (f *Frame) AppendTo(fn func(dst []byte) []byte) {
	f.buf.B = fn(f.buf.B)
}

// Len is the payload length.
func (f *Frame) Len() int { return len(f.buf.B) - Headroom }

// Seal writes an unmasked, final WebSocket header for op in front of the
// payload. After Seal the frame must not be modified.
func (f *Frame) Seal(op byte) {
	var hdr [MaxHeader]byte
	h := AppendHeader(hdr[:0], Fin|op, len(f.buf.B)-Headroom)
	f.start = Headroom - len(h)
	copy(f.buf.B[f.start:Headroom], h)
	f.op = op
}

// Sealed reports whether Seal was called.
func (f *Frame) Sealed() bool { return f.op != 0 }

// Op is the opcode given to Seal.
func (f *Frame) Op() byte { return f.op }

// Bytes is the complete WebSocket frame (header and payload).
func (f *Frame) Bytes() []byte { return f.buf.B[f.start:] }

// Payload is the encoded message without the WebSocket header.
func (f *Frame) Payload() []byte { return f.buf.B[Headroom:] }

// Derived returns a form of this frame computed once by build and cached
// for the frame's lifetime under key (for example the SSE event or the
// deflated frame). Safe from any goroutine after Seal.
func (f *Frame) Derived(key string, build func(payload []byte) []byte) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	if b, ok := f.derived[key]; ok {
		return b
	}
	if f.derived == nil {
		f.derived = make(map[string][]byte, 1)
	}
	b := build(f.Payload())
	f.derived[key] = b
	return b
}

// Retain adds n references.
func (f *Frame) Retain(n int32) { f.refs.Add(n) }

// Release drops one reference and recycles the frame at zero.
func (f *Frame) Release() {
	switch r := f.refs.Add(-1); {
	case r == 0:
		if cap(f.buf.B) <= maxPooledBuffer {
			f.spare = f.buf
		}
		f.buf = nil
		f.derived = nil
		framePool.Put(f)
	case r < 0:
		panic("wsframe: Frame released more often than retained")
	}
}

// Refs reports the current reference count (for tests).
func (f *Frame) Refs() int32 { return f.refs.Load() }
