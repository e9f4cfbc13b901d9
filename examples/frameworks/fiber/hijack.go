package main

import (
	"bufio"
	"bytes"
	"net"
	"net/http"
	"strings"

	"github.com/gofiber/fiber/v2"
)

// pondHandler mounts PondSocket's http.HandlerFunc on fiber so that the
// upgrade takes over fasthttp's own connection.
//
// adaptor.HTTPHandler, as the upstream README shows it, does not work with
// this PondSocket: with fiber v2.52's fasthttp v1.51 the adaptor's
// ResponseWriter cannot be hijacked at all (the upgrade answers 500 "given
// http.ResponseWriter is not a http.Hijacker"), and with fasthttp v1.69 it
// hijacks but hands over a *fasthttpadaptor.wrappedConn, which PondSocket's
// event loops cannot own (they take *net.TCPConn and *net.UnixConn only),
// so it is served by the goroutine-based fallback transport.
// fasthttp's RequestCtx.Conn is the plain *net.TCPConn, so this handler
// hands that one over instead.
//
// It copies the request: fasthttp reuses its buffers once the handler
// returns, while PondSocket keeps the query and headers with the
// connection. Frames a client sends before it has read the 101 answer are
// lost (browsers and the PondSocket client wait for it). Over TLS
// (app.ListenTLS) the connection is a *tls.Conn, which cannot be handed
// over either: terminate TLS in front of the app.
func pondHandler(h http.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		r, err := http.NewRequestWithContext(c.UserContext(), strings.Clone(c.Method()), string(c.Request().RequestURI()), nil)
		if err != nil {
			return fiber.ErrBadRequest
		}
		r.Host = string(c.Request().Host())
		r.RemoteAddr = c.Context().RemoteAddr().String()
		c.Request().Header.VisitAll(func(k, v []byte) {
			r.Header.Add(string(k), string(v))
		})

		w := &hijackWriter{c: c, header: http.Header{}}
		h.ServeHTTP(w, r)
		if w.hijacked {
			// the upgrade wrote its answer on the connection itself
			return nil
		}
		for k, vs := range w.header {
			for _, v := range vs {
				c.Response().Header.Add(k, v)
			}
		}
		if w.status == 0 {
			w.status = http.StatusOK
		}
		return c.Status(w.status).Send(w.body.Bytes())
	}
}

// hijackWriter buffers a plain answer (a declined connection, a request
// that is no upgrade) for fiber to send, or hands fasthttp's connection to
// the upgrade.
type hijackWriter struct {
	c        *fiber.Ctx
	header   http.Header
	status   int
	body     bytes.Buffer
	hijacked bool
}

func (w *hijackWriter) Header() http.Header { return w.header }

func (w *hijackWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *hijackWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(p)
}

func (w *hijackWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.hijacked {
		return nil, nil, http.ErrHijacked
	}
	w.hijacked = true
	ctx := w.c.Context()
	conn := ctx.Conn()
	// fasthttp sends no response of its own for this request and lets go of
	// the connection when the handler returns (closing its descriptor;
	// PondSocket has duplicated it by then).
	ctx.HijackSetNoResponse(true)
	ctx.Hijack(func(net.Conn) {})
	return conn, bufio.NewReadWriter(bufio.NewReader(conn), bufio.NewWriter(conn)), nil
}
