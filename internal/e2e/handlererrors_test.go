package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/pondsocket/pondsocket"
	"github.com/pondsocket/pondsocket/internal/testenv"
)

// logBuffer collects a server's log lines (safe from any goroutine).
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor returns the log line containing every one of parts, waiting for
// it to be written (log lines of leave handlers come after the reply the
// test saw). It fails the test after 5 s.
func (l *logBuffer) waitFor(t *testing.T, parts ...string) string {
	t.Helper()
	found := ""
	testenv.Eventually(t, 5*time.Second, fmt.Sprintf("a log line with %q", parts), func() bool {
	lines:
		for _, line := range strings.Split(l.String(), "\n") {
			for _, p := range parts {
				if !strings.Contains(line, p) {
					continue lines
				}
			}
			found = line
			return true
		}
		return false
	})
	return found
}

// startApp runs a server with the given application on 127.0.0.1:0, its
// log (JSON, every level) going to the returned buffer.
func startApp(t *testing.T, tweak func(*pondsocket.Options), register func(*pondsocket.Server)) (*pondsocket.Server, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	opts := pondsocket.DefaultOptions()
	opts.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Transport.EventLoops = 2
	if tweak != nil {
		tweak(opts)
	}
	srv := pondsocket.NewServer(&pondsocket.ServerOptions{ServerAddr: "127.0.0.1:0", Options: opts})
	register(srv)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Stop(5 * time.Second) })
	return srv, logs
}

var errorIDRE = regexp.MustCompile(`^Internal Server Error \(error id ([0-9a-f]{8})\)$`)

// genericID checks that text is the generic 500 and returns its error id.
func genericID(t *testing.T, text string) string {
	t.Helper()
	m := errorIDRE.FindStringSubmatch(text)
	if m == nil {
		t.Fatalf("client saw %q, want the generic \"Internal Server Error (error id xxxxxxxx)\"", text)
	}
	return m[1]
}

const dbError = "pq: password authentication failed for user \"app\" host=10.0.3.7"

func registerFaultyApp(srv *pondsocket.Server) {
	ep := srv.CreateEndpoint("/api/socket", func(ctx *pondsocket.ConnectionContext) error {
		switch ctx.Route.Query.Get("token") {
		case "dberr":
			return errors.New(dbError)
		case "panic":
			panic("connect-boom")
		case "typed":
			return pondsocket.Forbidden("no entry")
		}
		return ctx.Accept()
	})
	ch := ep.CreateChannel("/room/:id", func(ctx *pondsocket.JoinContext) error {
		switch ctx.Route.Params["id"] {
		case "dberr":
			return fmt.Errorf("loading room: %w", errors.New(dbError))
		case "panic":
			var m map[string]int
			m["join-boom"]++ // a nil map write: a runtime panic
		case "typed":
			return pondsocket.Forbidden("members only")
		}
		return ctx.Accept().Err()
	})
	ch.OnEvent("ping", func(ctx *pondsocket.EventContext) error {
		return ctx.Reply("pong", map[string]any{}).Err()
	})
	ch.OnEvent("dberr", func(ctx *pondsocket.EventContext) error { return errors.New(dbError) })
	ch.OnEvent("typed", func(ctx *pondsocket.EventContext) error { return pondsocket.BadRequest("bad input") })
	ch.OnEvent("boom", func(ctx *pondsocket.EventContext) error { panic("event-boom") })
	ch.OnEvent("say", func(ctx *pondsocket.EventContext) error {
		return ctx.Broadcast("said", ctx.RawPayload()).Err()
	})
	ch.OnOutgoing("said", func(ctx *pondsocket.OutgoingContext) error {
		var p struct{ Boom bool }
		_ = ctx.ParsePayload(&p)
		if p.Boom {
			panic("outgoing-boom")
		}
		return nil
	})
	ch.OnLeave(func(ctx *pondsocket.LeaveContext) {
		if ctx.Route.Params["id"] == "leavepanic" {
			panic("leave-boom")
		}
	})
	mw := ep.CreateChannel("/mw/:id", func(ctx *pondsocket.JoinContext) error { return ctx.Accept().Err() })
	mw.Use(func(_ context.Context, req *pondsocket.MessageEvent, _ *pondsocket.Channel, next pondsocket.NextFunc) error {
		if req.Event.Event == "boom" {
			panic("middleware-boom")
		}
		return next()
	})
	mw.OnEvent("ping", func(ctx *pondsocket.EventContext) error {
		return ctx.Reply("pong", map[string]any{}).Err()
	})
}

func dialStatus(t *testing.T, srv *pondsocket.Server, query string) (int, string) {
	t.Helper()
	_, resp, err := websocket.DefaultDialer.Dial(fmt.Sprintf("ws://%s/api/socket?%s", srv.Addr(), query), nil)
	if err == nil || resp == nil {
		t.Fatalf("dial %s: want a refusal, got err %v", query, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// Issue 10 point 8: errors that are not the package's *Error reach the
// client as a generic 500 with an error id that the ERROR log line carries
// next to the real text; *Error values pass unchanged.
func TestHandlerErrorsDoNotLeak(t *testing.T) {
	srv, logs := startApp(t, nil, registerFaultyApp)
	bystander := dialRawPond(t, srv, "token=ok")
	joinRawAck(bystander, "/room/b", "jb")

	// connection handler
	status, body := dialStatus(t, srv, "token=dberr")
	if status != 500 || strings.Contains(body, "pq:") {
		t.Fatalf("connection handler error: %d %q", status, body)
	}
	id := genericID(t, body)
	logs.waitFor(t, `"level":"ERROR"`, `"id":"`+id+`"`, "10.0.3.7")
	if status, body := dialStatus(t, srv, "token=typed"); status != 403 || body != "no entry" {
		t.Fatalf("typed connection error: %d %q", status, body)
	}

	a := dialRawPond(t, srv, "token=ok")
	// join handler
	a.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/room/dberr","requestId":"j1","payload":{}}`)
	m := a.next()
	p := m["payload"].(map[string]any)
	if m["event"] != "UNAUTHORIZED" || p["status"] != float64(500) || p["code"] != "CHANNEL_ERROR" {
		t.Fatalf("join error: %v", m)
	}
	id = genericID(t, p["message"].(string))
	logs.waitFor(t, `"level":"ERROR"`, `"id":"`+id+`"`, "loading room: pq: password authentication failed")
	a.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/room/typed","requestId":"j2","payload":{}}`)
	a.expect(`{"event":"UNAUTHORIZED","action":"ERROR","channelName":"/room/typed","requestId":"j2","payload":{"code":"CHANNEL_ERROR","message":"members only","status":403,"statusCode":403,"error":{"message":"members only","status":403}}}`, nil)

	// event handler
	joinRawAck(a, "/room/x", "j3")
	a.send(`{"action":"BROADCAST","event":"dberr","channelName":"/room/x","requestId":"e1","payload":{}}`)
	m = a.next()
	p = m["payload"].(map[string]any)
	if m["event"] != "HANDLER_NOT_FOUND" || m["requestId"] != "e1" || p["code"] != float64(500) {
		t.Fatalf("event error: %v", m)
	}
	id = genericID(t, p["message"].(string))
	logs.waitFor(t, `"level":"ERROR"`, `"id":"`+id+`"`, "10.0.3.7", `"event":"dberr"`)
	a.send(`{"action":"BROADCAST","event":"typed","channelName":"/room/x","requestId":"e2","payload":{}}`)
	a.expect(`{"channelName":"/room/x","requestId":"e2","action":"ERROR","event":"HANDLER_NOT_FOUND","payload":{"message":"bad input","code":400}}`, nil)
	// an unknown event keeps the reference's answer
	a.send(`{"action":"BROADCAST","event":"nothing-here","channelName":"/room/x","requestId":"e3","payload":{}}`)
	a.expect(`{"channelName":"/room/x","requestId":"e3","action":"ERROR","event":"HANDLER_NOT_FOUND","payload":{"message":"A handler did not respond to the event","code":500}}`, nil)

	// invalid JSON: a 400 with a plain message
	a.send(`{"action": nope}`)
	m = a.next()
	p = m["payload"].(map[string]any)
	if m["event"] != "INVALID_MESSAGE" || p["status"] != float64(400) || p["message"] != "Invalid JSON at byte 12" {
		t.Fatalf("invalid JSON: %v", m)
	}

	bystanderPing(bystander, "/room/b")
	if strings.Contains(logs.String(), `"level":"DEBUG","msg":"handler error"`) {
		t.Fatal("handler errors logged at DEBUG")
	}
}

// Issue 10 point 8: a panic in any user code is logged at ERROR with its
// value and stack under an error id, and the client gets the generic 500
// with that id; the server and the other connections carry on.
func TestHandlerPanicsAreLoggedWithStack(t *testing.T) {
	srv, logs := startApp(t, nil, registerFaultyApp)
	bystander := dialRawPond(t, srv, "token=ok")
	joinRawAck(bystander, "/room/b", "jb")

	checkPanicLog := func(id, value string) {
		t.Helper()
		line := logs.waitFor(t, `"level":"ERROR"`, `"msg":"handler panicked"`, `"id":"`+id+`"`)
		if !strings.Contains(line, value) || !strings.Contains(line, `"stack":"goroutine `) || !strings.Contains(line, "registerFaultyApp") {
			t.Fatalf("panic log line lacks the value %q or the stack: %s", value, line)
		}
	}

	status, body := dialStatus(t, srv, "token=panic")
	if status != 500 {
		t.Fatalf("panicking connection handler: %d %q", status, body)
	}
	checkPanicLog(genericID(t, body), "connect-boom")

	a := dialRawPond(t, srv, "token=ok")
	a.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"/room/panic","requestId":"j1","payload":{}}`)
	m := a.next()
	p := m["payload"].(map[string]any)
	if m["event"] != "UNAUTHORIZED" || p["status"] != float64(500) {
		t.Fatalf("panicking join: %v", m)
	}
	checkPanicLog(genericID(t, p["message"].(string)), "assignment to entry in nil map")

	joinRawAck(a, "/room/x", "j2")
	a.send(`{"action":"BROADCAST","event":"boom","channelName":"/room/x","requestId":"e1","payload":{}}`)
	m = a.next()
	p = m["payload"].(map[string]any)
	if m["event"] != "HANDLER_NOT_FOUND" || m["requestId"] != "e1" || p["code"] != float64(500) {
		t.Fatalf("panicking event handler: %v", m)
	}
	checkPanicLog(genericID(t, p["message"].(string)), "event-boom")

	joinRawAck(a, "/mw/x", "j3")
	a.send(`{"action":"BROADCAST","event":"boom","channelName":"/mw/x","requestId":"e2","payload":{}}`)
	m = a.next()
	p = m["payload"].(map[string]any)
	if m["event"] != "HANDLER_NOT_FOUND" || p["code"] != float64(500) {
		t.Fatalf("panicking middleware: %v", m)
	}
	checkPanicLog(genericID(t, p["message"].(string)), "middleware-boom")

	// an outgoing hook that panics drops that delivery and is logged
	a.send(`{"action":"BROADCAST","event":"say","channelName":"/room/x","requestId":"e3","payload":{"boom":true}}`)
	logs.waitFor(t, `"level":"ERROR"`, `"msg":"handler panicked"`, "outgoing-boom", `"stack":"goroutine `)
	a.send(`{"action":"BROADCAST","event":"say","channelName":"/room/x","requestId":"e4","payload":{"boom":false}}`)
	a.expect(`{"channelName":"/room/x","requestId":"e4","action":"BROADCAST","event":"said","payload":{"boom":false}}`, nil)

	// a leave handler that panics
	joinRawAck(a, "/room/leavepanic", "j4")
	a.send(`{"action":"LEAVE_CHANNEL","event":"LEAVE_CHANNEL","channelName":"/room/leavepanic","requestId":"l1","payload":{}}`)
	logs.waitFor(t, `"level":"ERROR"`, `"msg":"handler panicked"`, "leave-boom", `"stack":"goroutine `)

	a.sync2("/room/x")
	bystanderPing(bystander, "/room/b")
	if st := srv.Stats(); st.HandlerErrors < 6 {
		t.Fatalf("handler errors counted: %d", st.HandlerErrors)
	}
}

func joinRawAck(r *raw, ch, reqID string) {
	r.t.Helper()
	r.send(`{"action":"JOIN_CHANNEL","event":"JOIN_CHANNEL","channelName":"` + ch + `","requestId":"` + reqID + `","payload":{}}`)
	r.expect(`{"channelName":"`+ch+`","requestId":"`+reqID+`","action":"SYSTEM","event":"ACKNOWLEDGE","payload":{}}`, nil)
}

// bystanderPing proves a connection on the same server still gets its
// answers (the application of registerFaultyApp or of the limits tests).
func bystanderPing(r *raw, ch string) {
	r.t.Helper()
	r.send(`{"action":"BROADCAST","event":"ping","channelName":"` + ch + `","requestId":"by","payload":{}}`)
	r.expect(`{"channelName":"`+ch+`","requestId":"by","action":"SYSTEM","event":"pong","payload":{}}`, nil)
}

// sync2 is bystanderPing for the connection under test: nothing else is
// pending before the pong.
func (r *raw) sync2(ch string) { bystanderPing(r, ch) }
