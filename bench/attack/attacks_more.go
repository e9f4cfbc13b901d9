//go:build linux

package attack

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// bigpresence: issue 10 point 4.
func bigpresence(ctx context.Context, e *env, r *Report) error {
	t := newTally()
	room := e.room("bigpresence")
	end := time.Now().Add(e.cfg.Duration)
	joinDL := func() time.Time { return time.Now().Add(e.cfg.DialTimeout) }

	// Honest members first, each reading as fast as it can until the end.
	var honest []*Conn
	var mu sync.Mutex
	parallel(ctx, e.cfg.Listeners, e.cfg.Concurrency, func(i int) {
		name := "honest-" + strconv.Itoa(i)
		c, err := e.dial(ctx, name)
		if err == nil {
			err = c.join(room, "bp-h", map[string]any{"username": name}, joinDL())
		}
		if err != nil {
			t.add("honest join: " + errKind(err))
			t.note("honest join: "+errKind(err), err.Error())
			if c != nil {
				c.Close()
			}
			return
		}
		mu.Lock()
		honest = append(honest, c)
		mu.Unlock()
	})
	var wg sync.WaitGroup
	watch := func(who string, c *Conn) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			how := drainUntil(c, end)
			t.add(who + ": " + how)
			if how != "open" && c.CloseReason != "" {
				t.note(who+": "+how, fmt.Sprintf("reason %q", c.CloseReason))
			}
		}()
	}
	for _, c := range honest {
		watch("honest", c)
	}
	r.Set("honest members", float64(len(honest)), "")

	// The attackers join with a huge presence field and do not read after
	// their answer.
	big := strings.Repeat("u", e.cfg.Size)
	var attackers []*Conn
	parallel(ctx, e.cfg.Conns, e.cfg.Conns, func(i int) {
		c, err := e.dial(ctx, "")
		if err == nil {
			err = c.join(room, "bp-a", map[string]any{"username": big}, joinDL())
		}
		k := "attacker join: " + joinKind(err)
		t.add(k)
		if err != nil {
			t.note(k, err.Error())
		}
		if c != nil {
			mu.Lock()
			attackers = append(attackers, c)
			mu.Unlock()
		}
	})
	defer closeAll(attackers)

	// A latecomer joins the room after the attackers.
	if c, err := e.dial(ctx, "latecomer"); err != nil {
		t.add("latecomer: " + errKind(err))
	} else {
		err := c.join(room, "bp-l", map[string]any{"username": "latecomer"}, joinDL())
		t.add("latecomer join: " + joinKind(err))
		if err == nil {
			watch("latecomer", c)
		}
		defer c.Close()
	}
	wg.Wait()
	closeAll(honest)
	var in int64
	for _, c := range honest {
		in += c.BytesIn.Load()
	}
	r.Set("honest members cut", float64(int64(len(honest))-t.get("honest: open")), "")
	r.Set("honest bytes received", float64(in), "bytes")
	t.into(r)
	return nil
}

// joinKind names a join's outcome: "ack", "error 413 …", "close 1008".
func joinKind(err error) string {
	if err == nil {
		return "ack"
	}
	if re, ok := err.(*replyError); ok {
		return fmt.Sprintf("error %d %s", errorStatus(re.m.Payload), re.m.Event)
	}
	return errKind(err)
}

// mailbox: issue 10 point 5.
func mailbox(ctx context.Context, e *env, r *Report) error {
	t := newTally()
	c, err := e.dial(ctx, "mailbox")
	if err != nil {
		return err
	}
	defer c.Close()
	room := e.room("mailbox")
	if err := c.join(room, "mb-join", map[string]any{"presence": false}, time.Now().Add(e.cfg.DialTimeout)); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	deadline := time.Now().Add(e.cfg.Duration)
	payload := map[string]any{"ms": e.cfg.HandlerMS, "pad": strings.Repeat("m", max(0, e.cfg.Size-40))}
	var sent atomic.Int64
	wrote := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(wrote)
		for i := 0; i < e.cfg.Count && ctx.Err() == nil; i++ {
			if err := c.Send("BROADCAST", room, e.cfg.Event, "mb-"+strconv.Itoa(i), payload, deadline); err != nil {
				t.add("send: " + errKind(err))
				return
			}
			sent.Add(1)
		}
	}()
	got := answers(c, "mb-", e.cfg.Count, deadline, t)
	<-wrote
	r.Set("messages sent", float64(sent.Load()), "")
	r.Set("bytes sent", float64(c.BytesOut.Load()), "bytes")
	r.Set("answers", float64(got), "")
	r.Set("seconds", time.Since(start).Seconds(), "s")
	t.into(r)
	return nil
}

// slowhandlers: issue 10 point 6.
func slowhandlers(ctx context.Context, e *env, r *Report) error {
	t := newTally()
	room := e.room("slow")
	end := time.Now().Add(e.cfg.Duration)
	var mu sync.Mutex
	var conns []*Conn
	var calls atomic.Int64
	parallel(ctx, e.cfg.Conns, e.cfg.Concurrency, func(i int) {
		c, err := e.dial(ctx, "")
		if err == nil {
			err = c.join(room, "sh-join", map[string]any{"presence": false}, time.Now().Add(e.cfg.DialTimeout))
		}
		if err != nil {
			t.add("setup: " + joinKind(err))
			if c != nil {
				c.Close()
			}
			return
		}
		for k := 0; k < e.cfg.Count; k++ {
			if err := c.Send("BROADCAST", room, e.cfg.Event, fmt.Sprintf("sh-%d-%d", i, k), map[string]any{"ms": e.cfg.HandlerMS}, end); err != nil {
				t.add("send: " + errKind(err))
				break
			}
			calls.Add(1)
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	})
	defer closeAll(conns)
	r.Set("connections", float64(len(conns)), "")
	r.Set("calls queued", float64(calls.Load()), "")
	// A newcomer connects and joins while the calls are queued.
	start := time.Now()
	nc, err := e.dial(ctx, "newcomer")
	if err == nil {
		err = nc.join(e.room("newcomer"), "nc-join", map[string]any{"presence": false}, time.Now().Add(10*time.Second))
		nc.Close()
	}
	t.add("newcomer: " + joinKind(err))
	if err == nil {
		r.Set("newcomer connect+join", ms(time.Since(start)), "ms")
	}
	var wg sync.WaitGroup
	var got atomic.Int64
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got.Add(int64(answers(c, "sh-", e.cfg.Count, end, t)))
		}()
	}
	wg.Wait()
	r.Set("answers before the end", float64(got.Load()), "")
	t.into(r)
	return nil
}

// leak: issue 10 point 8.
func leak(ctx context.Context, e *env, r *Report) error {
	c, err := e.dial(ctx, "leak")
	if err != nil {
		return err
	}
	defer c.Close()
	room := e.room("leak")
	if err := c.join(room, "lk-join", map[string]any{"presence": false}, time.Now().Add(e.cfg.DialTimeout)); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	probe := func(what string, send func(dl time.Time) error, match func(Msg) bool) {
		dl := time.Now().Add(3 * time.Second)
		if err := send(dl); err != nil {
			r.Observe("%s: send failed: %v", what, err)
			return
		}
		for {
			m, err := c.Next(dl)
			if err != nil {
				r.Counts[what+": "+closeDesc(c, err)]++
				r.Observe("%s: no answer (%s)", what, closeDesc(c, err))
				return
			}
			if !match(m) {
				continue
			}
			r.Counts[fmt.Sprintf("%s: %s %d", what, m.Action, errorStatus(m.Payload))]++
			r.Observe("%s → %s %s: %s", what, m.Action, m.Event, oneLine(string(m.Payload), 400))
			return
		}
	}
	for i, ev := range strings.Split(e.cfg.Event, ",") {
		ev = strings.TrimSpace(ev)
		if ev == "" {
			continue
		}
		id := "lk-" + strconv.Itoa(i)
		probe("event "+ev, func(dl time.Time) error {
			return c.Send("BROADCAST", room, ev, id, map[string]any{"probe": i}, dl)
		}, func(m Msg) bool { return m.RequestID == id })
	}
	probe("invalid JSON", func(dl time.Time) error {
		return c.SendText([]byte(`{"action":"BROADCAST","channelName":`), dl)
	}, func(m Msg) bool { return m.Action == "ERROR" && m.Channel == "ENDPOINT" })
	probe("wrong payload type", func(dl time.Time) error {
		return c.SendText([]byte(`{"action":"BROADCAST","channelName":"`+room+`","event":"echo","requestId":"lk-p","payload":[1]}`), dl)
	}, func(m Msg) bool { return m.Action == "ERROR" })
	r.Set("probes", float64(len(strings.Split(e.cfg.Event, ","))+2), "")
	return nil
}

// capblind: issue 10 point 9.
func capblind(ctx context.Context, e *env, r *Report) error {
	t := newTally()
	open := burst(ctx, e, e.cfg.Conns, e.cfg.Concurrency, t)
	defer closeAll(open)
	r.Set("connections attempted", float64(e.cfg.Conns), "")
	r.Set("upgraded (101)", float64(len(open)), "")
	for i := 0; i < e.cfg.Count && ctx.Err() == nil; i++ {
		getStatus(ctx, e, t, "healthz:", "/healthz")
		getStatus(ctx, e, t, "metrics:", "/metrics")
		sleepCtx(ctx, 100*time.Millisecond)
	}
	sleepCtx(ctx, e.cfg.Hold)
	t.into(r)
	return nil
}

// presencespam: issue 10 point 10, presence amplification.
func presencespam(ctx context.Context, e *env, r *Report) error {
	t := newTally()
	room := e.room("spam")
	var mu sync.Mutex
	var listeners []*Conn
	parallel(ctx, e.cfg.Listeners, e.cfg.Concurrency, func(i int) {
		// Presence goes to the members that track it, so listeners do.
		name := "listener-" + strconv.Itoa(i)
		c, err := e.dial(ctx, name)
		if err == nil {
			err = c.join(room, "ps-l", map[string]any{"username": name}, time.Now().Add(e.cfg.DialTimeout))
		}
		if err != nil {
			t.add("listener join: " + joinKind(err))
			if c != nil {
				c.Close()
			}
			return
		}
		mu.Lock()
		listeners = append(listeners, c)
		mu.Unlock()
	})
	defer closeAll(listeners)
	end := time.Now().Add(e.cfg.Duration + 5*time.Second)
	var wg sync.WaitGroup
	for _, c := range listeners {
		wg.Add(1)
		go func() { defer wg.Done(); t.add("listener: " + drainUntil(c, end)) }()
	}
	in := func() int64 {
		var n int64
		for _, c := range listeners {
			n += c.BytesIn.Load()
		}
		return n
	}
	sp, err := e.dial(ctx, "spammer")
	if err != nil {
		return err
	}
	defer sp.Close()
	if err := sp.join(room, "ps-join", map[string]any{"username": "spammer"}, time.Now().Add(e.cfg.DialTimeout)); err != nil {
		return fmt.Errorf("spammer join: %w", err)
	}
	// Let the joins' presence messages settle, then count from here.
	waitQuiet(ctx, in, 300*time.Millisecond, time.Now().Add(5*time.Second))
	in0, out0 := in(), sp.BytesOut.Load()
	spDone := make(chan struct{})
	go func() {
		defer close(spDone)
		answers(sp, "ps-u", e.cfg.Count, end, t)
	}()
	pad := strings.Repeat("s", max(0, e.cfg.Size-8))
	sent := 0
	start := time.Now()
	for i := 0; i < e.cfg.Count && ctx.Err() == nil && time.Now().Before(end); i++ {
		if e.cfg.Rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(i) / e.cfg.Rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		st := fmt.Sprintf("%s%08d", pad, i)
		if err := sp.Send("BROADCAST", room, e.cfg.Event, "ps-u"+strconv.Itoa(i), map[string]any{"status": st}, end); err != nil {
			t.add("send: " + errKind(err))
			break
		}
		sent++
	}
	sendSecs := time.Since(start).Seconds()
	out := sp.BytesOut.Load() - out0
	// Wait until the room has received everything.
	waitQuiet(ctx, in, 500*time.Millisecond, end)
	got := in() - in0
	for _, c := range listeners {
		c.Interrupt()
	}
	sp.Interrupt()
	wg.Wait()
	<-spDone
	r.Set("listeners", float64(len(listeners)), "")
	r.Set("updates sent", float64(sent), "")
	r.Set("seconds sending", sendSecs, "s")
	r.Set("bytes sent by the spammer", float64(out), "bytes")
	r.Set("bytes received by the room", float64(got), "bytes")
	if out > 0 {
		r.Set("amplification (out/in)", float64(got)/float64(out), "×")
	}
	t.into(r)
	return nil
}

// badUpgrades are the malformed upgrade requests of issue 10 point 10.
var badUpgrades = []struct{ name, req string }{
	{"valid (control)", "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"},
	{"Upgrade: websocket, foo", "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket, foo\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"},
	{"duplicate Host", "GET {path} HTTP/1.1\r\nHost: {host}\r\nHost: evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"},
	{"bare LF", "GET {path} HTTP/1.1\nHost: {host}\nUpgrade: websocket\nConnection: Upgrade\nSec-WebSocket-Version: 13\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\n\n"},
}

// badupgrade: issue 10 point 10, upgrade validation.
func badupgrade(ctx context.Context, e *env, r *Report) error {
	t := newTally()
	for _, k := range badUpgrades {
		req := strings.NewReplacer("{path}", e.target.Path, "{host}", e.target.Host).Replace(k.req)
		var mu sync.Mutex
		var lat []time.Duration
		parallel(ctx, e.cfg.Count, e.cfg.Concurrency, func(int) {
			start := time.Now()
			st := rawRequest(ctx, e.target.Addr, req, e.cfg.DialTimeout)
			t.add(k.name + ": " + st)
			mu.Lock()
			lat = append(lat, time.Since(start))
			mu.Unlock()
		})
		if len(lat) > 0 {
			slices.Sort(lat)
			r.Set(k.name+": answer p50", ms(lat[len(lat)/2]), "ms")
		}
	}
	t.into(r)
	return nil
}

// rawRequest sends req on a new TCP connection and returns the response's
// status code, or how the connection ended without one.
func rawRequest(ctx context.Context, addr, req string, timeout time.Duration) string {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "dial " + errKind(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(timeout))
	if _, err := nc.Write([]byte(req)); err != nil {
		return "write " + errKind(err)
	}
	line, err := bufio.NewReader(nc).ReadSlice('\n')
	if err != nil {
		return errKind(err)
	}
	f := bytes.Fields(line)
	if len(f) < 2 || !bytes.HasPrefix(f[0], []byte("HTTP/")) {
		return "not HTTP"
	}
	return string(f[1])
}

// waitQuiet waits until n() has not changed for quiet, or until deadline.
func waitQuiet(ctx context.Context, n func() int64, quiet time.Duration, deadline time.Time) {
	last, since := n(), time.Now()
	for ctx.Err() == nil && time.Now().Before(deadline) && time.Since(since) < quiet {
		sleepCtx(ctx, 50*time.Millisecond)
		if v := n(); v != last {
			last, since = v, time.Now()
		}
	}
}
