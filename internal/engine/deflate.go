package engine

import (
	"bytes"
	"compress/flate"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pondsocket/pondsocket/internal/wsframe"

	"github.com/valyala/bytebufferpool"
)

// permessage-deflate (RFC 7692) without per-connection compression state.
//
// The server always answers with server_no_context_takeover and
// client_no_context_takeover, so every message is compressed and
// decompressed on its own: a broadcast is compressed once (a derived form
// of its Frame, shared by every recipient that negotiated the extension)
// and an idle connection holds no zlib window. Messages shorter than
// CompressionThreshold are sent uncompressed (RSV1 clear), which the
// extension allows per message. Client messages are inflated with the size
// limit applied to the decompressed bytes (a zip bomb gets 1009).

// DeflateExtension is the negotiated response value.
const DeflateExtension = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"

// NegotiateDeflate reads a request's Sec-WebSocket-Extensions and reports
// whether a permessage-deflate offer can be accepted on the terms above
// (an offer that limits the server's window below 15 bits cannot: Go's
// compressor always uses a 32 KiB window).
func NegotiateDeflate(h http.Header) bool {
	for _, v := range h.Values("Sec-Websocket-Extensions") {
		for _, offer := range strings.Split(v, ",") {
			params := strings.Split(offer, ";")
			if strings.TrimSpace(params[0]) != "permessage-deflate" {
				continue
			}
			ok := true
			for _, p := range params[1:] {
				k, val, _ := strings.Cut(strings.TrimSpace(p), "=")
				val = strings.Trim(strings.TrimSpace(val), `"`)
				switch strings.TrimSpace(k) {
				case "server_no_context_takeover", "client_no_context_takeover", "client_max_window_bits":
				case "server_max_window_bits":
					if val != "15" {
						ok = false
					}
				default:
					ok = false // unknown parameter: decline this offer
				}
			}
			if ok {
				return true
			}
		}
	}
	return false
}

// deflateTail is the empty stored block each message ends with; the
// extension strips it on the wire.
var deflateTail = []byte{0x00, 0x00, 0xff, 0xff}

var flateWriters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestSpeed)
	return w
}}

var flateReaders = sync.Pool{New: func() any { return flate.NewReader(bytes.NewReader(nil)) }}

// deflatedFrame is f's payload compressed and framed with RSV1 set,
// computed once per frame and shared.
func deflatedFrame(f *wsframe.Frame) []byte {
	return f.Derived("permessage-deflate", func(payload []byte) []byte {
		var buf bytes.Buffer
		buf.Grow(len(payload)/2 + 16)
		w := flateWriters.Get().(*flate.Writer)
		w.Reset(&buf)
		_, _ = w.Write(payload)
		_ = w.Flush()
		flateWriters.Put(w)
		c := bytes.TrimSuffix(buf.Bytes(), deflateTail)
		return wsframe.Append(nil, wsframe.Fin|wsframe.RSV1|f.Op(), c)
	})
}

// frameBytes picks the bytes of f for c: compressed when c negotiated
// permessage-deflate and the message is worth it.
func (c *Conn) frameBytes(f *wsframe.Frame) []byte {
	if c.sse {
		return sseFrame(f)
	}
	if c.deflate && c.e.compressible(f) {
		return deflatedFrame(f)
	}
	return f.Bytes()
}

// compressible reports whether f is a data message worth compressing.
func (e *Engine) compressible(f *wsframe.Frame) bool {
	return e.cfg.EnableCompression && (f.Op() == wsframe.OpText || f.Op() == wsframe.OpBinary) && f.Len() >= e.cfg.CompressionThreshold
}

// inflate decompresses a message into a pooled buffer; ok is false when
// the result would exceed limit (the caller closes with 1009) or the data
// is not valid deflate (1007: invalid payload data).
func inflate(data []byte, limit int) (out *bytebufferpool.ByteBuffer, tooBig, ok bool) {
	r := flateReaders.Get().(io.ReadCloser)
	defer flateReaders.Put(r)
	_ = r.(flate.Resetter).Reset(io.MultiReader(bytes.NewReader(data), bytes.NewReader(deflateTail)), nil)
	out = fragPool.Get()
	out.B = out.B[:0]
	var chunk [4096]byte
	for {
		n, err := r.Read(chunk[:])
		out.B = append(out.B, chunk[:n]...)
		if len(out.B) > limit {
			fragPool.Put(out)
			return nil, true, false
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			// the stripped tail ends the stream without a final block
			return out, false, true
		}
		if err != nil {
			fragPool.Put(out)
			return nil, false, false
		}
		if n == 0 {
			return out, false, true
		}
	}
}

// inflateBudget is a token bucket in decompressed bytes: permessage-deflate
// lets a client send a 1 MiB message as 1 KiB, so the bytes a connection
// may make the server inflate are bounded per second, not only per message.
type inflateBudget struct {
	tokens float64
	at     int64 // unix nanoseconds of the last refill
}

// inflateAllowed refills c's budget and reports whether it is positive.
// The last message may overdraw it; the debt delays the next one.
func (c *Conn) inflateAllowed() bool {
	cfg := &c.e.cfg
	burst := float64(4 * cfg.MaxMessageSize)
	now := time.Now().UnixNano()
	if c.inflate == nil {
		c.inflate = &inflateBudget{tokens: burst, at: now}
	}
	b := c.inflate
	b.tokens = min(burst, b.tokens+float64(now-b.at)/1e9*float64(cfg.MaxInflateRate))
	b.at = now
	return b.tokens > 0
}
