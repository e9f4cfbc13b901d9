// Package report holds the result of a load run and renders it: JSON (the
// record), a Markdown table (what goes in a results file or a pull request)
// and an HTML page with plots (what people look at). Several runs of the
// same scenario with the same parameters are summarised by their medians.
package report

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/pondsocket/pondsocket/bench/hist"
)

// Result is one run of one scenario.
type Result struct {
	Scenario  string         `json:"scenario"`
	Label     string         `json:"label"` // scenario and the parameters that define it; runs with equal labels are repeats
	StartedAt time.Time      `json:"started_at"`
	Command   string         `json:"command"`
	Machine   Machine        `json:"machine"`
	Targets   []string       `json:"targets"`
	Params    map[string]any `json:"params"`
	Workers   int            `json:"workers"`
	Loops     int            `json:"loops_per_worker"`

	Conns         ConnStats  `json:"conns"`
	Traffic       *Traffic   `json:"traffic,omitempty"`
	Latency       *Latency   `json:"latency,omitempty"`
	LatencyRemote *Latency   `json:"latency_remote,omitempty"` // cluster: members on the other nodes
	Presence      *Presence  `json:"presence,omitempty"`
	Server        *Resources `json:"server,omitempty"`
	Generator     Resources  `json:"generator"`
	// The whole machine's busy CPU over the measured window; the part
	// spent in soft interrupts (loopback TCP is processed there and charged
	// to no process); and what is left after the server, the generator and
	// softirq: other processes.
	MachineCPUPercent float64  `json:"machine_cpu_percent"`
	SoftirqCPUPercent float64  `json:"softirq_cpu_percent"`
	OtherCPUPercent   float64  `json:"other_cpu_percent"`
	StealCPUPercent   float64  `json:"steal_cpu_percent"` // taken by the hypervisor (virtual machines)
	Series            []Point  `json:"series"`
	Figures           []Figure `json:"figures"`
	MeasureFrom       float64  `json:"measure_from"` // seconds after the first dial: the measured phase
	MeasureTo         float64  `json:"measure_to"`
	Warnings          []string `json:"warnings,omitempty"`
	Notes             []string `json:"notes,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	Hostname  string `json:"hostname"`
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	Kernel    string `json:"kernel"`
	GoVersion string `json:"go"`
	NoFile    uint64 `json:"open_files_limit"`
	MemTotal  int64  `json:"mem_total_bytes"`
}

// ConnStats is the connection phase.
type ConnStats struct {
	Requested        int            `json:"requested"`
	Opened           int64          `json:"opened"`
	Failed           int64          `json:"failed"`
	Joined           int64          `json:"joined"`
	JoinFailed       int64          `json:"join_failed"`
	Dropped          int64          `json:"dropped"`
	ConnectSeconds   float64        `json:"connect_seconds"` // first dial to last CONNECT message
	ConnectPerSec    float64        `json:"connect_per_sec"`
	JoinSeconds      float64        `json:"join_seconds"`       // first join sent to last acknowledgement
	AllJoinedSeconds float64        `json:"all_joined_seconds"` // first dial to last acknowledgement
	ConnectLatency   hist.Summary   `json:"connect_latency"`
	JoinLatency      hist.Summary   `json:"join_latency"`
	Errors           map[string]int `json:"errors,omitempty"`
}

// Traffic is the measured phase's message counts.
type Traffic struct {
	Sent            uint64  `json:"sent"`
	Refused         uint64  `json:"refused"` // answered with an ERROR by the server, so expected by nobody
	Expected        uint64  `json:"expected"`
	Delivered       uint64  `json:"delivered"`
	Missing         uint64  `json:"missing"`
	OutOfOrder      uint64  `json:"out_of_order"`
	Duplicates      uint64  `json:"duplicates"`
	NegativeLatency uint64  `json:"negative_latency"`
	Seconds         float64 `json:"seconds"` // start to last delivery
	SentPerSec      float64 `json:"sent_per_sec"`
	DeliveredPerSec float64 `json:"delivered_per_sec"`
	BytesIn         uint64  `json:"bytes_in"`
}

// Latency is a latency distribution with its histogram (for plots).
type Latency struct {
	hist.Summary
	Buckets []hist.Bucket `json:"buckets"`
}

// NewLatency summarises h.
func NewLatency(h *hist.Histogram) *Latency {
	return &Latency{Summary: h.Summarize(), Buckets: h.Buckets()}
}

// Presence is the presence scenario's outcome.
type Presence struct {
	Members          int64        `json:"members"`
	Complete         int64        `json:"complete"` // clients that saw the full list
	Seconds          float64      `json:"seconds"`  // first join to the last client seeing the full list
	TimeToFull       hist.Summary `json:"time_to_full"`
	PresenceMessages uint64       `json:"presence_messages"`
	BytesIn          uint64       `json:"bytes_in"`
	BytesPerClient   float64      `json:"bytes_per_client"`
}

// Resources is CPU and memory of a set of processes over the measured
// window. CPU is in percent of one core (200 = two cores busy).
type Resources struct {
	Pids            []int   `json:"pids"`
	CPUAvgPercent   float64 `json:"cpu_avg_percent"`
	CPUPeakPercent  float64 `json:"cpu_peak_percent"`
	RSSBeforeBytes  int64   `json:"rss_before_bytes"`
	RSSAfterBytes   int64   `json:"rss_after_bytes"`
	RSSPeakBytes    int64   `json:"rss_peak_bytes"`
	RSSPerConnBytes float64 `json:"rss_per_conn_bytes,omitempty"`
}

// Point is one interval of the time series; rates are per second.
type Point struct {
	T          float64 `json:"t"` // seconds since the measured phase began
	Sent       float64 `json:"sent_per_sec"`
	Delivered  float64 `json:"delivered_per_sec"`
	ServerCPU  float64 `json:"server_cpu_percent"`
	ServerRSS  int64   `json:"server_rss_bytes"`
	GenCPU     float64 `json:"generator_cpu_percent"`
	OtherCPU   float64 `json:"other_cpu_percent"`
	SoftirqCPU float64 `json:"softirq_cpu_percent"`
	Conns      int64   `json:"open_conns"`
}

// Figure is a headline number: what tables show and medians are taken of.
type Figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit"`
}

// Figure returns the named figure.
func (r *Result) Figure(name string) (Figure, bool) {
	for _, f := range r.Figures {
		if f.Name == name {
			return f, true
		}
	}
	return Figure{}, false
}

// Add appends a figure.
func (r *Result) Add(name string, value float64, unit string) {
	r.Figures = append(r.Figures, Figure{Name: name, Value: value, Unit: unit})
}

// Write writes r as indented JSON to path.
func (r *Result) Write(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Read reads results from JSON files (each a Result or an array of them).
func Read(paths ...string) ([]*Result, error) {
	var out []*Result
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		trim := strings.TrimSpace(string(b))
		if strings.HasPrefix(trim, "[") {
			var rs []*Result
			if err := json.Unmarshal(b, &rs); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			out = append(out, rs...)
			continue
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, &r)
	}
	return out, nil
}

// ThisMachine describes the machine the code runs on.
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version()}
	m.Hostname, _ = os.Hostname()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if f, err := os.Open("/proc/meminfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			var kb int64
			if _, err := fmt.Sscanf(sc.Text(), "MemTotal: %d kB", &kb); err == nil {
				m.MemTotal = kb << 10
				break
			}
		}
		f.Close()
	}
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil {
		m.NoFile = rl.Cur
	}
	return m
}
