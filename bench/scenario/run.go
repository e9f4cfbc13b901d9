package scenario

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pondsocket/pondsocket/bench/client"
	"github.com/pondsocket/pondsocket/bench/hist"
	"github.com/pondsocket/pondsocket/bench/procstat"
	"github.com/pondsocket/pondsocket/bench/report"
)

// Options are how a run is carried out, as opposed to what it measures.
type Options struct {
	// Progress receives a live status line every second (nil = silent).
	Progress io.Writer
	// ServerPid is the server process to sample: > 0 that pid, 0 find
	// the process listening on each target's port, < 0 do not sample.
	ServerPid int
	// MorePids are sampled as part of the server too (a cluster's message
	// bus, say), whatever ServerPid says.
	MorePids []int
	// Exe is the program re-executed for worker processes and the ceiling
	// server; default this executable.
	Exe string
	// Command is recorded in the result.
	Command string
	// CeilingLoops is the ceiling server's event loops (default 2).
	CeilingLoops int
	// SampleEvery is the /proc sampling period (default 200ms).
	SampleEvery time.Duration
}

// Run carries out one scenario and returns its result. Every phase is
// bounded by spec.Timeout; nothing waits forever.
func Run(ctx context.Context, spec Spec, opt Options) (*report.Result, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if spec.RunID == "" {
		var b [3]byte
		_, _ = rand.Read(b[:])
		spec.RunID = "b" + hex.EncodeToString(b[:])
	}
	if opt.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			exe = os.Args[0]
		}
		opt.Exe = exe
	}
	if opt.SampleEvery <= 0 {
		opt.SampleEvery = 200 * time.Millisecond
	}
	if opt.CeilingLoops <= 0 {
		opt.CeilingLoops = 2
	}
	r := &run{spec: spec, opt: opt, ctx: ctx, events: make(chan event, 1<<14)}
	defer r.cleanup()
	return r.execute()
}

type run struct {
	spec Spec
	opt  Options
	ctx  context.Context

	ceiling   *ceilingProc
	serverPid []int
	server    []*procstat.Sampler
	gen       []*procstat.Sampler
	machine   *procstat.Sampler // the whole machine, to see what other processes took

	links   []*link
	events  chan event
	last    []counters
	ready   []*readyInfo
	results []*workerResult
	errs    []string
	exited  int
	stopped int // workers that confirmed stop

	origin, startAt, stopAt, endAt time.Time
	lastAllow                      int64
	progressAt                     time.Time
	progressDelivered              uint64
}

func (r *run) execute() (*report.Result, error) {
	spec := &r.spec
	if spec.Scenario == "ceiling" && len(spec.Targets) == 0 {
		c, err := startCeiling(r.opt.Exe, r.opt.CeilingLoops, spec.CeilingBatch)
		if err != nil {
			return nil, err
		}
		r.ceiling = c
		spec.Targets = []string{"ws://" + c.addr + "/"}
		r.serverPid = []int{c.cmd.Process.Pid}
	}
	if err := r.startSamplers(); err != nil {
		return nil, err
	}
	self, err := procstat.NewSampler(0, r.opt.SampleEvery)
	if err != nil {
		return nil, err
	}
	r.gen = append(r.gen, self)
	if m, err := procstat.NewSampler(procstat.System, r.opt.SampleEvery); err == nil {
		r.machine = m
	}

	// Workers.
	inProcess := spec.Workers == 1
	r.last = make([]counters, spec.Workers)
	r.ready = make([]*readyInfo, spec.Workers)
	r.results = make([]*workerResult, spec.Workers)
	for i := 0; i < spec.Workers; i++ {
		l, err := startLink(i, r.opt.Exe, inProcess, r.events)
		if err != nil {
			return nil, err
		}
		r.links = append(r.links, l)
		if l.pid > 0 {
			if s, err := procstat.NewSampler(l.pid, r.opt.SampleEvery); err == nil {
				r.gen = append(r.gen, s)
			}
		}
	}
	r.origin = time.Now()
	for i, l := range r.links {
		l.send(command{Op: "setup", Spec: spec, Worker: i, At: r.origin.UnixNano()})
	}
	deadline := time.Now().Add(time.Duration(spec.Timeout))
	if err := r.pump(deadline, func() bool { return arrived(r.ready) == len(r.links) }, nil); err != nil {
		return nil, fmt.Errorf("connect phase: %w", err)
	}
	total := r.total()
	if total.Connected == 0 {
		return nil, fmt.Errorf("no connection succeeded (%d failed; first errors: %s)", total.Failed, r.firstErrors())
	}

	// The measured phase.
	start := command{Op: "start", Expect: int(total.Connected)}
	if spec.Scenario == "rooms" {
		start.RoomMembers = map[int]int{}
		for _, ri := range r.ready {
			for k, v := range ri.JoinedByRoom {
				start.RoomMembers[k] += v
			}
		}
	}
	r.startAt = time.Now().Add(20 * time.Millisecond)
	start.At = r.startAt.UnixNano()
	for _, l := range r.links {
		l.send(start)
	}
	deadline = time.Now().Add(time.Duration(spec.Timeout))
	var phaseErr error
	switch spec.Scenario {
	case "conns":
		phaseErr = r.pump(r.startAt.Add(time.Duration(spec.Hold)), func() bool { return false }, nil)
		if errors.Is(phaseErr, errDeadline) {
			phaseErr = nil
		}
	case "fanout", "cluster", "ceiling":
		phaseErr = r.runFanout(deadline)
	case "rooms", "echo":
		phaseErr = r.pump(r.startAt.Add(time.Duration(spec.Duration)), func() bool { return false }, nil)
		if errors.Is(phaseErr, errDeadline) {
			phaseErr = nil
		}
	case "presence":
		phaseErr = r.runPresence(deadline)
	}
	if phaseErr != nil && r.ctx.Err() != nil {
		// Interrupted: still stop, collect and report what was measured,
		// within the bounds below.
		r.ctx = context.Background()
		phaseErr = errInterrupted
	}
	r.stopAt = time.Now()
	for _, l := range r.links {
		l.send(command{Op: "stop"})
	}
	if err := r.pump(time.Now().Add(10*time.Second), func() bool { return r.stopped == len(r.links) }, nil); err != nil {
		return nil, fmt.Errorf("stop: %w", err)
	}
	if phaseErr == nil && (spec.Scenario == "rooms" || spec.Scenario == "echo") {
		phaseErr = r.drain(func() (uint64, uint64) { t := r.total(); return t.Delivered, t.Expected })
	}
	if phaseErr != nil && !errors.Is(phaseErr, errStalled) && !errors.Is(phaseErr, errDeadline) && !errors.Is(phaseErr, errInterrupted) {
		return nil, phaseErr
	}
	r.endAt = time.Now()

	// Collect.
	for _, l := range r.links {
		l.send(command{Op: "collect"})
	}
	if err := r.pump(time.Now().Add(30*time.Second), func() bool { return arrived(r.results) == len(r.links) }, nil); err != nil {
		return nil, fmt.Errorf("collect: %w", err)
	}
	for _, s := range r.samplers() {
		s.Stop()
	}
	res := r.build()
	if phaseErr != nil {
		res.Warnings = append(res.Warnings, "measured phase ended early: "+phaseErr.Error())
	}
	return res, nil
}

var (
	errDeadline    = errors.New("time limit reached")
	errStalled     = errors.New("no progress")
	errInterrupted = errors.New("interrupted")
)

func (r *run) cleanup() {
	for _, l := range r.links {
		l.send(command{Op: "quit"})
	}
	// Keep draining events so no reader blocks while the workers exit.
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-r.events:
			case <-stop:
				return
			}
		}
	}()
	for _, l := range r.links {
		l.wait(15 * time.Second)
	}
	close(stop)
	for _, s := range r.samplers() {
		s.Stop()
	}
	if r.ceiling != nil {
		r.ceiling.stop()
	}
}

func (r *run) samplers() []*procstat.Sampler {
	all := append(append([]*procstat.Sampler(nil), r.server...), r.gen...)
	if r.machine != nil {
		all = append(all, r.machine)
	}
	return all
}

func (r *run) startSamplers() error {
	if r.opt.ServerPid < 0 {
		return r.sampleServers()
	}
	if r.serverPid == nil {
		if r.opt.ServerPid > 0 {
			r.serverPid = []int{r.opt.ServerPid}
		} else {
			seen := map[int]bool{}
			for _, t := range r.spec.Targets {
				tg, err := client.ParseTarget(t)
				if err != nil {
					return err
				}
				_, port, _ := net.SplitHostPort(tg.Addr)
				p, _ := strconv.Atoi(port)
				pid, err := procstat.FindListener(p)
				if err != nil {
					r.errs = append(r.errs, "server not sampled: "+err.Error())
					continue
				}
				if !seen[pid] && pid != os.Getpid() {
					seen[pid] = true
					r.serverPid = append(r.serverPid, pid)
				}
			}
		}
	}
	return r.sampleServers()
}

func (r *run) sampleServers() error {
	for _, pid := range append(append([]int(nil), r.serverPid...), r.opt.MorePids...) {
		s, err := procstat.NewSampler(pid, r.opt.SampleEvery)
		if err != nil {
			r.errs = append(r.errs, "server not sampled: "+err.Error())
			continue
		}
		r.server = append(r.server, s)
	}
	return nil
}

// arrived counts the workers that have sent their message: a worker's
// slot stays nil until then.
func arrived[T any](slots []*T) int {
	n := 0
	for _, x := range slots {
		if x != nil {
			n++
		}
	}
	return n
}

func (r *run) total() counters {
	var t counters
	for _, c := range r.last {
		t.Dialed += c.Dialed
		t.Connected += c.Connected
		t.Failed += c.Failed
		t.Joined += c.Joined
		t.JoinFailed += c.JoinFailed
		t.Dropped += c.Dropped
		t.Sent += c.Sent
		t.Delivered += c.Delivered
		t.Expected += c.Expected
		t.Refused += c.Refused
		t.PresenceDone += c.PresenceDone
		t.BytesIn += c.BytesIn
		t.Messages += c.Messages
	}
	return t
}

func (r *run) firstErrors() string {
	if len(r.errs) == 0 {
		return "none reported"
	}
	return strings.Join(r.errs[:min(3, len(r.errs))], "; ")
}

// handle applies one worker event.
func (r *run) handle(ev event) error {
	switch ev.Ev {
	case "progress":
		r.last[ev.worker] = *ev.C
		if r.spec.fanoutLike() && !r.startAt.IsZero() && r.stopAt.IsZero() {
			r.credit()
		}
	case "ready":
		r.last[ev.worker] = *ev.C
		r.ready[ev.worker] = ev.Ready
	case "stopped":
		r.last[ev.worker] = *ev.C
		r.stopped++
	case "result":
		r.results[ev.worker] = ev.Result
		r.last[ev.worker] = ev.Result.C
	case "error":
		r.errs = append(r.errs, fmt.Sprintf("worker %d: %s", ev.worker, ev.Err))
		if arrived(r.ready) < len(r.links) && r.startAt.IsZero() {
			return fmt.Errorf("worker %d: %s", ev.worker, ev.Err)
		}
	case "exit":
		r.exited++
		if r.results[ev.worker] == nil {
			return fmt.Errorf("worker %d exited early", ev.worker)
		}
	}
	return nil
}

// credit lets the publisher run W messages ahead of the slowest possible
// accounting: allowed = messages delivered to every member on average + W.
func (r *run) credit() {
	t := r.total()
	members := t.Joined - t.Dropped
	if members <= 0 {
		return
	}
	// A refused message is delivered to nobody; it must not hold a slot.
	allow := int64(t.Delivered)/members + int64(t.Refused) + int64(r.spec.InFlight)
	if allow > r.lastAllow {
		r.lastAllow = allow
		r.links[0].send(command{Op: "credit", Allow: allow})
	}
}

// pump processes events until done() holds, the deadline passes, the
// context ends or a worker fails. every, if set, runs every 50ms and may
// end the pump with an error.
func (r *run) pump(deadline time.Time, done func() bool, every func() error) error {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		select {
		case ev := <-r.events:
			if err := r.handle(ev); err != nil {
				return err
			}
		case <-tick.C:
			if time.Since(r.progressAt) >= time.Second {
				r.printProgress()
			}
			if every != nil {
				if err := every(); err != nil {
					return err
				}
			}
		case <-timer.C:
			return errDeadline
		case <-r.ctx.Done():
			return r.ctx.Err()
		}
	}
	return nil
}

func (r *run) runFanout(deadline time.Time) error {
	r.credit()
	var lastDelivered uint64
	lastChange := time.Now()
	grace := time.Duration(r.spec.Grace)
	return r.pump(deadline, func() bool {
		t := r.total()
		members := uint64(t.Joined - t.Dropped)
		return t.Sent >= uint64(r.spec.Messages) && t.Delivered >= members*(t.Sent-t.Refused)
	}, func() error {
		t := r.total()
		if t.Delivered != lastDelivered {
			lastDelivered, lastChange = t.Delivered, time.Now()
		} else if time.Since(lastChange) > grace {
			return fmt.Errorf("%w for %v: %d of %d messages sent, %d delivered", errStalled, grace, t.Sent, r.spec.Messages, t.Delivered)
		}
		return nil
	})
}

func (r *run) runPresence(deadline time.Time) error {
	var lastBytes uint64
	lastChange := time.Now()
	grace := time.Duration(r.spec.Grace)
	return r.pump(deadline, func() bool {
		t := r.total()
		settled := t.Joined+t.JoinFailed+t.Dropped >= t.Connected
		return settled && t.PresenceDone >= t.Joined
	}, func() error {
		t := r.total()
		if t.BytesIn != lastBytes {
			lastBytes, lastChange = t.BytesIn, time.Now()
		} else if time.Since(lastChange) > grace {
			return fmt.Errorf("%w for %v: %d of %d clients saw the full list", errStalled, grace, t.PresenceDone, t.Joined)
		}
		return nil
	})
}

// drain waits after stop until every expected delivery arrived or nothing
// arrived for Grace.
func (r *run) drain(progress func() (got, want uint64)) error {
	var last uint64
	lastChange := time.Now()
	grace := time.Duration(r.spec.Grace)
	err := r.pump(time.Now().Add(time.Duration(r.spec.Timeout)), func() bool {
		got, want := progress()
		return got >= want
	}, func() error {
		got, _ := progress()
		if got != last {
			last, lastChange = got, time.Now()
		} else if time.Since(lastChange) > grace {
			return errStalled
		}
		return nil
	})
	if errors.Is(err, errStalled) {
		return nil // the counts say what is missing
	}
	return err
}

func (r *run) printProgress() {
	now := time.Now()
	t := r.total()
	rate := 0.0
	if !r.progressAt.IsZero() {
		rate = float64(t.Delivered-r.progressDelivered) / now.Sub(r.progressAt).Seconds()
	}
	r.progressAt, r.progressDelivered = now, t.Delivered
	if r.opt.Progress == nil {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[%6.1fs] %s conns %d/%d", now.Sub(r.origin).Seconds(), r.spec.Scenario, t.Connected-t.Dropped, r.spec.Conns)
	if t.Failed > 0 || t.Dropped > 0 {
		fmt.Fprintf(&b, " (failed %d, dropped %d)", t.Failed, t.Dropped)
	}
	if r.spec.joinsOnConnect() {
		fmt.Fprintf(&b, " joined %d", t.Joined)
	}
	if t.Sent > 0 || t.Delivered > 0 {
		fmt.Fprintf(&b, " | sent %d delivered %d (%s msg/s)", t.Sent, t.Delivered, si(rate))
	}
	if r.spec.Scenario == "presence" && !r.startAt.IsZero() {
		fmt.Fprintf(&b, " | joined %d full-list %d", t.Joined, t.PresenceDone)
	}
	from := now.Add(-time.Second)
	gen := 0.0
	for _, s := range r.gen {
		gen += procstat.CPUBetween(s.Samples(), from, now)
	}
	fmt.Fprintf(&b, " | generator CPU %.0f%%", gen)
	if len(r.server) > 0 {
		cpu, rss := 0.0, int64(0)
		for _, s := range r.server {
			sm := s.Samples()
			cpu += procstat.CPUBetween(sm, from, now)
			rss += procstat.RSSAt(sm, now)
		}
		fmt.Fprintf(&b, " | server CPU %.0f%% RSS %s", cpu, bytesIEC(rss))
	}
	fmt.Fprintln(r.opt.Progress, b.String())
}

// build merges the workers' results into the report.
func (r *run) build() *report.Result {
	spec := r.spec
	res := &report.Result{
		Scenario:  spec.Scenario,
		Label:     Label(spec),
		StartedAt: r.origin.UTC(),
		Command:   r.opt.Command,
		Machine:   report.ThisMachine(),
		Targets:   spec.Targets,
		Params:    params(spec),
		Workers:   spec.Workers,
		Loops:     spec.Loops,
	}
	connect, join, lat, latRemote, pres := hist.New(), hist.New(), hist.New(), hist.New(), hist.New()
	var (
		firstDial, lastConnect, firstJoin, lastJoin, lastDelivery, lastPresence int64
		outOfOrder, dups, negative, bad, presMsgs, bytesRun                     uint64
	)
	errs := map[string]int{}
	for _, w := range r.results {
		for _, p := range []struct {
			dst *hist.Histogram
			s   hist.Snapshot
		}{{connect, w.Connect}, {join, w.Join}, {lat, w.Latency}, {latRemote, w.LatencyRemote}, {pres, w.PresenceTime}} {
			h, err := hist.FromSnapshot(p.s)
			if err != nil {
				res.Warnings = append(res.Warnings, "bad histogram from a worker: "+err.Error())
				continue
			}
			p.dst.Merge(h)
		}
		if w.FirstDial != 0 && (firstDial == 0 || w.FirstDial < firstDial) {
			firstDial = w.FirstDial
		}
		if w.FirstJoin != 0 && (firstJoin == 0 || w.FirstJoin < firstJoin) {
			firstJoin = w.FirstJoin
		}
		lastConnect = max(lastConnect, w.LastConnect)
		lastJoin = max(lastJoin, w.LastJoin)
		lastDelivery = max(lastDelivery, w.LastDelivery)
		lastPresence = max(lastPresence, w.LastPresence)
		outOfOrder += w.OutOfOrder
		dups += w.Duplicates
		negative += w.Negative
		bad += w.BadMessages
		presMsgs += w.PresenceMsgs
		bytesRun += w.BytesInRun
		for k, v := range w.Errors {
			errs[k] += v
		}
	}
	t := r.total()
	secs := func(a, b int64) float64 {
		if a == 0 || b == 0 || b < a {
			return 0
		}
		return float64(b-a) / 1e9
	}
	res.Conns = report.ConnStats{
		Requested:        spec.Conns,
		Opened:           t.Connected,
		Failed:           t.Failed,
		Joined:           t.Joined,
		JoinFailed:       t.JoinFailed,
		Dropped:          t.Dropped,
		ConnectSeconds:   secs(firstDial, lastConnect),
		JoinSeconds:      secs(firstJoin, lastJoin),
		AllJoinedSeconds: secs(firstDial, lastJoin),
		ConnectLatency:   connect.Summarize(),
		JoinLatency:      join.Summarize(),
		Errors:           errs,
	}
	if res.Conns.ConnectSeconds > 0 {
		res.Conns.ConnectPerSec = float64(t.Connected) / res.Conns.ConnectSeconds
	}
	start := r.startAt.UnixNano()
	switch spec.Scenario {
	case "fanout", "cluster", "ceiling", "rooms", "echo":
		members := uint64(t.Joined)
		expected := t.Expected
		if spec.fanoutLike() {
			expected = members * (t.Sent - t.Refused)
		}
		tr := &report.Traffic{
			Sent:            t.Sent,
			Refused:         t.Refused,
			Expected:        expected,
			Delivered:       t.Delivered,
			OutOfOrder:      outOfOrder,
			Duplicates:      dups,
			NegativeLatency: negative,
			Seconds:         secs(start, lastDelivery),
			BytesIn:         bytesRun,
		}
		if expected > t.Delivered {
			tr.Missing = expected - t.Delivered
		}
		if tr.Seconds > 0 {
			tr.SentPerSec = float64(t.Sent) / tr.Seconds
			tr.DeliveredPerSec = float64(t.Delivered) / tr.Seconds
		}
		res.Traffic = tr
		res.Latency = report.NewLatency(lat)
		if spec.Scenario == "cluster" {
			res.LatencyRemote = report.NewLatency(latRemote)
		}
	case "presence":
		res.Presence = &report.Presence{
			Members:          t.Joined,
			Complete:         t.PresenceDone,
			Seconds:          secs(start, lastPresence),
			TimeToFull:       pres.Summarize(),
			PresenceMessages: presMsgs,
			BytesIn:          bytesRun,
		}
		if t.Joined > 0 {
			res.Presence.BytesPerClient = float64(bytesRun) / float64(t.Joined)
		}
		res.Latency = report.NewLatency(pres)
	}

	// Resources over the measured window (the connect phase for conns).
	winFrom, winTo := r.startAt, r.stopAt
	if spec.Scenario == "conns" {
		winFrom, winTo = r.origin, time.Unix(0, max(lastJoin, lastConnect))
		if !winTo.After(winFrom) {
			winTo = r.stopAt
		}
	} else if lastDelivery > 0 && time.Unix(0, lastDelivery).After(winTo) {
		winTo = time.Unix(0, lastDelivery)
	} else if spec.Scenario == "presence" && lastPresence > 0 {
		winTo = time.Unix(0, lastPresence)
	}
	if len(r.server) > 0 {
		res.Server = resources(r.server, winFrom, winTo, r.origin, r.stopAt)
		if spec.Scenario == "conns" && t.Connected > 0 {
			res.Server.RSSPerConnBytes = float64(res.Server.RSSAfterBytes-res.Server.RSSBeforeBytes) / float64(t.Connected)
		}
	}
	res.Generator = *resources(r.gen, winFrom, winTo, r.origin, r.stopAt)
	if r.machine != nil {
		sm := r.machine.Samples()
		busy := procstat.CPUBetween(sm, winFrom, winTo)
		soft := procstat.CPUBetween(procstat.SoftirqSamples(sm), winFrom, winTo)
		others := busy - soft - res.Generator.CPUAvgPercent
		if res.Server != nil {
			others -= res.Server.CPUAvgPercent
		}
		res.MachineCPUPercent, res.SoftirqCPUPercent, res.OtherCPUPercent = busy, soft, max(0, others)
		res.StealCPUPercent = procstat.CPUBetween(procstat.StealSamples(sm), winFrom, winTo)
	}
	res.Series = r.series()
	res.MeasureFrom, res.MeasureTo = winFrom.Sub(r.origin).Seconds(), winTo.Sub(r.origin).Seconds()
	// The generator's peak is the peak of the summed series inside the window.
	for _, p := range res.Series {
		at := r.origin.Add(time.Duration(p.T * float64(time.Second)))
		if !at.Before(winFrom) && !at.After(winTo.Add(time.Duration(spec.Interval))) {
			res.Generator.CPUPeakPercent = max(res.Generator.CPUPeakPercent, p.GenCPU)
			if res.Server != nil {
				res.Server.CPUPeakPercent = max(res.Server.CPUPeakPercent, p.ServerCPU)
			}
		}
	}
	// A window shorter than an interval has no bucket inside it: the peak is
	// then at least the average.
	res.Generator.CPUPeakPercent = max(res.Generator.CPUPeakPercent, res.Generator.CPUAvgPercent)
	if res.Server != nil {
		res.Server.CPUPeakPercent = max(res.Server.CPUPeakPercent, res.Server.CPUAvgPercent)
	}
	figures(res, spec)
	res.Warnings = append(res.Warnings, r.warnings(res, bad)...)
	res.Notes = append(res.Notes,
		"CPU is in percent of one core; this machine has "+strconv.Itoa(res.Machine.Cores)+" and the generator shares them with the server.",
		fmt.Sprintf("Measured window: %.2fs to %.2fs after the first dial.", winFrom.Sub(r.origin).Seconds(), winTo.Sub(r.origin).Seconds()))
	return res
}

// resources summarises a set of samplers (summing processes) over [from, to];
// RSS before is at origin, after at end.
func resources(ss []*procstat.Sampler, from, to, origin, end time.Time) *report.Resources {
	out := &report.Resources{}
	for _, s := range ss {
		pid := s.Pid()
		if pid == 0 {
			pid = os.Getpid()
		}
		out.Pids = append(out.Pids, pid)
		sm := s.Samples()
		out.CPUAvgPercent += procstat.CPUBetween(sm, from, to)
		out.RSSBeforeBytes += procstat.RSSAt(sm, origin)
		out.RSSAfterBytes += procstat.RSSAt(sm, end)
		peak := int64(0)
		for _, x := range sm {
			peak = max(peak, x.RSS)
		}
		out.RSSPeakBytes += peak
	}
	return out
}

// series merges the workers' cumulative counters and the samplers into one
// time series from the origin. Each worker's last point closes a partial
// interval at SeriesEnd.
func (r *run) series() []report.Point {
	iv := time.Duration(r.spec.Interval)
	full := 0 // interval edges every worker may have: origin + k*iv
	var end int64
	for _, w := range r.results {
		full = max(full, len(w.SeriesDelivered)-1)
		end = max(end, w.SeriesEnd)
	}
	if full < 1 {
		return nil
	}
	// value of a cumulative series at edge k; k == full means the final point
	at := func(a []uint64, k int) uint64 {
		if len(a) == 0 {
			return 0
		}
		if k >= len(a)-1 {
			return a[len(a)-1]
		}
		return a[k]
	}
	edge := func(k int) time.Time {
		if k == full && end > 0 {
			return time.Unix(0, end)
		}
		return r.origin.Add(time.Duration(k) * iv)
	}
	var out []report.Point
	for k := 0; k < full; k++ {
		a, b := edge(k), edge(k+1)
		span := b.Sub(a).Seconds()
		if span < iv.Seconds()/10 {
			continue // a final sliver: its rate would be noise
		}
		var s0, s1, d0, d1 uint64
		var conns int64
		for _, w := range r.results {
			s0 += at(w.SeriesSent, k)
			s1 += at(w.SeriesSent, k+1)
			d0 += at(w.SeriesDelivered, k)
			d1 += at(w.SeriesDelivered, k+1)
			if n := len(w.SeriesConns); n > 0 {
				conns += w.SeriesConns[min(k+1, n-1)]
			}
		}
		p := report.Point{
			T:         b.Sub(r.origin).Seconds(),
			Sent:      float64(s1-s0) / span,
			Delivered: float64(d1-d0) / span,
			Conns:     conns,
		}
		for _, s := range r.server {
			sm := s.Samples()
			p.ServerCPU += procstat.CPUBetween(sm, a, b)
			p.ServerRSS += procstat.RSSAt(sm, b)
		}
		for _, s := range r.gen {
			p.GenCPU += procstat.CPUBetween(s.Samples(), a, b)
		}
		if r.machine != nil {
			sm := r.machine.Samples()
			p.SoftirqCPU = procstat.CPUBetween(procstat.SoftirqSamples(sm), a, b)
			p.OtherCPU = max(0, procstat.CPUBetween(sm, a, b)-p.SoftirqCPU-p.GenCPU-p.ServerCPU)
		}
		out = append(out, p)
	}
	return out
}

func (r *run) warnings(res *report.Result, bad uint64) []string {
	var w []string
	w = append(w, r.errs...)
	c := res.Conns
	if c.Failed > 0 {
		w = append(w, fmt.Sprintf("%d of %d connections failed", c.Failed, c.Requested))
	}
	if c.JoinFailed > 0 {
		w = append(w, fmt.Sprintf("%d joins were refused", c.JoinFailed))
	}
	if c.Dropped > 0 {
		w = append(w, fmt.Sprintf("%d connections were closed during the run", c.Dropped))
	}
	if tr := res.Traffic; tr != nil {
		if tr.Missing > 0 {
			w = append(w, fmt.Sprintf("%d of %d expected deliveries did not arrive", tr.Missing, tr.Expected))
		}
		if tr.Refused > 0 {
			w = append(w, fmt.Sprintf("the server refused %d measured messages with an ERROR (see conns.errors; e.g. its per-connection rate limit)", tr.Refused))
		}
		if tr.NegativeLatency > 0 {
			w = append(w, fmt.Sprintf("%d deliveries had a timestamp in the future (clock problem)", tr.NegativeLatency))
		}
		if tr.OutOfOrder > 0 || tr.Duplicates > 0 {
			w = append(w, fmt.Sprintf("%d deliveries out of order (gaps), %d duplicates", tr.OutOfOrder, tr.Duplicates))
		}
	}
	if p := res.Presence; p != nil && p.Complete < p.Members {
		w = append(w, fmt.Sprintf("only %d of %d clients saw the full presence list", p.Complete, p.Members))
	}
	var serverErrs []string
	for k, v := range c.Errors {
		if strings.HasPrefix(k, "server ERROR") {
			serverErrs = append(serverErrs, fmt.Sprintf("%d× %s", v, k))
		}
	}
	sort.Strings(serverErrs)
	if len(serverErrs) > 0 {
		w = append(w, "server errors received: "+strings.Join(serverErrs, "; "))
	}
	if bad > 0 {
		w = append(w, fmt.Sprintf("%d server messages were not valid JSON lines", bad))
	}
	// One event loop is one core at most: a generator near its loops'
	// capacity (or the machine's) measures itself, not the server.
	capacity := float64(min(r.spec.Workers*r.spec.Loops, res.Machine.Cores)) * 100
	if res.Generator.CPUAvgPercent > 0.8*capacity {
		w = append(w, fmt.Sprintf("generator CPU %.0f%% is above 80%% of what its %d loops can use: it may be the bottleneck", res.Generator.CPUAvgPercent, r.spec.Workers*r.spec.Loops))
	}
	if res.Server != nil {
		used := res.Generator.CPUAvgPercent + res.Server.CPUAvgPercent + res.SoftirqCPUPercent
		if used > 0.9*float64(res.Machine.Cores)*100 {
			w = append(w, fmt.Sprintf("server, generator and soft interrupts together used %.0f%% of %d cores: the machine is saturated, figures are a floor",
				used, res.Machine.Cores))
		}
	}
	if res.StealCPUPercent > 10 {
		w = append(w, fmt.Sprintf("the hypervisor took %.0f%% of a core from this virtual machine (steal) during the measured window", res.StealCPUPercent))
	}
	if res.OtherCPUPercent > 20 {
		w = append(w, fmt.Sprintf("other processes used %.0f%% CPU (besides server, generator and soft interrupts) during the measured window: the figures are disturbed", res.OtherCPUPercent))
	}
	if len(r.server) == 0 && r.opt.ServerPid >= 0 {
		w = append(w, "server resources not sampled (pass --server-pid)")
	}
	sort.Strings(w[len(r.errs):])
	return w
}

// Label names a run by its scenario and defining parameters.
func Label(s Spec) string {
	var b strings.Builder
	b.WriteString(s.Scenario)
	fmt.Fprintf(&b, " n=%d", s.Conns)
	switch s.Scenario {
	case "conns":
		fmt.Fprintf(&b, " rooms=%d", s.Rooms)
		if s.Presence {
			b.WriteString(" presence")
		}
	case "fanout", "ceiling", "cluster":
		if s.Scenario == "ceiling" && s.CeilingBatch {
			b.WriteString(" batched")
		}
		if s.paced() {
			fmt.Fprintf(&b, " m=%d rate=%g/s", s.Messages, s.Rate)
		} else {
			fmt.Fprintf(&b, " m=%d w=%d", s.Messages, s.InFlight)
		}
		if s.Scenario == "cluster" {
			fmt.Fprintf(&b, " nodes=%d", len(s.Targets))
			if s.SenderAlone {
				b.WriteString(" sender-alone")
			}
		}
	case "rooms":
		fmt.Fprintf(&b, " k=%d rate=%g/s", s.RoomSize, s.Rate)
	case "echo":
		fmt.Fprintf(&b, " depth=%d", s.Depth)
	}
	if s.Scenario != "conns" && s.Scenario != "presence" {
		fmt.Fprintf(&b, " payload=%dB", s.PayloadSize)
	}
	if s.Transport != "" && s.Transport != "ws" {
		fmt.Fprintf(&b, " transport=%s", s.Transport)
	}
	if s.Publish == "api" {
		b.WriteString(" publish=api")
		if s.APIConns > 1 {
			fmt.Fprintf(&b, " api-conns=%d", s.APIConns)
		}
	}
	if len(s.Queries) > 0 {
		fmt.Fprintf(&b, " queries=%d", len(s.Queries))
	}
	if s.Tag != "" {
		fmt.Fprintf(&b, " [%s]", s.Tag)
	}
	return b.String()
}

func params(s Spec) map[string]any {
	m := map[string]any{
		"conns": s.Conns, "channel": s.Channel, "payload_size": s.PayloadSize,
		"workers": s.Workers, "loops": s.Loops, "connect_concurrency": s.ConnectConcurrency,
		"run_id": s.RunID, "transport": s.Transport,
	}
	switch s.Scenario {
	case "conns":
		m["rooms"], m["presence"], m["hold"] = s.Rooms, s.Presence, time.Duration(s.Hold).String()
	case "fanout", "ceiling", "cluster":
		m["messages"], m["in_flight"], m["event"] = s.Messages, s.InFlight, s.Event
		if s.paced() {
			m["rate"] = s.Rate
		}
		if s.SenderAlone {
			m["sender_alone"] = true
		}
		if s.Scenario == "ceiling" {
			m["ceiling_batch"] = s.CeilingBatch
		}
	case "rooms":
		m["room_size"], m["rate"], m["duration"], m["event"] = s.RoomSize, s.Rate, time.Duration(s.Duration).String(), s.Event
	case "echo":
		m["depth"], m["rooms"], m["duration"], m["event"] = s.Depth, s.Rooms, time.Duration(s.Duration).String(), s.EchoEvent
	case "presence":
		m["join_rate"] = s.JoinRate
	}
	if s.ConnectRate > 0 {
		m["connect_rate"] = s.ConnectRate
	}
	if s.Publish == "api" {
		m["publish"], m["api_conns"] = s.Publish, s.APIConns
	}
	if len(s.Queries) > 0 {
		m["query_lines"] = len(s.Queries)
	}
	if s.LocalIPs > 0 {
		m["local_ips"] = s.LocalIPs
	}
	return m
}

func figures(res *report.Result, s Spec) {
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	if s.Scenario == "conns" {
		res.Add("connections", float64(res.Conns.Opened), "")
		res.Add("connect rate", res.Conns.ConnectPerSec, "conn/s")
		res.Add("time to all joined", res.Conns.AllJoinedSeconds, "s")
		res.Add("connect p50", ms(res.Conns.ConnectLatency.P50), "ms")
		res.Add("connect p99", ms(res.Conns.ConnectLatency.P99), "ms")
		res.Add("join p99", ms(res.Conns.JoinLatency.P99), "ms")
		if res.Server != nil {
			res.Add("server RSS", float64(res.Server.RSSAfterBytes)/(1<<20), "MiB")
			res.Add("server RSS per conn", res.Server.RSSPerConnBytes/1024, "KiB")
			res.Add("server CPU", res.Server.CPUAvgPercent, "%")
		}
	}
	if tr := res.Traffic; tr != nil {
		name := "deliveries/s"
		if s.Scenario == "echo" {
			name = "round trips/s"
		}
		res.Add(name, tr.DeliveredPerSec, "msg/s")
		if s.Scenario == "rooms" {
			res.Add("sent/s", tr.SentPerSec, "msg/s")
		}
		res.Add("missing", float64(tr.Missing), "")
	}
	if l := res.Latency; l != nil && res.Traffic != nil {
		res.Add("latency p50", ms(l.P50), "ms")
		res.Add("latency p99", ms(l.P99), "ms")
		res.Add("latency p99.9", ms(l.P999), "ms")
		res.Add("latency max", ms(l.Max), "ms")
	}
	if l := res.LatencyRemote; l != nil && l.Count > 0 {
		res.Add("remote latency p50", ms(l.P50), "ms")
		res.Add("remote latency p99", ms(l.P99), "ms")
		res.Add("hop p50", ms(l.P50-res.Latency.P50), "ms")
		res.Add("hop p99", ms(l.P99-res.Latency.P99), "ms")
	}
	if p := res.Presence; p != nil {
		res.Add("time to full list", p.Seconds*1000, "ms")
		res.Add("full list p99", ms(p.TimeToFull.P99), "ms")
		res.Add("bytes received", float64(p.BytesIn)/(1<<20), "MiB")
		res.Add("bytes per client", p.BytesPerClient/1024, "KiB")
		res.Add("presence messages", float64(p.PresenceMessages), "")
	}
	if res.Server != nil && s.Scenario != "conns" {
		res.Add("server CPU", res.Server.CPUAvgPercent, "%")
		res.Add("server RSS", float64(res.Server.RSSPeakBytes)/(1<<20), "MiB")
	}
	res.Add("generator CPU", res.Generator.CPUAvgPercent, "%")
	if res.MachineCPUPercent > 0 {
		res.Add("softirq CPU", res.SoftirqCPUPercent, "%")
		res.Add("other processes CPU", res.OtherCPUPercent, "%")
		res.Add("steal CPU", res.StealCPUPercent, "%")
	}
}

func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func bytesIEC(b int64) string {
	switch {
	case b >= 1<<30:
		return fmt.Sprintf("%.2fGiB", float64(b)/(1<<30))
	case b >= 1<<20:
		return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20))
	default:
		return fmt.Sprintf("%dKiB", b>>10)
	}
}
