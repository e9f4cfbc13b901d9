package scenario

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pondsocket/pondsocket/bench/client"
	"github.com/pondsocket/pondsocket/bench/hist"
)

// Worker phases.
const (
	phaseSetup int32 = iota
	phaseRun
	phaseDrain
	phaseClosing
)

// member is one connection of the worker. It belongs to its loop.
type member struct {
	conn      *client.Conn
	id        int
	room      int
	target    int
	channel   string
	connected bool
	joinSent  int64
	joined    bool
	settled   bool // reached a final setup state (counted once)
	released  bool // gave its dial slot back
	done      bool // presence: saw the full list
	lastSeq   int64
	seq       int64 // messages this member sent
	lastSend  int64 // unix ns of its last measured message
}

// loopState is what one event loop records; only that loop touches it,
// except the atomic counters.
type loopState struct {
	idx     int
	members []*member // members owned by this loop

	sent       atomic.Uint64
	delivered  atomic.Uint64
	expected   atomic.Uint64 // rooms, echo: deliveries the sends should cause
	unexpected atomic.Uint64 // deliveries that will not come: their message was refused
	refused    atomic.Uint64 // measured messages the server answered with an ERROR

	connect, join, lat, latRemote, presence *hist.Histogram

	firstDial, lastConnect, firstJoin, lastJoin int64
	firstDelivery, lastDelivery, lastPresence   int64
	outOfOrder, duplicates, negative, presMsgs  uint64
	sentByRoom                                  map[int]uint64
	errors                                      map[string]int
	bytesAtStart                                uint64

	buf       []byte
	senders   []*member // rooms: joined members of this loop, at start
	paceSent  int64
	rr        int
	joinNext  int // presence with --join-rate: next member to join
	joinsDone bool
	waiting   []pending // echo with --rate: members whose next request is not due yet
	waitHead  int
}

// pending is a member whose next echo request is due at a given time.
type pending struct {
	m   *member
	due int64
}

// worker runs a share of the connections for the parent.
type worker struct {
	spec    Spec
	index   int
	lo, hi  int
	targets []*client.Target
	pool    *client.Pool
	members []member
	loops   []*loopState
	channel []string // by room

	out   *json.Encoder
	outMu sync.Mutex

	phase   atomic.Int32
	startAt atomic.Int64
	stopAt  atomic.Int64

	dialed       atomic.Int64
	connected    atomic.Int64
	failed       atomic.Int64
	joined       atomic.Int64
	joinFailed   atomic.Int64
	dropped      atomic.Int64
	settled      atomic.Int64
	presenceDone atomic.Int64
	messages     atomic.Uint64

	sem chan struct{}

	roomMembers  map[int]int // start: joined members per room, all workers
	expectList   int         // presence: full list size
	pubAllow     int64       // publisher loop only
	pubSeq       int64       // publisher loop only
	pub          *member
	api          *apiPublisher // --publish api: posts instead of pub's WebSocket
	stopDialling chan struct{}

	seriesMu        sync.Mutex
	seriesSent      []uint64
	seriesDelivered []uint64
	seriesConns     []int64
	seriesEnd       int64
	seriesStop      chan struct{}
	seriesDone      chan struct{}
}

// serveWorker reads commands from r and writes events to w until quit or EOF.
func serveWorker(r io.Reader, w io.Writer) error {
	wk := &worker{out: json.NewEncoder(w), stopDialling: make(chan struct{})}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	defer wk.shutdown()
	for sc.Scan() {
		var cmd command
		if err := json.Unmarshal(sc.Bytes(), &cmd); err != nil {
			wk.emit(event{Ev: "error", Err: "bad command: " + err.Error()})
			continue
		}
		if err := wk.handle(cmd); err != nil {
			if errors.Is(err, errQuit) {
				return nil
			}
			wk.emit(event{Ev: "error", Err: err.Error()})
		}
	}
	return sc.Err()
}

var errQuit = errors.New("quit")

func (w *worker) emit(e event) {
	w.outMu.Lock()
	defer w.outMu.Unlock()
	_ = w.out.Encode(e)
}

func (w *worker) handle(cmd command) error {
	switch cmd.Op {
	case "setup":
		if cmd.Spec == nil {
			return errors.New("setup without spec")
		}
		return w.setup(*cmd.Spec, cmd.Worker, cmd.At)
	case "start":
		w.start(cmd)
	case "credit":
		if w.api != nil {
			w.api.credit(cmd.Allow)
		} else if w.pub != nil {
			l := w.pool.Loop(w.pub.id)
			ls := w.loops[l.Index]
			allow := cmd.Allow
			l.Post(func() {
				if allow > w.pubAllow {
					w.pubAllow = allow
				}
				w.pumpPublisher(ls)
			})
		}
	case "stop":
		if w.phase.CompareAndSwap(phaseRun, phaseDrain) {
			w.stopAt.Store(time.Now().UnixNano())
		}
		if w.pool != nil {
			// A barrier: once every loop ran this, no loop is inside a
			// send that began before the phase changed, so the counters
			// in the "stopped" event hold every message that will be sent.
			w.onLoops(func(*client.Loop, *loopState) {})
		}
		if w.api != nil {
			w.api.barrier() // the same for the API posters
		}
		w.emit(event{Ev: "stopped", C: w.counters()})
	case "collect":
		w.emit(event{Ev: "result", Result: w.collect()})
	case "quit":
		return errQuit
	default:
		return fmt.Errorf("unknown command %q", cmd.Op)
	}
	return nil
}

func (w *worker) setup(spec Spec, index int, origin int64) error {
	if w.pool != nil {
		return errors.New("setup twice")
	}
	w.spec, w.index = spec, index
	w.lo, w.hi = spec.share(index)
	for _, t := range spec.Targets {
		tg, err := client.ParseTarget(t)
		if err != nil {
			return err
		}
		w.targets = append(w.targets, tg)
	}
	if len(w.targets) == 0 {
		return errors.New("no targets")
	}
	for r := 0; r < spec.roomCount(); r++ {
		w.channel = append(w.channel, spec.channelName(r))
	}
	tick := 10 * time.Millisecond
	if spec.Scenario != "conns" {
		tick = time.Millisecond
	}
	pool, err := client.NewPool(client.Config{
		Loops:          spec.Loops,
		Handler:        w,
		Tick:           tick,
		ConnectTimeout: time.Duration(spec.ConnectTimeout),
	})
	if err != nil {
		return err
	}
	w.pool = pool
	for i := range pool.Loops() {
		w.loops = append(w.loops, &loopState{
			idx:        i,
			connect:    hist.New(),
			join:       hist.New(),
			lat:        hist.New(),
			latRemote:  hist.New(),
			presence:   hist.New(),
			sentByRoom: map[int]uint64{},
			errors:     map[string]int{},
		})
	}
	w.members = make([]member, w.hi-w.lo)
	for i := range w.members {
		id := w.lo + i
		m := &w.members[i]
		m.id = id
		m.room = spec.roomOf(id)
		m.target = spec.targetOf(id)
		m.channel = w.channel[m.room]
		ls := w.loops[pool.Loop(id).Index]
		ls.members = append(ls.members, m)
		if id == 0 && spec.fanoutLike() {
			w.pub = m
		}
	}
	if w.pub != nil && spec.Publish == "api" {
		w.api = newAPIPublisher(w, w.loops[pool.Loop(w.pub.id).Index], w.targets[w.pub.target], w.pub.channel)
	}
	w.sem = make(chan struct{}, spec.ConnectConcurrency)
	w.seriesStop = make(chan struct{})
	w.seriesDone = make(chan struct{})
	go w.sampleSeries(origin)
	go w.dialAll()
	go w.report()
	return nil
}

// dialAll opens the worker's connections, at most ConnectConcurrency at a
// time and at the worker's share of ConnectRate.
func (w *worker) dialAll() {
	rate := w.spec.ConnectRate / float64(w.spec.Workers)
	begin := time.Now()
	for i := range w.members {
		select {
		case w.sem <- struct{}{}:
		case <-w.stopDialling:
			return
		}
		if rate > 0 {
			due := begin.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-w.stopDialling:
					return
				}
			}
		}
		m := &w.members[i]
		tg := w.targets[m.target]
		d := client.Dial{ID: m.id, Target: tg, Path: w.spec.dialPath(tg, m.id), SSE: w.spec.usesSSE(m.id)}
		if w.spec.LocalIPs > 0 {
			d.LocalIP = net.IPv4(127, 0, 0, byte(1+m.id%w.spec.LocalIPs))
		}
		w.dialed.Add(1)
		w.pool.Loop(m.id).Dial(d)
	}
}

func (w *worker) counters() *counters {
	c := &counters{
		Dialed:       w.dialed.Load(),
		Connected:    w.connected.Load(),
		Failed:       w.failed.Load(),
		Joined:       w.joined.Load(),
		JoinFailed:   w.joinFailed.Load(),
		Dropped:      w.dropped.Load(),
		PresenceDone: w.presenceDone.Load(),
		Messages:     w.messages.Load(),
	}
	for i, ls := range w.loops {
		c.Sent += ls.sent.Load()
		c.Delivered += ls.delivered.Load()
		c.Expected += ls.expected.Load() - ls.unexpected.Load()
		c.Refused += ls.refused.Load()
		c.BytesIn += w.pool.Loops()[i].BytesIn.Load()
	}
	return c
}

// report streams counters to the parent: every millisecond while a
// publisher waits for credit (only when something changed), every 250ms
// otherwise, and "ready" once every connection has settled.
func (w *worker) report() {
	period := 50 * time.Millisecond
	t := time.NewTicker(period)
	defer t.Stop()
	var last counters
	lastSent := time.Now()
	readySent := false
	for range t.C {
		ph := w.phase.Load()
		if ph == phaseClosing {
			return
		}
		fast := ph == phaseRun && w.spec.fanoutLike()
		want := 50 * time.Millisecond
		if fast {
			want = time.Millisecond // the publisher's credit rides on these
		}
		if want != period {
			period = want
			t.Reset(period)
		}
		c := w.counters()
		if (fast && *c != last) || time.Since(lastSent) >= 250*time.Millisecond {
			w.emit(event{Ev: "progress", C: c})
			last, lastSent = *c, time.Now()
		}
		if !readySent && w.settled.Load() == int64(len(w.members)) {
			readySent = true
			w.emit(event{Ev: "ready", C: c, Ready: w.readyInfo()})
		}
	}
}

// onLoops runs f on every loop and waits for all of them.
func (w *worker) onLoops(f func(l *client.Loop, ls *loopState)) {
	var wg sync.WaitGroup
	for i, l := range w.pool.Loops() {
		wg.Add(1)
		ls := w.loops[i]
		if !l.Post(func() {
			defer wg.Done()
			f(l, ls)
		}) {
			wg.Done() // the pool is closed: nothing to wait for
		}
	}
	wg.Wait()
}

func (w *worker) readyInfo() *readyInfo {
	if w.spec.Scenario != "rooms" {
		return &readyInfo{}
	}
	var mu sync.Mutex
	by := map[int]int{}
	w.onLoops(func(_ *client.Loop, ls *loopState) {
		mu.Lock()
		defer mu.Unlock()
		for _, m := range ls.members {
			if m.joined && m.conn != nil && m.conn.IsOpen() {
				by[m.room]++
			}
		}
	})
	return &readyInfo{JoinedByRoom: by}
}

func (w *worker) start(cmd command) {
	w.roomMembers = cmd.RoomMembers
	w.expectList = cmd.Expect
	w.startAt.Store(cmd.At)
	w.onLoops(func(l *client.Loop, ls *loopState) {
		ls.bytesAtStart = l.BytesIn.Load()
		for _, m := range ls.members {
			if m.joined && m.conn != nil && m.conn.IsOpen() {
				ls.senders = append(ls.senders, m)
			}
		}
	})
	w.phase.Store(phaseRun)
	// Give the loops their first work at the agreed time.
	go func() {
		if d := time.Until(time.Unix(0, cmd.At)); d > 0 {
			time.Sleep(d)
		}
		w.onLoops(func(l *client.Loop, ls *loopState) { w.kick(l, ls) })
		if w.api != nil {
			w.api.start()
		}
	}()
}

// kick begins the measured phase on one loop.
func (w *worker) kick(_ *client.Loop, ls *loopState) {
	switch w.spec.Scenario {
	case "echo":
		for _, m := range ls.senders {
			for i := 0; i < w.spec.Depth; i++ {
				w.send(ls, m, w.spec.EchoEvent)
			}
		}
	case "presence":
		if w.spec.JoinRate <= 0 {
			for _, m := range ls.members {
				w.sendJoin(ls, m)
			}
			ls.joinsDone = true
		}
	case "fanout", "cluster", "ceiling":
		if w.pub != nil && w.pool.Loop(w.pub.id).Index == ls.idx {
			w.pumpPublisher(ls)
		}
	}
}

// sampleSeries records cumulative counters at each interval edge after at
// (the run's origin, the same instant for every worker).
func (w *worker) sampleSeries(at int64) {
	defer close(w.seriesDone)
	iv := time.Duration(w.spec.Interval)
	for k := 0; ; k++ {
		edge := time.Unix(0, at).Add(time.Duration(k) * iv)
		select {
		case <-w.seriesStop:
			return
		case <-time.After(time.Until(edge)):
		}
		w.seriesPoint(0)
	}
}

// seriesPoint records the cumulative counters; at != 0 marks a final,
// partial interval that ends at that time.
func (w *worker) seriesPoint(at int64) {
	var s, d uint64
	for _, ls := range w.loops {
		s += ls.sent.Load()
		d += ls.delivered.Load()
	}
	open := w.connected.Load() - w.dropped.Load()
	w.seriesMu.Lock()
	w.seriesSent = append(w.seriesSent, s)
	w.seriesDelivered = append(w.seriesDelivered, d)
	w.seriesConns = append(w.seriesConns, open)
	w.seriesEnd = at
	w.seriesMu.Unlock()
}

func (w *worker) collect() *workerResult {
	if w.pool == nil {
		return &workerResult{}
	}
	if w.seriesStop != nil {
		close(w.seriesStop)
		<-w.seriesDone
		w.seriesStop = nil
		w.seriesPoint(time.Now().UnixNano())
	}
	r := &workerResult{SentByRoom: map[int]uint64{}, Errors: map[string]int{}}
	connect, join, lat, latRemote, pres := hist.New(), hist.New(), hist.New(), hist.New(), hist.New()
	var mu sync.Mutex
	minSet := func(dst *int64, v int64) {
		if v != 0 && (*dst == 0 || v < *dst) {
			*dst = v
		}
	}
	var sent, delivered, expected, refused uint64
	w.onLoops(func(l *client.Loop, ls *loopState) {
		mu.Lock()
		defer mu.Unlock()
		// Read on the loop, with its histograms: the counts agree exactly.
		sent += ls.sent.Load()
		delivered += ls.delivered.Load()
		expected += ls.expected.Load() - ls.unexpected.Load()
		refused += ls.refused.Load()
		connect.Merge(ls.connect)
		join.Merge(ls.join)
		lat.Merge(ls.lat)
		latRemote.Merge(ls.latRemote)
		pres.Merge(ls.presence)
		minSet(&r.FirstDial, ls.firstDial)
		minSet(&r.FirstJoin, ls.firstJoin)
		minSet(&r.FirstDelivery, ls.firstDelivery)
		r.LastConnect = max(r.LastConnect, ls.lastConnect)
		r.LastJoin = max(r.LastJoin, ls.lastJoin)
		r.LastDelivery = max(r.LastDelivery, ls.lastDelivery)
		r.LastPresence = max(r.LastPresence, ls.lastPresence)
		r.OutOfOrder += ls.outOfOrder
		r.Duplicates += ls.duplicates
		r.Negative += ls.negative
		r.PresenceMsgs += ls.presMsgs
		r.BadMessages += l.BadMessages.Load()
		if w.startAt.Load() != 0 {
			r.BytesInRun += l.BytesIn.Load() - ls.bytesAtStart
		}
		for k, v := range ls.sentByRoom {
			r.SentByRoom[k] += v
		}
		for k, v := range ls.errors {
			r.Errors[k] += v
		}
	})
	if w.api != nil {
		for k, v := range w.api.errorCounts() {
			r.Errors[k] += v
		}
	}
	r.C = *w.counters()
	r.C.Sent, r.C.Delivered, r.C.Expected, r.C.Refused = sent, delivered, expected, refused
	r.Connect, r.Join, r.Latency = connect.Snapshot(), join.Snapshot(), lat.Snapshot()
	r.LatencyRemote, r.PresenceTime = latRemote.Snapshot(), pres.Snapshot()
	r.StopAt = w.stopAt.Load()
	w.seriesMu.Lock()
	r.SeriesSent = append([]uint64(nil), w.seriesSent...)
	r.SeriesDelivered = append([]uint64(nil), w.seriesDelivered...)
	r.SeriesConns = append([]int64(nil), w.seriesConns...)
	r.SeriesEnd = w.seriesEnd
	w.seriesMu.Unlock()
	return r
}

func (w *worker) shutdown() {
	w.phase.Store(phaseClosing)
	select {
	case <-w.stopDialling:
	default:
		close(w.stopDialling)
	}
	if w.api != nil {
		w.api.close()
	}
	if w.pool != nil {
		w.pool.Close()
	}
}

// ---- client.Handler: everything below runs on a loop goroutine ----

func (w *worker) member(c *client.Conn) *member { return &w.members[c.ID-w.lo] }

// OnOpen implements client.Handler. The PondSocket connection is usable
// once the CONNECT message arrives, which OnMessage handles.
func (w *worker) OnOpen(c *client.Conn, _ int64) {
	m := w.member(c)
	m.conn = c
	ls := w.loops[c.Loop().Index]
	if ls.firstDial == 0 || c.DialStart < ls.firstDial {
		ls.firstDial = c.DialStart
	}
}

func (w *worker) release(m *member) {
	if !m.released {
		m.released = true
		<-w.sem
	}
}

func (w *worker) settle(m *member) {
	if !m.settled {
		m.settled = true
		w.settled.Add(1)
	}
}

// OnClose implements client.Handler.
func (w *worker) OnClose(c *client.Conn, err error) {
	m := w.member(c)
	ls := w.loops[c.Loop().Index]
	if w.phase.Load() == phaseClosing {
		return
	}
	if ls.firstDial == 0 || c.DialStart < ls.firstDial {
		ls.firstDial = c.DialStart
	}
	if !m.connected {
		w.failed.Add(1)
		w.release(m)
	} else {
		w.dropped.Add(1)
	}
	w.settle(m)
	w.countError(ls, errorClass(err))
}

func (w *worker) countError(ls *loopState, class string) {
	if _, ok := ls.errors[class]; !ok && len(ls.errors) >= 32 {
		class = "other"
	}
	ls.errors[class]++
}

func errorClass(err error) string {
	if err == nil {
		return "closed"
	}
	s := err.Error()
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}

// OnTick implements client.Handler.
func (w *worker) OnTick(l *client.Loop, now int64) {
	if w.phase.Load() != phaseRun {
		return
	}
	ls := w.loops[l.Index]
	start := w.startAt.Load()
	if now < start {
		return
	}
	switch w.spec.Scenario {
	case "rooms":
		if len(ls.senders) == 0 {
			return
		}
		due := int64(float64(now-start) * w.spec.Rate * float64(len(ls.senders)) / 1e9)
		for ls.paceSent < due {
			m := ls.senders[ls.rr]
			ls.rr = (ls.rr + 1) % len(ls.senders)
			ls.paceSent++
			w.send(ls, m, w.spec.Event)
		}
	case "echo":
		for ls.waitHead < len(ls.waiting) && ls.waiting[ls.waitHead].due <= now {
			m := ls.waiting[ls.waitHead].m
			ls.waiting[ls.waitHead] = pending{}
			ls.waitHead++
			w.send(ls, m, w.spec.EchoEvent)
		}
		if ls.waitHead == len(ls.waiting) {
			ls.waiting, ls.waitHead = ls.waiting[:0], 0
		} else if ls.waitHead > 4096 {
			n := copy(ls.waiting, ls.waiting[ls.waitHead:])
			ls.waiting, ls.waitHead = ls.waiting[:n], 0
		}
	case "presence":
		if ls.joinsDone || w.spec.JoinRate <= 0 {
			return
		}
		share := w.spec.JoinRate / float64(w.spec.Workers*w.spec.Loops)
		due := int(float64(now-start) * share / 1e9)
		for ls.joinNext < len(ls.members) && ls.joinNext < due {
			w.sendJoin(ls, ls.members[ls.joinNext])
			ls.joinNext++
		}
		ls.joinsDone = ls.joinNext >= len(ls.members)
	case "fanout", "cluster", "ceiling":
		if w.pub != nil && w.pool.Loop(w.pub.id).Index == ls.idx {
			w.pumpPublisher(ls)
		}
	}
}

// send queues one measured message from m.
func (w *worker) send(ls *loopState, m *member, ev string) {
	if m.conn == nil || !m.conn.IsOpen() {
		return
	}
	m.seq++
	m.lastSend = time.Now().UnixNano()
	ls.buf = appendEvent(ls.buf[:0], ev, m.channel, m.id, m.seq, w.spec.PayloadSize, m.lastSend)
	m.conn.WriteText(ls.buf)
	ls.sent.Add(1)
	switch w.spec.Scenario {
	case "rooms":
		ls.sentByRoom[m.room]++
		ls.expected.Add(uint64(w.roomMembers[m.room]))
	case "echo":
		ls.expected.Add(1)
	}
}

func (w *worker) pumpPublisher(ls *loopState) {
	p := w.pub
	if w.api != nil {
		return // the API posters publish
	}
	if w.phase.Load() != phaseRun || p == nil || !p.joined || p.conn == nil || !p.conn.IsOpen() {
		return
	}
	allow := w.pubAllow
	if w.spec.paced() {
		// open loop: what is due at Rate since the start, whatever was
		// delivered, so loss and latency at a fixed rate can be measured
		allow = int64(float64(time.Now().UnixNano()-w.startAt.Load()) * w.spec.Rate / 1e9)
	}
	for w.pubSeq < int64(w.spec.Messages) && w.pubSeq < allow {
		w.pubSeq++
		w.send(ls, p, w.spec.Event)
	}
}

func (w *worker) sendJoin(ls *loopState, m *member) {
	if m.conn == nil || !m.conn.IsOpen() || m.joinSent != 0 {
		return
	}
	m.joinSent = time.Now().UnixNano()
	if ls.firstJoin == 0 || m.joinSent < ls.firstJoin {
		ls.firstJoin = m.joinSent
	}
	m.conn.WriteText(w.spec.joinMessage(m.id, m.channel))
}

// OnMessage implements client.Handler.
func (w *worker) OnMessage(c *client.Conn, msg *client.Message, now int64) {
	m := w.member(c)
	ls := w.loops[c.Loop().Index]
	w.messages.Add(1)
	switch string(msg.Action) {
	case "CONNECT":
		if m.connected {
			return
		}
		m.connected = true
		m.conn = c
		w.connected.Add(1)
		ls.connect.Record(now - c.DialStart)
		ls.lastConnect = max(ls.lastConnect, now)
		w.release(m)
		if w.spec.joinsOnConnect() {
			w.sendJoin(ls, m)
		} else {
			w.settle(m)
		}
	case "SYSTEM", "BROADCAST":
		if string(msg.Action) == "SYSTEM" && string(msg.Event) == "ACKNOWLEDGE" {
			if m.joined || m.joinSent == 0 || !isJoinID(msg.RequestID, m.id) {
				return
			}
			m.joined = true
			w.joined.Add(1)
			ls.join.Record(now - m.joinSent)
			ls.lastJoin = max(ls.lastJoin, now)
			w.settle(m)
			return
		}
		if ev := string(msg.Event); ev == w.spec.Event || ev == w.spec.EchoEvent {
			w.onMeasured(ls, m, msg.Payload, now)
		}
	case "PRESENCE":
		ls.presMsgs++
		if w.spec.Scenario != "presence" || m.done || w.expectList == 0 {
			return
		}
		list, ok := client.Field(msg.Payload, "presence")
		if !ok {
			return
		}
		if n, err := client.ArrayLen(list); err == nil && n >= w.expectList {
			m.done = true
			w.presenceDone.Add(1)
			ls.presence.Record(now - w.startAt.Load())
			ls.lastPresence = max(ls.lastPresence, now)
		}
	case "ERROR":
		if !m.joined && m.joinSent != 0 && isJoinID(msg.RequestID, m.id) {
			w.joinFailed.Add(1)
			w.settle(m)
		}
		class := "server ERROR " + string(msg.Event)
		if text, ok := client.Field(msg.Payload, "message"); ok {
			class += ": " + string(trimQuotes(text))
		}
		if code, ok := client.Field(msg.Payload, "code"); ok {
			class += " (" + string(trimQuotes(code)) + ")"
		}
		w.countError(ls, class)
		if isMessageID(msg.RequestID, m.id) {
			w.onRefused(ls, m, now)
		}
	}
}

// isMessageID reports whether rid is the requestId of one of m's measured
// messages ("m<id>.<seq>").
func isMessageID(rid []byte, id int) bool {
	if len(rid) < 2 || rid[0] != 'm' {
		return false
	}
	dot := bytes.IndexByte(rid, '.')
	if dot < 0 {
		return false
	}
	n, err := strconv.Atoi(string(rid[1:dot]))
	return err == nil && n == id
}

func trimQuotes(b []byte) []byte {
	if len(b) >= 2 && b[0] == '"' {
		return b[1 : len(b)-1]
	}
	return b
}

// onRefused accounts for a measured message the server refused (rate
// limit, handler error): it will be delivered to nobody.
func (w *worker) onRefused(ls *loopState, m *member, now int64) {
	ls.refused.Add(1)
	switch w.spec.Scenario {
	case "rooms":
		ls.unexpected.Add(uint64(w.roomMembers[m.room]))
	case "echo":
		ls.unexpected.Add(1)
		w.echoNext(ls, m, now)
	}
}

// echoNext sends m's next request now, or queues it when --rate says it
// is not due yet.
func (w *worker) echoNext(ls *loopState, m *member, now int64) {
	if w.phase.Load() != phaseRun {
		return
	}
	if w.spec.Rate <= 0 {
		w.send(ls, m, w.spec.EchoEvent)
		return
	}
	gap := int64(float64(time.Second) / w.spec.Rate)
	due := m.lastSend + gap
	if due <= now {
		w.send(ls, m, w.spec.EchoEvent)
		return
	}
	ls.waiting = append(ls.waiting, pending{m, due})
}

func isJoinID(rid []byte, id int) bool {
	if len(rid) < 2 || rid[0] != 'j' {
		return false
	}
	n, err := strconv.Atoi(string(rid[1:]))
	return err == nil && n == id
}

func (w *worker) onMeasured(ls *loopState, m *member, payload []byte, now int64) {
	var ts, seq int64 = 0, 0
	src := -1
	_ = client.EachField(payload, func(k, v []byte) error {
		switch string(k) {
		case "ts":
			ts, _ = client.ParseInt(v)
		case "seq":
			seq, _ = client.ParseInt(v)
		case "src":
			s, _ := client.ParseInt(v)
			src = int(s)
		}
		return nil
	})
	if ts == 0 {
		return // not one of ours
	}
	if w.spec.Scenario == "echo" && src != m.id {
		return
	}
	lat := now - ts
	if lat < 0 {
		ls.negative++
		lat = 0
	}
	if w.spec.Scenario == "cluster" && m.target != 0 {
		ls.latRemote.Record(lat)
	} else {
		ls.lat.Record(lat)
	}
	ls.delivered.Add(1)
	if ls.firstDelivery == 0 {
		ls.firstDelivery = now
	}
	ls.lastDelivery = now
	switch w.spec.Scenario {
	case "fanout", "cluster", "ceiling":
		switch {
		case seq == m.lastSeq+1:
		case seq <= m.lastSeq:
			ls.duplicates++
		default:
			ls.outOfOrder++
		}
		m.lastSeq = max(m.lastSeq, seq)
	case "echo":
		w.echoNext(ls, m, now)
	}
}
