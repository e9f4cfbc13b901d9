package report

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// FormatValue renders a figure's value for a table.
func FormatValue(v float64, unit string) string {
	if math.IsNaN(v) {
		return "–"
	}
	var s string
	switch {
	case unit == "ms" && v < 10:
		s = fmt.Sprintf("%.3f", v)
	case unit == "ms" || unit == "s" || unit == "%" || unit == "MiB" || unit == "KiB":
		s = fmt.Sprintf("%.1f", v)
	case math.Abs(v) >= 1e6:
		s = fmt.Sprintf("%.2fM", v/1e6)
	case math.Abs(v) >= 1e4:
		s = fmt.Sprintf("%.1fk", v/1e3)
	case v == math.Trunc(v):
		s = fmt.Sprintf("%.0f", v)
	default:
		s = fmt.Sprintf("%.1f", v)
	}
	if unit != "" {
		s += " " + unit
	}
	return s
}

// WriteMarkdown writes one result as a Markdown section.
func WriteMarkdown(w io.Writer, r *Result) {
	fmt.Fprintf(w, "### %s\n\n", r.Label)
	fmt.Fprintf(w, "| figure | value |\n| --- | ---: |\n")
	for _, f := range r.Figures {
		fmt.Fprintf(w, "| %s | %s |\n", f.Name, FormatValue(f.Value, f.Unit))
	}
	fmt.Fprintln(w)
	c := r.Conns
	fmt.Fprintf(w, "Connections: %d requested, %d opened, %d failed, %d joined, %d join refused, %d dropped; %d worker(s) × %d loop(s).\n",
		c.Requested, c.Opened, c.Failed, c.Joined, c.JoinFailed, c.Dropped, r.Workers, r.Loops)
	if t := r.Traffic; t != nil {
		fmt.Fprintf(w, "Traffic: sent %d, refused %d, expected %d, delivered %d, missing %d, out of order %d, duplicates %d, negative latency %d, over %.2fs.\n",
			t.Sent, t.Refused, t.Expected, t.Delivered, t.Missing, t.OutOfOrder, t.Duplicates, t.NegativeLatency, t.Seconds)
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "Server (pid %v): CPU avg %.0f%% peak %.0f%%, RSS %s before, %s after, %s peak.\n",
			s.Pids, s.CPUAvgPercent, s.CPUPeakPercent, mib(s.RSSBeforeBytes), mib(s.RSSAfterBytes), mib(s.RSSPeakBytes))
	}
	g := r.Generator
	fmt.Fprintf(w, "Generator (pids %v): CPU avg %.0f%% peak %.0f%%, RSS peak %s.\n", g.Pids, g.CPUAvgPercent, g.CPUPeakPercent, mib(g.RSSPeakBytes))
	if r.MachineCPUPercent > 0 {
		fmt.Fprintf(w, "Machine: %.0f%% busy: %.0f%% soft interrupts (loopback TCP), %.0f%% other processes; %.0f%% stolen by the hypervisor.\n", r.MachineCPUPercent, r.SoftirqCPUPercent, r.OtherCPUPercent, r.StealCPUPercent)
	}
	for _, x := range r.Warnings {
		fmt.Fprintf(w, "\n> warning: %s", x)
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// WriteSuiteMarkdown writes every group as a table of medians with the
// individual runs beside them, and the ceiling ratios.
func WriteSuiteMarkdown(w io.Writer, gs []*Group) {
	for _, g := range gs {
		fmt.Fprintf(w, "### %s\n\n", g.Label)
		head := "| figure | median |"
		sep := "| --- | ---: |"
		for i := range g.Runs {
			head += fmt.Sprintf(" run %d |", i+1)
			sep += " ---: |"
		}
		fmt.Fprintln(w, head)
		fmt.Fprintln(w, sep)
		for _, row := range g.Rows() {
			line := fmt.Sprintf("| %s | **%s** |", row.Name, FormatValue(row.Median, row.Unit))
			for _, v := range row.Values {
				line += " " + FormatValue(v, row.Unit) + " |"
			}
			fmt.Fprintln(w, line)
		}
		fmt.Fprintln(w)
		var warn []string
		for i, r := range g.Runs {
			for _, x := range r.Warnings {
				warn = append(warn, fmt.Sprintf("run %d: %s", i+1, x))
			}
		}
		mr := g.MedianRun()
		fmt.Fprintf(w, "Command: `%s`\n\n", mr.Command)
		if len(warn) > 0 {
			fmt.Fprintf(w, "Warnings:\n\n")
			for _, x := range warn {
				fmt.Fprintf(w, "- %s\n", x)
			}
			fmt.Fprintln(w)
		}
	}
	if rs := CeilingRatios(gs); len(rs) > 0 {
		fmt.Fprintf(w, "### Against the ceiling\n\n| run | deliveries/s | ceiling deliveries/s | share of ceiling |\n| --- | ---: | ---: | ---: |\n")
		for _, x := range rs {
			fmt.Fprintf(w, "| %s | %s | %s (%s) | %.0f %% |\n", x.Label, FormatValue(x.Deliveries, "msg/s"), FormatValue(x.Ceiling, "msg/s"), x.CeilingLabel, 100*x.Deliveries/x.Ceiling)
		}
		fmt.Fprintln(w)
	}
}

// Summary is a one-line-per-group overview table.
func WriteSummaryMarkdown(w io.Writer, gs []*Group) {
	fmt.Fprintf(w, "| scenario | runs | headline (median) | latency p50 | p99 | p99.9 | server CPU | generator CPU | softirq | other processes |\n")
	fmt.Fprintf(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, g := range gs {
		name := headline(g.Scenario)
		hv, unit, _ := g.medianOf(name)
		cell := func(fig string) string {
			v, u, ok := g.medianOf(fig)
			if !ok {
				return "–"
			}
			return FormatValue(v, u)
		}
		p50, p99, p999 := cell("latency p50"), cell("latency p99"), cell("latency p99.9")
		if g.Scenario == "conns" {
			p50, p99, p999 = cell("connect p50"), cell("connect p99"), "–"
		}
		if g.Scenario == "presence" {
			p50, p99, p999 = "–", cell("full list p99"), "–"
		}
		fmt.Fprintf(w, "| %s | %d | %s: %s | %s | %s | %s | %s | %s | %s | %s |\n",
			strings.ReplaceAll(g.Label, "|", "/"), len(g.Runs), name, FormatValue(hv, unit), p50, p99, p999,
			cell("server CPU"), cell("generator CPU"), cell("softirq CPU"), cell("other processes CPU"))
	}
	fmt.Fprintln(w)
}
