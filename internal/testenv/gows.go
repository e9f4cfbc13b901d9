package testenv

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// goLifetime bounds an in-process driver like the external ones.
const goLifetime = 120 * time.Second

// StartGoWS starts an in-process driver on gorilla/websocket speaking the
// same protocol as the external drivers, and registers Close with
// t.Cleanup.
//
// gorilla's NextWriter buffers a message and only cuts frames when its write
// buffer fills, so it cannot put one fragment on the wire per command. This
// driver therefore writes the frames of a fragmented message ("fin":false
// sends and the continuation that ends it) itself, masked, on the
// connection's net.Conn, one Write per frame so they never interleave with
// gorilla's own control frames (net.Conn writes are atomic per call). All
// other messages go through gorilla (WriteMessage, compressed when
// permessage-deflate was negotiated). "raw" also writes to the net.Conn.
func StartGoWS(t testing.TB) *Driver {
	t.Helper()
	d := newDriver("go-gorilla")
	g := &goWS{
		d:       d,
		cmds:    make(chan map[string]any, 1024),
		quit:    make(chan struct{}),
		stopped: make(chan struct{}),
	}
	d.exec = func(cmd map[string]any) {
		select {
		case g.cmds <- cmd:
		case <-g.quit:
			op, _ := cmd["op"].(string)
			d.push(Event{Ev: "error", Op: op, Message: "testenv: driver stopped"})
		}
	}
	d.stop = g.shutdown
	go g.loop()
	timer := time.AfterFunc(goLifetime, func() { g.signalQuit() })
	t.Cleanup(func() {
		timer.Stop()
		d.Close()
	})
	return d
}

type goWS struct {
	d    *Driver
	cmds chan map[string]any

	quitOnce sync.Once
	quit     chan struct{} // closed to stop the command loop
	stopped  chan struct{} // closed when the command loop and reader are gone

	// Owned by the command loop.
	conn       *websocket.Conn
	readerDone chan struct{}
	fragOpen   bool // a fragmented message is in progress
}

func (g *goWS) signalQuit() { g.quitOnce.Do(func() { close(g.quit) }) }

func (g *goWS) shutdown() {
	g.signalQuit()
	select {
	case <-g.stopped:
	case <-time.After(10 * time.Second):
	}
}

func (g *goWS) loop() {
	defer func() {
		if g.conn != nil {
			g.conn.Close()
			<-g.readerDone
		}
		g.d.finish("go-gorilla driver stopped")
		close(g.stopped)
	}()
	for {
		select {
		case <-g.quit:
			return
		case cmd := <-g.cmds:
			op, _ := cmd["op"].(string)
			if op == "exit" {
				return
			}
			if err := g.run(op, cmd); err != nil {
				g.d.push(Event{Ev: "error", Op: op, Message: err.Error()})
			}
		}
	}
}

func (g *goWS) ack(op string) { g.d.push(Event{Ev: "ack", Op: op}) }

var errNotConnected = errors.New("not connected")

func (g *goWS) run(op string, cmd map[string]any) error {
	switch op {
	case "connect":
		return g.connect(cmd)
	case "send", "ping", "close", "raw":
		if g.conn == nil {
			return errNotConnected
		}
	default:
		return fmt.Errorf("unknown op %q", op)
	}
	deadline := time.Now().Add(10 * time.Second)
	switch op {
	case "send":
		data, err := payload(cmd, "data")
		if err != nil {
			return err
		}
		binaryMsg, _ := cmd["binary"].(bool)
		fin := true
		if v, ok := cmd["fin"].(bool); ok {
			fin = v
		}
		if !fin || g.fragOpen {
			opcode := byte(0) // continuation
			if !g.fragOpen {
				opcode = 1
				if binaryMsg {
					opcode = 2
				}
			}
			frame, err := clientFrame(fin, opcode, data)
			if err != nil {
				return err
			}
			g.conn.UnderlyingConn().SetWriteDeadline(deadline)
			if _, err := g.conn.UnderlyingConn().Write(frame); err != nil {
				return fmt.Errorf("send failed: %w", err)
			}
			g.fragOpen = !fin
		} else {
			mt := websocket.TextMessage
			if binaryMsg {
				mt = websocket.BinaryMessage
			}
			if err := g.conn.WriteMessage(mt, data); err != nil {
				return fmt.Errorf("send failed: %w", err)
			}
		}
	case "ping":
		data, err := payload(cmd, "data")
		if err != nil {
			return err
		}
		if err := g.conn.WriteControl(websocket.PingMessage, data, deadline); err != nil {
			return fmt.Errorf("ping failed: %w", err)
		}
	case "close":
		var msg []byte
		if c, ok := number(cmd["code"]); ok {
			reason, _ := cmd["reason"].(string)
			msg = websocket.FormatCloseMessage(c, reason)
		}
		if err := g.conn.WriteControl(websocket.CloseMessage, msg, deadline); err != nil {
			return fmt.Errorf("close failed: %w", err)
		}
	case "raw":
		s, _ := cmd["b64"].(string)
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return fmt.Errorf("bad b64: %w", err)
		}
		g.conn.UnderlyingConn().SetWriteDeadline(deadline)
		if _, err := g.conn.UnderlyingConn().Write(raw); err != nil {
			return fmt.Errorf("raw write failed: %w", err)
		}
	}
	g.ack(op)
	return nil
}

func (g *goWS) connect(cmd map[string]any) error {
	if g.conn != nil {
		select {
		case <-g.readerDone: // the previous connection is over
			g.conn = nil
		default:
			return errors.New("already connected")
		}
	}
	g.fragOpen = false
	url, _ := cmd["url"].(string)
	hdr := http.Header{}
	if h, ok := cmd["headers"].(map[string]any); ok {
		for k, v := range h {
			hdr.Set(k, fmt.Sprint(v))
		}
	} else if h, ok := cmd["headers"].(map[string]string); ok {
		for k, v := range h {
			hdr.Set(k, v)
		}
	}
	deflate, _ := cmd["deflate"].(bool)
	dialer := websocket.Dialer{
		HandshakeTimeout:  10 * time.Second,
		EnableCompression: deflate,
	}
	g.ack("connect")
	conn, resp, err := dialer.Dial(url, hdr)
	if err != nil {
		ev := Event{Ev: "error", Message: err.Error()}
		if resp != nil {
			ev.Status = resp.StatusCode
			resp.Body.Close()
		}
		g.d.push(ev)
		g.d.push(Event{Ev: "close", Code: websocket.CloseAbnormalClosure})
		return nil
	}
	g.conn = conn
	g.readerDone = make(chan struct{})
	conn.SetPongHandler(func(data string) error {
		g.d.push(Event{Ev: "pong", Data: data})
		return nil
	})
	g.d.push(Event{Ev: "open"})
	go g.read(conn, g.readerDone)
	return nil
}

func (g *goWS) read(conn *websocket.Conn, done chan struct{}) {
	defer close(done)
	for {
		mt, data, err := conn.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				g.d.push(Event{Ev: "close", Code: ce.Code, Reason: ce.Text})
			} else {
				select {
				case <-g.quit: // torn down by the test: not the peer's doing
				default:
					g.d.push(Event{Ev: "error", Message: err.Error()})
				}
				g.d.push(Event{Ev: "close", Code: websocket.CloseAbnormalClosure})
			}
			conn.Close()
			return
		}
		g.d.push(Event{Ev: "message", Data: string(data), Binary: mt == websocket.BinaryMessage})
	}
}

// payload returns cmd[key] as bytes: UTF-8 text, or base64 when "b64" is true.
func payload(cmd map[string]any, key string) ([]byte, error) {
	s, _ := cmd[key].(string)
	if b, _ := cmd["b64"].(bool); b {
		raw, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("bad base64 in %s: %w", key, err)
		}
		return raw, nil
	}
	return []byte(s), nil
}

// number accepts the numeric types a test may put in a command map.
func number(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case int32:
		return int(n), true
	case int64:
		return int(n), true
	case float64:
		return int(n), true
	case uint16:
		return int(n), true
	}
	return 0, false
}

// clientFrame encodes one masked client frame (RFC 6455 section 5.2).
func clientFrame(fin bool, opcode byte, payload []byte) ([]byte, error) {
	b0 := opcode
	if fin {
		b0 |= 0x80
	}
	n := len(payload)
	out := make([]byte, 0, 14+n)
	switch {
	case n < 126:
		out = append(out, b0, 0x80|byte(n))
	case n <= 0xffff:
		out = append(out, b0, 0x80|126)
		out = binary.BigEndian.AppendUint16(out, uint16(n))
	default:
		out = append(out, b0, 0x80|127)
		out = binary.BigEndian.AppendUint64(out, uint64(n))
	}
	var key [4]byte
	if _, err := rand.Read(key[:]); err != nil {
		return nil, err
	}
	out = append(out, key[:]...)
	start := len(out)
	out = append(out, payload...)
	for i := range payload {
		out[start+i] ^= key[i&3]
	}
	return out, nil
}
