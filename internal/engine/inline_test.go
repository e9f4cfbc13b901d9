package engine

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/pondsocket/pondsocket/internal/wsframe"
)

// inlineHandler answers each message from inside OnMessage with
// SendInline. A message "first:X" first has another goroutine Send "X"
// (or Close, for X = "close") and waits until that is posted, so the
// answer made on the loop afterwards must not overtake it.
type inlineHandler struct{ *echoHandler }

func (h inlineHandler) OnMessage(c *Conn, op byte, data []byte) {
	if rest, ok := bytes.CutPrefix(data, []byte("first:")); ok {
		done := make(chan struct{})
		go func() {
			defer close(done)
			if string(rest) == "close" {
				c.Close(4000, "closed first")
				return
			}
			f := wsframe.NewStaticFrame(op, rest)
			c.Send(f)
			f.Release()
		}()
		<-done
	}
	f := wsframe.NewStaticFrame(op, append([]byte("re:"), data...))
	c.SendInline(f)
	f.Release()
}

func TestSendInlineAnswersEachMessage(t *testing.T) {
	e := startEngine(t, Config{}, inlineHandler{newEchoHandler()})
	r := dialRaw(t, e, "/x")
	// several messages in one read: their answers leave together, in order
	const n = 200
	r.write(textFrames(n))
	for i := 0; i < n; i++ {
		r.expectFrame(wsframe.OpText, fmt.Sprintf("re:m%03d", i))
	}
	if w := e.Stats().Writes.Load(); w >= n {
		t.Fatalf("%d answers to one read took %d writes; they should share writes", n, w)
	}
}

// A frame another goroutine sent before the answer is written before it.
func TestSendInlineKeepsOrderBehindSends(t *testing.T) {
	e := startEngine(t, Config{}, inlineHandler{newEchoHandler()})
	r := dialRaw(t, e, "/x")
	for i := 0; i < 50; i++ {
		r.send(1, fmt.Sprintf("first:s%d", i))
		r.expectFrame(wsframe.OpText, fmt.Sprintf("s%d", i))
		r.expectFrame(wsframe.OpText, fmt.Sprintf("re:first:s%d", i))
	}
}

// A Close posted before the answer wins: the answer, made after it, is not
// written before the close frame.
func TestSendInlineAfterCloseIsNotWritten(t *testing.T) {
	e := startEngine(t, Config{}, inlineHandler{newEchoHandler()})
	r := dialRaw(t, e, "/x")
	r.send(1, "first:close")
	f, err := r.readFrame(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if f.op != wsframe.OpClose {
		t.Fatalf("got %q (op %d) before the close frame", f.payload, f.op)
	}
}
