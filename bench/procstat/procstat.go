//go:build linux

// Package procstat samples a process's CPU time and resident memory from
// /proc, and finds the process that listens on a TCP port. The load tool
// uses it for the server under test (by pid), for its own worker processes
// and for itself, so every report says what the generator cost.
package procstat

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sample is one reading of a process.
type Sample struct {
	At      time.Time     `json:"-"`
	CPU     time.Duration `json:"-"` // user + system CPU time since the process started
	RSS     int64         `json:"-"` // resident set, bytes
	Threads int           `json:"-"`
	// Softirq is, for the System pseudo-process, the time all cores spent
	// in soft interrupts. Loopback TCP is processed there and is charged
	// to no process, so it must be told apart from other processes' CPU.
	Softirq time.Duration `json:"-"`
	// Steal is, for System, the time the hypervisor ran something else
	// while this virtual machine wanted the CPU.
	Steal time.Duration `json:"-"`
}

var clkTck = readClockTicks()

// readClockTicks reads AT_CLKTCK from the auxiliary vector (the unit of
// utime/stime in /proc/<pid>/stat); 100 on every Linux we know of.
func readClockTicks() int64 {
	b, err := os.ReadFile("/proc/self/auxv")
	if err != nil {
		return 100
	}
	for i := 0; i+16 <= len(b); i += 16 {
		k := binary.LittleEndian.Uint64(b[i:])
		v := binary.LittleEndian.Uint64(b[i+8:])
		if k == 17 && v > 0 { // AT_CLKTCK
			return int64(v)
		}
		if k == 0 {
			break
		}
	}
	return 100
}

// System is the pid that Read and NewSampler take to mean the whole
// machine: CPU is then the busy time of all cores (everything but idle and
// iowait), so a run can tell how much other processes took.
const System = -1

// Read samples process pid (0 means this process, System the machine).
func Read(pid int) (Sample, error) {
	if pid == System {
		return readSystem()
	}
	dir := "/proc/self"
	if pid > 0 {
		dir = "/proc/" + strconv.Itoa(pid)
	}
	s := Sample{At: time.Now()}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return s, err
	}
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("procstat: malformed %s/stat", dir)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime is field 14, stime 15, num_threads 20, rss 24.
	if len(f) < 22 {
		return s, fmt.Errorf("procstat: short %s/stat", dir)
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	s.CPU = time.Duration((ut + st) * int64(time.Second) / clkTck)
	s.Threads, _ = strconv.Atoi(f[17])
	// VmRSS from status is in kB and needs no page size.
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, []byte("VmRSS:")) {
			v := strings.Fields(string(line[len("VmRSS:"):]))
			if len(v) > 0 {
				kb, _ := strconv.ParseInt(v[0], 10, 64)
				s.RSS = kb << 10
			}
			break
		}
	}
	return s, nil
}

func readSystem() (Sample, error) {
	s := Sample{At: time.Now()}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return s, err
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) < 6 || f[0] != "cpu" {
		return s, errors.New("procstat: malformed /proc/stat")
	}
	var busy, softirq, steal int64
	for i, v := range f[1:] {
		if i >= 8 { // guest time is already in user
			break
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		switch i {
		case 3, 4: // idle, iowait
			continue
		case 6:
			softirq = n
		case 7:
			steal = n
			continue // not time this machine spent working
		}
		busy += n
	}
	s.CPU = time.Duration(busy * int64(time.Second) / clkTck)
	s.Softirq = time.Duration(softirq * int64(time.Second) / clkTck)
	s.Steal = time.Duration(steal * int64(time.Second) / clkTck)
	return s, nil
}

// CPUPercent is the CPU used between two samples, in percent of one core.
func CPUPercent(a, b Sample) float64 {
	wall := b.At.Sub(a.At)
	if wall <= 0 {
		return 0
	}
	return 100 * float64(b.CPU-a.CPU) / float64(wall)
}

// Sampler reads one process every interval until Stop.
type Sampler struct {
	pid      int
	interval time.Duration

	mu      sync.Mutex
	samples []Sample
	stop    chan struct{}
	done    chan struct{}
	err     error
}

// NewSampler starts sampling pid (0 = this process) every interval.
func NewSampler(pid int, interval time.Duration) (*Sampler, error) {
	first, err := Read(pid)
	if err != nil {
		return nil, fmt.Errorf("procstat: pid %d: %w", pid, err)
	}
	s := &Sampler{pid: pid, interval: interval, samples: []Sample{first}, stop: make(chan struct{}), done: make(chan struct{})}
	go s.run()
	return s, nil
}

func (s *Sampler) run() {
	defer close(s.done)
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			x, err := Read(s.pid)
			s.mu.Lock()
			if err != nil {
				s.err = err // the process went away
				s.mu.Unlock()
				return
			}
			s.samples = append(s.samples, x)
			s.mu.Unlock()
		}
	}
}

// Pid is the sampled process.
func (s *Sampler) Pid() int { return s.pid }

// Stop ends sampling after one last reading. Idempotent.
func (s *Sampler) Stop() {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	<-s.done
	if x, err := Read(s.pid); err == nil {
		s.mu.Lock()
		s.samples = append(s.samples, x)
		s.mu.Unlock()
	}
}

// Now takes a reading immediately and records it.
func (s *Sampler) Now() (Sample, error) {
	x, err := Read(s.pid)
	if err != nil {
		return x, err
	}
	s.mu.Lock()
	s.samples = append(s.samples, x)
	s.mu.Unlock()
	return x, nil
}

// Samples returns a copy of the readings so far.
func (s *Sampler) Samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sample(nil), s.samples...)
}

// Window summarises the readings between from and to.
type Window struct {
	CPUAvg  float64 // percent of one core, averaged over the window
	CPUPeak float64 // highest percent between two consecutive readings
	RSSMin  int64
	RSSMax  int64
	RSSLast int64
}

// Window summarises the readings taken in [from, to].
func (s *Sampler) Window(from, to time.Time) Window {
	return Summarize(s.Samples(), from, to)
}

// Summarize computes a Window over samples taken in [from, to].
func Summarize(all []Sample, from, to time.Time) Window {
	var in []Sample
	for _, x := range all {
		if !x.At.Before(from) && !x.At.After(to) {
			in = append(in, x)
		}
	}
	var w Window
	if len(in) == 0 {
		return w
	}
	w.RSSMin, w.RSSMax, w.RSSLast = in[0].RSS, in[0].RSS, in[len(in)-1].RSS
	for i, x := range in {
		w.RSSMin = min(w.RSSMin, x.RSS)
		w.RSSMax = max(w.RSSMax, x.RSS)
		if i > 0 {
			w.CPUPeak = max(w.CPUPeak, CPUPercent(in[i-1], x))
		}
	}
	if len(in) > 1 {
		w.CPUAvg = CPUPercent(in[0], in[len(in)-1])
	}
	return w
}

// ErrNoListener is returned by FindListener when no process listens on the port.
var ErrNoListener = errors.New("procstat: no process listens on that port")

// FindListener returns the pid of the process holding a listening TCP
// socket on port (IPv4 or IPv6), from /proc/net/tcp{,6} and /proc/*/fd.
func FindListener(port int) (int, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" { // 0A = LISTEN
				continue
			}
			_, hexPort, ok := strings.Cut(fs[1], ":")
			if !ok {
				continue
			}
			p, err := strconv.ParseInt(hexPort, 16, 32)
			if err != nil || int(p) != port {
				continue
			}
			inodes["socket:["+fs[9]+"]"] = true
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("%w (%d)", ErrNoListener, port)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	self := os.Getpid()
	for _, p := range procs {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil || pid == self {
			continue
		}
		fds, err := os.ReadDir(p + "/fd")
		if err != nil {
			continue
		}
		for _, fd := range fds {
			link, err := os.Readlink(p + "/fd/" + fd.Name())
			if err == nil && inodes[link] {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("%w (%d): socket found but not its process (permissions?)", ErrNoListener, port)
}

// CPUAt estimates the process's cumulative CPU time at t by linear
// interpolation between the readings around it (clamped to the first and
// last reading).
func CPUAt(all []Sample, t time.Time) time.Duration {
	if len(all) == 0 {
		return 0
	}
	if !t.After(all[0].At) {
		return all[0].CPU
	}
	for i := 1; i < len(all); i++ {
		if !t.After(all[i].At) {
			a, b := all[i-1], all[i]
			span := b.At.Sub(a.At)
			if span <= 0 {
				return b.CPU
			}
			f := float64(t.Sub(a.At)) / float64(span)
			return a.CPU + time.Duration(f*float64(b.CPU-a.CPU))
		}
	}
	return all[len(all)-1].CPU
}

// RSSAt is the resident set of the last reading at or before t (the first
// reading if t precedes all).
func RSSAt(all []Sample, t time.Time) int64 {
	var v int64
	for i, x := range all {
		if i == 0 || !x.At.After(t) {
			v = x.RSS
		}
	}
	return v
}

// SoftirqSamples returns the System samples with CPU replaced by softirq
// time, so CPUBetween and CPUAt measure soft-interrupt time.
func SoftirqSamples(all []Sample) []Sample {
	return withCPU(all, func(x Sample) time.Duration { return x.Softirq })
}

// StealSamples returns the System samples with CPU replaced by steal time.
func StealSamples(all []Sample) []Sample {
	return withCPU(all, func(x Sample) time.Duration { return x.Steal })
}

// withCPU copies samples with CPU replaced by another of their times.
func withCPU(all []Sample, cpu func(Sample) time.Duration) []Sample {
	out := make([]Sample, len(all))
	for i, x := range all {
		out[i] = x
		out[i].CPU = cpu(x)
	}
	return out
}

// CPUBetween is the CPU used in [a, b], in percent of one core.
func CPUBetween(all []Sample, a, b time.Time) float64 {
	if !b.After(a) {
		return 0
	}
	return 100 * float64(CPUAt(all, b)-CPUAt(all, a)) / float64(b.Sub(a))
}
