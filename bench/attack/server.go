//go:build linux

package attack

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pondsocket/pondsocket/bench/procstat"
)

// ServerSample is one reading of the server under attack. A value the
// reader could not get is -1 (goroutines when /metrics does not answer,
// everything when the process is gone).
type ServerSample struct {
	RSSBytes   int64 `json:"rss_bytes"`
	Goroutines int   `json:"goroutines"`
	FDs        int   `json:"fds"`
}

// ServerStats are the server readings of one attack.
type ServerStats struct {
	Pid    int          `json:"pid"`
	Before ServerSample `json:"before"`
	Peak   ServerSample `json:"peak"` // each field's highest reading during the attack
	After  ServerSample `json:"after"`
	// AfterSeconds is how long after the attack After was read.
	AfterSeconds float64 `json:"after_seconds"`
	// Alive says whether the process still existed at the After reading.
	Alive bool `json:"alive"`
}

// prober reads the server process and its /metrics and /healthz.
type prober struct {
	pid     int
	base    string // http://host:port
	httpc   *http.Client
	samples []ServerSample
	mu      sync.Mutex
}

func newProber(pid int, base string) *prober {
	return &prober{pid: pid, base: base, httpc: &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{DisableKeepAlives: true},
	}}
}

// read takes one sample.
func (p *prober) read(ctx context.Context) ServerSample {
	s := ServerSample{RSSBytes: -1, Goroutines: -1, FDs: -1}
	if p.pid > 0 {
		if x, err := procstat.Read(p.pid); err == nil {
			s.RSSBytes = x.RSS
		}
		if fds, err := os.ReadDir("/proc/" + strconv.Itoa(p.pid) + "/fd"); err == nil {
			s.FDs = len(fds)
		}
	}
	s.Goroutines = p.goroutines(ctx)
	return s
}

// goroutines reads go_goroutines from /metrics, -1 when it does not answer.
func (p *prober) goroutines(ctx context.Context) int {
	code, body, err := p.get(ctx, "/metrics", 1<<22)
	if err != nil || code != 200 {
		return -1
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
			if err == nil {
				return int(f)
			}
		}
	}
	return -1
}

// get fetches path from the server's HTTP side; it returns the status and
// up to limit bytes of the body.
func (p *prober) get(ctx context.Context, path string, limit int64) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+path, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := p.httpc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, limit))
	return resp.StatusCode, string(b), nil
}

// status is the outcome of one GET as a count key: "200", "503", "timeout", …
// and the error when there was no response.
func (p *prober) status(ctx context.Context, path string) (string, error) {
	code, _, err := p.get(ctx, path, 1<<22)
	if err != nil {
		return errKind(err), err
	}
	return strconv.Itoa(code), nil
}

// sampleUntil records a sample every interval until ctx ends.
func (p *prober) sampleUntil(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		s := p.read(ctx)
		p.mu.Lock()
		p.samples = append(p.samples, s)
		p.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// peak is each field's highest reading.
func (p *prober) peak() ServerSample {
	p.mu.Lock()
	defer p.mu.Unlock()
	pk := ServerSample{RSSBytes: -1, Goroutines: -1, FDs: -1}
	for _, s := range p.samples {
		pk.RSSBytes = max(pk.RSSBytes, s.RSSBytes)
		pk.Goroutines = max(pk.Goroutines, s.Goroutines)
		pk.FDs = max(pk.FDs, s.FDs)
	}
	return pk
}

func (p *prober) alive() bool {
	if p.pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return false
	}
	// The state follows the command name's closing parenthesis; a zombie
	// has exited.
	i := strings.LastIndexByte(string(b), ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
