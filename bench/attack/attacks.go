//go:build linux

package attack

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func init() {
	registry["connburst"] = def{
		desc: "opens --conns connections as fast as possible (--concurrency dials at once), holds them --hold, polls /healthz throughout",
		run:  connburst,
		cfg:  func(c *Config) { c.Conns, c.Concurrency, c.Hold = 1400, 512, 2*time.Second },
	}
	registry["pingflood"] = def{
		desc: "one connection sends --bytes of ping frames at full speed and never reads",
		run:  pingflood,
		cfg:  func(c *Config) { c.Bytes, c.Duration = 1<<30, 5*time.Second },
	}
	registry["longnames"] = def{
		desc: "--conns connections each join --count channels whose names are --size bytes long",
		run:  longnames,
		cfg:  func(c *Config) { c.Conns, c.Count, c.Size = 1, 1000, 1_000_000 },
	}
	registry["bigpresence"] = def{
		desc: "--conns members join one room with a --size byte presence field while --listeners honest members read as fast as they can; a latecomer joins last",
		run:  bigpresence,
		cfg:  func(c *Config) { c.Conns, c.Listeners, c.Size, c.Duration = 5, 50, 900_000, 5*time.Second },
	}
	registry["mailbox"] = def{
		desc: "one connection sends --count messages of --size bytes to the slow event --event (asking --handler-ms)",
		run:  mailbox,
		cfg:  func(c *Config) { c.Count, c.Size, c.Event, c.HandlerMS = 1024, 1_000_000, "slow", 50 },
	}
	registry["slowhandlers"] = def{
		desc: "--conns connections each queue --count calls to the slow event --event (asking --handler-ms); then a newcomer connects and joins",
		run:  slowhandlers,
		cfg:  func(c *Config) { c.Conns, c.Count, c.Event, c.HandlerMS = 520, 2, "slow", 5000 },
	}
	registry["leak"] = def{
		desc: "sends the events in --event (comma-separated) whose handlers fail, and a message that is not JSON, and shows the error text that comes back",
		run:  leak,
		cfg:  func(c *Config) { c.Event, c.Duration = "fail,crash", 5*time.Second },
	}
	registry["capblind"] = def{
		desc: "opens --conns connections (past the server's cap), then polls /healthz and /metrics --count times",
		run:  capblind,
		cfg:  func(c *Config) { c.Conns, c.Count, c.Concurrency = 1100, 20, 128 },
	}
	registry["presencespam"] = def{
		desc: "one member sends --count presence updates of --size bytes, --rate a second, to a room of --listeners members; reports the bytes the room received per byte sent",
		run:  presencespam,
		cfg: func(c *Config) {
			// 1000 a second is the demo's message rate per connection.
			c.Listeners, c.Count, c.Size, c.Rate, c.Event = 300, 5000, 100, 1000, "status"
		},
	}
	registry["badupgrade"] = def{
		desc: "sends --count upgrade requests of each malformed kind (Upgrade: websocket, foo; duplicate Host; bare-LF line endings) and reports the statuses",
		run:  badupgrade,
		// A request the server never answers costs DialTimeout: a shorter
		// one and more at once keep the attack within its bounds.
		cfg: func(c *Config) { c.Count, c.Concurrency, c.DialTimeout = 200, 50, 2*time.Second },
	}
}

// tally counts outcomes from many goroutines and keeps the first text of
// each kind.
type tally struct {
	mu    sync.Mutex
	n     map[string]int64
	first map[string]string
}

func newTally() *tally { return &tally{n: map[string]int64{}, first: map[string]string{}} }

func (t *tally) add(k string) { t.addN(k, 1) }

func (t *tally) addN(k string, n int64) {
	t.mu.Lock()
	t.n[k] += n
	t.mu.Unlock()
}

// note keeps the first text seen for a kind.
func (t *tally) note(k, text string) {
	t.mu.Lock()
	if _, ok := t.first[k]; !ok {
		t.first[k] = text
	}
	t.mu.Unlock()
}

func (t *tally) get(k string) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.n[k]
}

// into copies the counts and notes into r.
func (t *tally) into(r *Report) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, v := range t.n {
		r.Counts[k] += v
	}
	for k, v := range t.first {
		r.Observe("%s: %s", k, v)
	}
}

// parallel runs f(i) for i in [0, n) on at most conc goroutines, stopping
// early when ctx ends.
func parallel(ctx context.Context, n, conc int, f func(i int)) {
	conc = max(1, min(conc, n))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				f(i)
			}
		}()
	}
	wg.Wait()
}

// sleepCtx sleeps d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// drainUntil reads c until deadline and says how it ended: "open" when the
// connection was still up at the deadline, else closeDesc.
func drainUntil(c *Conn, deadline time.Time) string {
	err := c.Drain(deadline)
	if err == nil && c.CloseCode == 0 {
		return "open"
	}
	return closeDesc(c, err)
}

// getStatus counts the outcome of a GET of path under key, keeping the
// first error text of each kind.
func getStatus(ctx context.Context, e *env, t *tally, key, path string) {
	st, err := e.probe.status(ctx, path)
	t.add(key + " " + st)
	if err != nil && ctx.Err() == nil {
		t.note(key+" "+st, err.Error())
	}
}

// pollHealth counts /healthz statuses under key every interval until ctx ends.
func pollHealth(ctx context.Context, e *env, t *tally, key string, interval time.Duration) {
	for ctx.Err() == nil {
		getStatus(ctx, e, t, key, "/healthz")
		sleepCtx(ctx, interval)
	}
}

// burst opens n connections with conc dials at once; it counts each
// outcome under "upgrade …" and returns the open connections.
func burst(ctx context.Context, e *env, n, conc int, t *tally) []*Conn {
	var mu sync.Mutex
	var open []*Conn
	parallel(ctx, n, conc, func(i int) {
		c, err := dialWS(ctx, e.target, nil, e.cfg.DialTimeout)
		if err != nil {
			k := errKind(err)
			t.add("upgrade: " + k)
			t.note("upgrade: "+k, err.Error())
			return
		}
		t.add("upgrade: 101")
		mu.Lock()
		open = append(open, c)
		mu.Unlock()
	})
	return open
}

func closeAll(cs []*Conn) {
	for _, c := range cs {
		c.Close()
	}
}

// connburst: issue 10 point 1.
func connburst(ctx context.Context, e *env, r *Report) error {
	t := newTally()
	hctx, stopHealth := context.WithCancel(ctx)
	hdone := make(chan struct{})
	go func() { defer close(hdone); pollHealth(hctx, e, t, "healthz during:", 100*time.Millisecond) }()
	start := time.Now()
	open := burst(ctx, e, e.cfg.Conns, e.cfg.Concurrency, t)
	secs := time.Since(start).Seconds()
	r.Set("connections attempted", float64(e.cfg.Conns), "")
	r.Set("upgraded (101)", float64(len(open)), "")
	r.Set("burst seconds", secs, "s")
	if secs > 0 {
		r.Set("attempts per second", float64(e.cfg.Conns)/secs, "/s")
	}
	sleepCtx(ctx, e.cfg.Hold)
	stopHealth()
	<-hdone
	closeAll(open)
	// After the burst: does the server still answer?
	for i := 0; i < 5 && ctx.Err() == nil; i++ {
		getStatus(ctx, e, t, "healthz after:", "/healthz")
		sleepCtx(ctx, 200*time.Millisecond)
	}
	t.into(r)
	return nil
}

// pingflood: issue 10 points 2 and 10.
func pingflood(ctx context.Context, e *env, r *Report) error {
	c, err := e.dial(ctx, "pingflood")
	if err != nil {
		return err
	}
	defer c.Close()
	// A chunk of masked ping frames with 125-byte payloads; the mask is
	// fixed, the server unmasks whatever it is.
	var chunk []byte
	payload := bytes.Repeat([]byte{'p'}, 125)
	for len(chunk) < 60<<10 {
		chunk = append(chunk, 0x89, 0x80|125, 1, 2, 3, 4)
		for i, b := range payload {
			chunk = append(chunk, b^[]byte{1, 2, 3, 4}[i%4])
		}
	}
	perChunk := int64(len(chunk) / 131)
	start := time.Now()
	deadline := start.Add(e.cfg.Duration)
	var sent, pings int64
	ended := "limit reached"
	for sent < e.cfg.Bytes && ctx.Err() == nil {
		if err := c.WriteRaw(chunk, deadline); err != nil {
			ended = "write: " + errKind(err)
			break
		}
		sent += int64(len(chunk))
		pings += perChunk
	}
	secs := time.Since(start).Seconds()
	r.Set("ping bytes sent", float64(sent), "bytes")
	r.Set("pings sent", float64(pings), "")
	r.Set("flood seconds", secs, "s")
	if secs > 0 {
		r.Set("ping MB/s", float64(sent)/secs/1e6, "MB/s")
	}
	r.Counts["flood ended: "+ended]++
	// Now read: what did the server queue, and did it close us?
	wait := min(3*time.Second, e.cfg.Duration)
	how := drainUntil(c, time.Now().Add(wait))
	r.Set(fmt.Sprintf("pongs read in %v afterwards", wait), float64(c.Pongs.Load()), "")
	r.Set("bytes read afterwards", float64(c.BytesIn.Load()), "bytes")
	r.Counts["connection: "+how]++
	if c.CloseReason != "" {
		r.Observe("close reason: %q", c.CloseReason)
	}
	return nil
}

// answers reads c until want answers to requests with the given id prefix
// arrived, the connection ends or deadline; it counts "answer: ack",
// "answer: reply", "answer: error 413 CHANNEL_ERROR" and how it ended.
func answers(c *Conn, prefix string, want int, deadline time.Time, t *tally) (got int) {
	for got < want {
		m, err := c.Next(deadline)
		if err != nil {
			k := closeDesc(c, err)
			if k == "timeout" {
				k = "open"
			}
			t.add("connection: " + k)
			if c.CloseReason != "" {
				t.note("connection: "+k, fmt.Sprintf("reason %q", c.CloseReason))
			}
			return got
		}
		if m.Action == "ERROR" && !strings.HasPrefix(m.RequestID, prefix) && m.Channel == "ENDPOINT" {
			// INVALID_MESSAGE answers carry a fresh id (docs/protocol.md §2.3).
			k := fmt.Sprintf("answer: error %d %s", errorStatus(m.Payload), m.Event)
			t.add(k)
			t.note(k, errorText(m.Payload))
			got++
			continue
		}
		if !strings.HasPrefix(m.RequestID, prefix) || m.Action == "PRESENCE" {
			continue
		}
		got++
		switch {
		case m.Action == "ERROR":
			k := fmt.Sprintf("answer: error %d %s", errorStatus(m.Payload), m.Event)
			t.add(k)
			t.note(k, errorText(m.Payload))
		case m.Event == "ACKNOWLEDGE":
			t.add("answer: ack")
		default:
			t.add("answer: reply")
		}
	}
	t.add("connection: open")
	return got
}

// longnames: issue 10 point 3.
func longnames(ctx context.Context, e *env, r *Report) error {
	t := newTally()
	pad := strings.Repeat("n", e.cfg.Size)
	deadline := time.Now().Add(e.cfg.Duration)
	var sent atomic.Int64
	var wg sync.WaitGroup
	var conns []*Conn
	for ci := 0; ci < e.cfg.Conns; ci++ {
		c, err := e.dial(ctx, "longnames")
		if err != nil {
			t.add("dial: " + errKind(err))
			continue
		}
		conns = append(conns, c)
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < e.cfg.Count && ctx.Err() == nil; i++ {
				ch := e.room(fmt.Sprintf("%d-%d-%s", ci, i, pad))
				if err := c.Send("JOIN_CHANNEL", ch, "JOIN_CHANNEL", fmt.Sprintf("ln-%d", i), map[string]any{"presence": false}, deadline); err != nil {
					t.add("send: " + errKind(err))
					return
				}
				sent.Add(1)
			}
		}()
		go func() {
			defer wg.Done()
			// Waits for every join's answer, the connection's end or the
			// deadline.
			answers(c, "ln-", e.cfg.Count, deadline, t)
		}()
	}
	wg.Wait()
	var out int64
	for _, c := range conns {
		out += c.BytesOut.Load()
		c.Close()
	}
	r.Set("joins sent", float64(sent.Load()), "")
	r.Set("bytes sent", float64(out), "bytes")
	t.into(r)
	return nil
}
