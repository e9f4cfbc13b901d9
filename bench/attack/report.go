//go:build linux

package attack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
)

// Report is the outcome of one attack (or the medians of several runs).
type Report struct {
	Attack  string    `json:"attack"`
	Config  Config    `json:"config"`
	Started time.Time `json:"started"`
	Runs    int       `json:"runs,omitempty"` // > 1: the numbers are medians
	Seconds float64   `json:"seconds"`        // the attack phase

	// Figures are the attack's numeric results, in the order it set them.
	Figures []Figure `json:"figures"`
	// Counts are outcomes counted by kind: upgrade statuses, close codes,
	// error statuses ("http 503", "close 1008", "error 429", …).
	Counts map[string]int64 `json:"counts"`
	// Observations are text results: an error message the server sent, the
	// first close reason.
	Observations []string `json:"observations,omitempty"`
	Errors       []string `json:"errors,omitempty"` // what went wrong in the attack tool itself

	Bystander Bystander   `json:"bystander"`
	Server    ServerStats `json:"server"`
}

// Figure is one named number.
type Figure struct {
	Name  string  `json:"name"`
	Value float64 `json:"value"`
	Unit  string  `json:"unit,omitempty"`
}

// Set records a figure (replacing one of the same name).
func (r *Report) Set(name string, v float64, unit string) {
	for i := range r.Figures {
		if r.Figures[i].Name == name {
			r.Figures[i].Value = v
			return
		}
	}
	r.Figures = append(r.Figures, Figure{name, v, unit})
}

// Figure returns a figure's value.
func (r *Report) Figure(name string) (float64, bool) {
	for _, f := range r.Figures {
		if f.Name == name {
			return f.Value, true
		}
	}
	return 0, false
}

// Observe records a text result once.
func (r *Report) Observe(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if !slices.Contains(r.Observations, s) {
		r.Observations = append(r.Observations, s)
	}
}

// WriteJSON writes the reports (one object, or an array for several).
func WriteJSON(path string, rs []*Report) error {
	var v any = rs
	if len(rs) == 1 {
		v = rs[0]
	}
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Median combines runs of the same attack: every number is the median of
// the runs (counts and figures missing from a run count as 0), text is the
// union.
func Median(rs []*Report) *Report {
	if len(rs) == 1 {
		return rs[0]
	}
	m := &Report{Attack: rs[0].Attack, Config: rs[0].Config, Started: rs[0].Started, Runs: len(rs), Counts: map[string]int64{}}
	med := func(f func(*Report) float64) float64 {
		v := make([]float64, len(rs))
		for i, r := range rs {
			v[i] = f(r)
		}
		sort.Float64s(v)
		if len(v)%2 == 1 {
			return v[len(v)/2]
		}
		return (v[len(v)/2-1] + v[len(v)/2]) / 2
	}
	medI := func(f func(*Report) int64) int64 { return int64(med(func(r *Report) float64 { return float64(f(r)) })) }
	m.Seconds = med(func(r *Report) float64 { return r.Seconds })
	for _, r := range rs {
		for _, f := range r.Figures {
			if _, ok := m.Figure(f.Name); !ok {
				name := f.Name
				m.Set(name, med(func(x *Report) float64 { v, _ := x.Figure(name); return v }), f.Unit)
			}
		}
		for k := range r.Counts {
			if _, ok := m.Counts[k]; !ok {
				m.Counts[k] = medI(func(x *Report) int64 { return x.Counts[k] })
			}
		}
		for _, o := range r.Observations {
			m.Observe("%s", o)
		}
		m.Errors = append(m.Errors, r.Errors...)
	}
	m.Bystander = Bystander{
		Sent:     int(medI(func(r *Report) int64 { return int64(r.Bystander.Sent) })),
		Replies:  int(medI(func(r *Report) int64 { return int64(r.Bystander.Replies) })),
		Failures: int(medI(func(r *Report) int64 { return int64(r.Bystander.Failures) })),
		P50ms:    med(func(r *Report) float64 { return r.Bystander.P50ms }),
		P99ms:    med(func(r *Report) float64 { return r.Bystander.P99ms }),
		Maxms:    med(func(r *Report) float64 { return r.Bystander.Maxms }),
	}
	for _, r := range rs {
		if r.Bystander.FirstFailure != "" {
			m.Bystander.FirstFailure = r.Bystander.FirstFailure
			break
		}
	}
	sample := func(f func(*Report) ServerSample) ServerSample {
		return ServerSample{
			RSSBytes:   medI(func(r *Report) int64 { return f(r).RSSBytes }),
			Goroutines: int(medI(func(r *Report) int64 { return int64(f(r).Goroutines) })),
			FDs:        int(medI(func(r *Report) int64 { return int64(f(r).FDs) })),
		}
	}
	m.Server = ServerStats{
		Pid:          rs[0].Server.Pid,
		Before:       sample(func(r *Report) ServerSample { return r.Server.Before }),
		Peak:         sample(func(r *Report) ServerSample { return r.Server.Peak }),
		After:        sample(func(r *Report) ServerSample { return r.Server.After }),
		AfterSeconds: rs[0].Server.AfterSeconds,
		Alive:        true,
	}
	for _, r := range rs {
		m.Server.Alive = m.Server.Alive && r.Server.Alive
	}
	return m
}

// WriteMarkdown writes one attack's tables.
func WriteMarkdown(w io.Writer, r *Report) {
	title := r.Attack
	if r.Runs > 1 {
		title += fmt.Sprintf(" (medians of %d runs)", r.Runs)
	}
	fmt.Fprintf(w, "### %s\n\n", title)
	fmt.Fprintf(w, "What it does: %s. Target `%s`; the attack phase took %.1f s.\n\n", registry[r.Attack].desc, r.Config.Target, r.Seconds)
	fmt.Fprintf(w, "| server (pid %d) | before | peak | %.0f s after |\n| --- | ---: | ---: | ---: |\n", r.Server.Pid, r.Server.AfterSeconds)
	s := r.Server
	fmt.Fprintf(w, "| RSS | %s | %s | %s |\n", mib(s.Before.RSSBytes), mib(s.Peak.RSSBytes), mib(s.After.RSSBytes))
	fmt.Fprintf(w, "| goroutines | %s | %s | %s |\n", num(int64(s.Before.Goroutines)), num(int64(s.Peak.Goroutines)), num(int64(s.After.Goroutines)))
	fmt.Fprintf(w, "| open fds | %s | %s | %s |\n", num(int64(s.Before.FDs)), num(int64(s.Peak.FDs)), num(int64(s.After.FDs)))
	alive := "yes"
	if !s.Alive {
		alive = "**no**"
	}
	fmt.Fprintf(w, "| process alive | | | %s |\n\n", alive)
	b := r.Bystander
	fmt.Fprintf(w, "| bystander (`%s` every %v) | value |\n| --- | ---: |\n", r.Config.BystanderEvent, r.Config.BystanderEvery)
	fmt.Fprintf(w, "| round trip p50 | %.1f ms |\n| round trip p99 | %.1f ms |\n| round trip max | %.1f ms |\n", b.P50ms, b.P99ms, b.Maxms)
	fmt.Fprintf(w, "| replies / requests | %d / %d |\n| failures | %d |\n\n", b.Replies, b.Sent, b.Failures)
	if b.FirstFailure != "" {
		fmt.Fprintf(w, "First bystander failure: `%s`\n\n", oneLine(b.FirstFailure, 200))
	}
	fmt.Fprintf(w, "| result | value |\n| --- | ---: |\n")
	for _, f := range r.Figures {
		fmt.Fprintf(w, "| %s | %s |\n", f.Name, fmtFigure(f))
	}
	keys := make([]string, 0, len(r.Counts))
	for k := range r.Counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "| %s | %d |\n", k, r.Counts[k])
	}
	fmt.Fprintln(w)
	for _, o := range r.Observations {
		fmt.Fprintf(w, "- %s\n", oneLine(o, 300))
	}
	for _, e := range r.Errors {
		fmt.Fprintf(w, "- tool error: %s\n", oneLine(e, 300))
	}
	if len(r.Observations)+len(r.Errors) > 0 {
		fmt.Fprintln(w)
	}
}

func fmtFigure(f Figure) string {
	v := fmt.Sprintf("%.0f", f.Value)
	if f.Value != float64(int64(f.Value)) {
		v = fmt.Sprintf("%.2f", f.Value)
	}
	switch f.Unit {
	case "":
		return v
	case "bytes":
		if f.Value >= 1<<20 {
			return fmt.Sprintf("%.1f MiB", f.Value/(1<<20))
		}
		return v + " B"
	}
	return v + " " + f.Unit
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// ReadJSON reads reports written by WriteJSON (one object or an array).
func ReadJSON(paths ...string) ([]*Report, error) {
	var out []*Report
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		b = bytes.TrimSpace(b)
		if len(b) > 0 && b[0] == '[' {
			var rs []*Report
			if err := json.Unmarshal(b, &rs); err != nil {
				return nil, fmt.Errorf("%s: %w", p, err)
			}
			out = append(out, rs...)
			continue
		}
		var r Report
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, &r)
	}
	return out, nil
}

// WriteSuiteMarkdown writes a summary table, then each attack's medians
// (runs already combined by Median are taken as they are), in the order
// of Names.
func WriteSuiteMarkdown(w io.Writer, rs []*Report) {
	by := map[string][]*Report{}
	for _, r := range rs {
		if r.Runs > 1 {
			continue // a median written next to its runs
		}
		by[r.Attack] = append(by[r.Attack], r)
	}
	var ms []*Report
	for _, n := range Names {
		if len(by[n]) > 0 {
			ms = append(ms, Median(by[n]))
		}
	}
	fmt.Fprintf(w, "| attack | runs | RSS before → peak → after | goroutines before → peak → after | fds before → peak → after | alive | bystander p50 / p99 | bystander failures |\n")
	fmt.Fprintf(w, "| --- | ---: | ---: | ---: | ---: | --- | ---: | ---: |\n")
	for _, m := range ms {
		s := m.Server
		alive := "yes"
		if !s.Alive {
			alive = "**no**"
		}
		fmt.Fprintf(w, "| %s | %d | %s → %s → %s | %s → %s → %s | %s → %s → %s | %s | %.1f / %.1f ms | %d |\n",
			m.Attack, max(1, m.Runs),
			mib(s.Before.RSSBytes), mib(s.Peak.RSSBytes), mib(s.After.RSSBytes),
			num(int64(s.Before.Goroutines)), num(int64(s.Peak.Goroutines)), num(int64(s.After.Goroutines)),
			num(int64(s.Before.FDs)), num(int64(s.Peak.FDs)), num(int64(s.After.FDs)),
			alive, m.Bystander.P50ms, m.Bystander.P99ms, m.Bystander.Failures)
	}
	fmt.Fprintln(w)
	for _, m := range ms {
		WriteMarkdown(w, m)
	}
}
