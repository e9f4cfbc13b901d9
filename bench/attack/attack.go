//go:build linux

package attack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/pondsocket/pondsocket/bench/client"
	"github.com/pondsocket/pondsocket/bench/procstat"
)

// Config is what an attack does. Each attack reads the fields it needs;
// Defaults(name) fills them with the sizes of issue 10.
type Config struct {
	Attack  string `json:"attack"`
	Target  string `json:"target"`  // ws://host:port/path of the PondSocket endpoint
	Channel string `json:"channel"` // channel pattern; ":param" is replaced by a room name

	Conns       int           `json:"conns,omitempty"`       // connections the attack opens
	Concurrency int           `json:"concurrency,omitempty"` // connburst, capblind: dials in progress at once
	Listeners   int           `json:"listeners,omitempty"`   // bigpresence: honest members; presencespam: listeners
	Count       int           `json:"count,omitempty"`       // channels, messages, calls, updates, requests (per attack)
	Size        int           `json:"size,omitempty"`        // bytes of a name, presence field, message or status
	Bytes       int64         `json:"bytes,omitempty"`       // pingflood: bytes of pings to send
	Rate        float64       `json:"rate,omitempty"`        // presencespam: updates per second, 0 = as fast as possible
	Event       string        `json:"event,omitempty"`       // the event the attack sends
	HandlerMS   int           `json:"handler_ms,omitempty"`  // mailbox, slowhandlers: "ms" asked of the slow event
	Hold        time.Duration `json:"hold,omitempty"`        // connburst, capblind: keep the connections this long
	Duration    time.Duration `json:"duration"`              // bound on the attack phase
	After       time.Duration `json:"after"`                 // read the server this long after the attack
	DialTimeout time.Duration `json:"dial_timeout"`

	BystanderEvent string        `json:"bystander_event"` // answered to the sender only
	BystanderEvery time.Duration `json:"bystander_every"`
	SampleEvery    time.Duration `json:"sample_every"`

	// ServerPid is the process to sample: > 0 that pid, 0 the process
	// listening on the target's port, < 0 none.
	ServerPid int `json:"server_pid"`
}

// attackFunc carries out one attack and fills r.
type attackFunc func(ctx context.Context, e *env, r *Report) error

type def struct {
	desc string
	run  attackFunc
	cfg  func(*Config)
}

var registry = map[string]def{}

// Names lists the attacks in the order of issue 10.
var Names = []string{"connburst", "pingflood", "longnames", "bigpresence", "mailbox", "slowhandlers", "leak", "capblind", "presencespam", "badupgrade"}

// Description is the one-line help of an attack.
func Description(name string) string { return registry[name].desc }

// Defaults returns the configuration of an attack with its default sizes.
func Defaults(name string) Config {
	c := Config{
		Attack:         name,
		Target:         "ws://127.0.0.1:8080/api/socket",
		Channel:        "/chat/:roomId",
		Concurrency:    64,
		Duration:       10 * time.Second,
		After:          30 * time.Second,
		DialTimeout:    5 * time.Second,
		BystanderEvent: "echo",
		BystanderEvery: 50 * time.Millisecond,
		SampleEvery:    250 * time.Millisecond,
	}
	if d, ok := registry[name]; ok && d.cfg != nil {
		d.cfg(&c)
	}
	return c
}

// env is what an attack works with.
type env struct {
	cfg    Config
	target *client.Target
	probe  *prober
	runID  string
}

// room is the channel name of a room of this run.
func (e *env) room(name string) string {
	room := e.runID + "-" + name
	ch := e.cfg.Channel
	if i := strings.Index(ch, ":"); i >= 0 {
		j := strings.IndexByte(ch[i:], '/')
		if j < 0 {
			return ch[:i] + room
		}
		return ch[:i] + room + ch[i+j:]
	}
	return strings.TrimSuffix(ch, "/") + "/" + room
}

// dial opens a PondSocket connection and waits for CONNECT.
func (e *env) dial(ctx context.Context, username string) (*Conn, error) {
	q := map[string][]string{}
	if username != "" {
		q["username"] = []string{username}
	}
	c, err := dialWS(ctx, e.target, q, e.cfg.DialTimeout)
	if err != nil {
		return nil, err
	}
	if err := c.waitConnect(time.Now().Add(e.cfg.DialTimeout)); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Run carries out one attack: a bystander starts, the server is read, the
// attack runs (bounded by cfg.Duration plus a margin for closing), the
// bystander stops, and the server is read again cfg.After later. Progress,
// when not nil, gets a line per phase.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Report, error) {
	d, ok := registry[cfg.Attack]
	if !ok {
		return nil, fmt.Errorf("unknown attack %q", cfg.Attack)
	}
	if progress == nil {
		progress = io.Discard
	}
	t, err := client.ParseTarget(cfg.Target)
	if err != nil {
		return nil, err
	}
	pid := cfg.ServerPid
	if pid == 0 {
		_, port, _ := net.SplitHostPort(t.Addr)
		p, _ := strconv.Atoi(port)
		if pid, err = procstat.FindListener(p); err != nil {
			return nil, fmt.Errorf("%w (give --server-pid, or -1 not to sample)", err)
		}
	}
	var rb [3]byte
	_, _ = rand.Read(rb[:])
	e := &env{cfg: cfg, target: t, probe: newProber(pid, "http://"+t.Addr), runID: "atk" + hex.EncodeToString(rb[:])}
	r := &Report{Attack: cfg.Attack, Config: cfg, Started: time.Now(), Counts: map[string]int64{}}
	r.Server.Pid = pid

	by := &bystander{target: t, channel: e.room("bystander"), event: cfg.BystanderEvent, every: cfg.BystanderEvery, timeout: 10 * time.Second}
	bc, err := by.connect(ctx)
	if err != nil {
		return nil, fmt.Errorf("the bystander cannot connect before the attack: %w", err)
	}
	r.Server.Before = e.probe.read(ctx)
	fmt.Fprintf(progress, "%s: before: %s\n", cfg.Attack, r.Server.Before)

	stopBy := make(chan struct{})
	byDone := make(chan struct{})
	go func() { defer close(byDone); by.run(ctx, bc, stopBy) }()
	sctx, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() { defer close(sampled); e.probe.sampleUntil(sctx, cfg.SampleEvery) }()

	actx, cancel := context.WithTimeout(ctx, cfg.Duration+cfg.Hold+15*time.Second)
	start := time.Now()
	aerr := d.run(actx, e, r)
	cancel()
	r.Seconds = time.Since(start).Seconds()
	// A quick attack still gets a few bystander samples.
	for wait := time.Now().Add(2 * time.Second); by.sent() < 3 && time.Now().Before(wait) && ctx.Err() == nil; {
		time.Sleep(10 * time.Millisecond)
	}
	close(stopBy)
	<-byDone
	stopSampling()
	<-sampled
	r.Bystander = by.result()
	r.Server.Peak = e.probe.peak()
	r.Server.Peak.RSSBytes = max(r.Server.Peak.RSSBytes, r.Server.Before.RSSBytes)
	r.Server.Peak.Goroutines = max(r.Server.Peak.Goroutines, r.Server.Before.Goroutines)
	r.Server.Peak.FDs = max(r.Server.Peak.FDs, r.Server.Before.FDs)
	if aerr != nil {
		r.Errors = append(r.Errors, aerr.Error())
		if errors.Is(aerr, context.Canceled) && ctx.Err() != nil {
			return r, ctx.Err()
		}
	}
	fmt.Fprintf(progress, "%s: attack over after %.1fs, peak: %s; reading the server again in %v\n", cfg.Attack, r.Seconds, r.Server.Peak, cfg.After)
	select {
	case <-time.After(cfg.After):
	case <-ctx.Done():
	}
	r.Server.AfterSeconds = cfg.After.Seconds()
	r.Server.After = e.probe.read(context.Background())
	r.Server.Alive = e.probe.alive()
	return r, nil
}

func (s ServerSample) String() string {
	return fmt.Sprintf("rss %s, goroutines %s, fds %s", mib(s.RSSBytes), num(int64(s.Goroutines)), num(int64(s.FDs)))
}

func mib(b int64) string {
	if b < 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func num(v int64) string {
	if v < 0 {
		return "?"
	}
	return strconv.FormatInt(v, 10)
}
