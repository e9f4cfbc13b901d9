package report

import (
	"fmt"
	"html"
	"io"
	"math"
	"sort"
	"strings"
)

// The HTML page is self-contained: inline CSS and SVG, no script, no
// network. Each group shows its table of medians and the plots of its
// median run: the latency histogram and throughput, CPU and memory over
// time.

const css = `body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:24px auto;max-width:1180px;color:#1d2330;padding:0 16px}
h1{font-size:22px}h2{font-size:18px;margin-top:36px;border-bottom:1px solid #dde;padding-bottom:4px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #dde;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
th{background:#f3f4f8}.med{font-weight:600}.warn{color:#a04000}.plots{display:flex;flex-wrap:wrap;gap:12px}
.meta{color:#555;font-size:13px}svg{background:#fcfcfe;border:1px solid #e3e5ee}code{background:#f3f4f8;padding:1px 4px}.pre{white-space:pre-wrap;background:#f7f7fa;padding:8px;font-size:12px}`

// WriteHTML writes the page for a set of results.
func WriteHTML(w io.Writer, title string, rs []*Result, notes []string) error {
	gs := Groups(rs)
	var b strings.Builder
	fmt.Fprintf(&b, "<!doctype html><html><head><meta charset=utf-8><title>%s</title><style>%s</style></head><body>\n", esc(title), css)
	fmt.Fprintf(&b, "<h1>%s</h1>\n", esc(title))
	if len(rs) > 0 {
		m := rs[0].Machine
		fmt.Fprintf(&b, "<p class=meta>%s · %d cores · kernel %s · %s · open-files limit %d · %s · %s</p>\n",
			esc(m.CPU), m.Cores, esc(m.Kernel), esc(m.GoVersion), m.NoFile, esc(m.Hostname), rs[0].StartedAt.Format("2006-01-02 15:04 MST"))
	}
	for _, n := range notes {
		if strings.Contains(n, "\n") { // a Markdown preamble: shown as written
			fmt.Fprintf(&b, "<details open><summary>machine, commands, notes</summary><pre class=pre>%s</pre></details>\n", esc(n))
			continue
		}
		fmt.Fprintf(&b, "<p>%s</p>\n", esc(n))
	}
	if len(gs) > 1 {
		b.WriteString("<h2>Summary</h2><table><tr><th>scenario</th><th>runs</th><th>headline (median)</th><th>server CPU</th><th>generator CPU</th></tr>\n")
		for i, g := range gs {
			name := headline(g.Scenario)
			v, unit, _ := g.medianOf(name)
			sc, _ := g.Median("server CPU")
			gc, _ := g.Median("generator CPU")
			fmt.Fprintf(&b, "<tr><td><a href=\"#g%d\">%s</a></td><td>%d</td><td>%s: %s</td><td>%s</td><td>%s</td></tr>\n",
				i, esc(g.Label), len(g.Runs), esc(name), esc(FormatValue(v, unit)), esc(FormatValue(sc, "%")), esc(FormatValue(gc, "%")))
		}
		b.WriteString("</table>\n")
		if cr := CeilingRatios(gs); len(cr) > 0 {
			b.WriteString("<h2>Against the ceiling</h2><table><tr><th>run</th><th>deliveries/s</th><th>ceiling</th><th>share</th></tr>\n")
			for _, x := range cr {
				fmt.Fprintf(&b, "<tr><td>%s</td><td>%s</td><td>%s</td><td>%.0f %%</td></tr>\n", esc(x.Label),
					esc(FormatValue(x.Deliveries, "msg/s")), esc(FormatValue(x.Ceiling, "msg/s")), 100*x.Deliveries/x.Ceiling)
			}
			b.WriteString("</table>\n")
		}
	}
	for i, g := range gs {
		writeGroupHTML(&b, i, g)
	}
	b.WriteString("</body></html>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func writeGroupHTML(b *strings.Builder, i int, g *Group) {
	fmt.Fprintf(b, "<h2 id=\"g%d\">%s</h2>\n", i, esc(g.Label))
	b.WriteString("<table><tr><th>figure</th><th>median</th>")
	for i := range g.Runs {
		fmt.Fprintf(b, "<th>run %d</th>", i+1)
	}
	b.WriteString("</tr>\n")
	for _, row := range g.Rows() {
		fmt.Fprintf(b, "<tr><td>%s</td><td class=med>%s</td>", esc(row.Name), esc(FormatValue(row.Median, row.Unit)))
		for _, v := range row.Values {
			fmt.Fprintf(b, "<td>%s</td>", esc(FormatValue(v, row.Unit)))
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>\n")
	r := g.MedianRun()
	fmt.Fprintf(b, "<p class=meta>Plots of the median run. Command: <code>%s</code></p>\n", esc(r.Command))
	for i, x := range g.Runs {
		for _, w := range x.Warnings {
			fmt.Fprintf(b, "<p class=warn>run %d: %s</p>\n", i+1, esc(w))
		}
	}
	b.WriteString("<div class=plots>\n")
	if r.Latency != nil && r.Latency.Count > 0 {
		title := "delivery latency"
		switch r.Scenario {
		case "echo":
			title = "round-trip latency"
		case "presence":
			title = "time until a client saw the full list"
		}
		b.WriteString(latencySVG(title, r.Latency))
	}
	if r.LatencyRemote != nil && r.LatencyRemote.Count > 0 {
		b.WriteString(latencySVG("latency, members on other nodes", r.LatencyRemote))
	}
	if len(r.Series) > 1 {
		if r.Traffic != nil {
			defs := []seriesDef{{"delivered/s", "#2563eb", func(p Point) float64 { return p.Delivered }}}
			var maxS, maxD float64
			for _, p := range r.Series {
				maxS, maxD = math.Max(maxS, p.Sent), math.Max(maxD, p.Delivered)
			}
			if maxS > 0.05*maxD { // a fan-out's send rate would be a flat line at 0
				defs = append(defs, seriesDef{"sent/s", "#16a34a", func(p Point) float64 { return p.Sent }})
			}
			b.WriteString(lineSVG("throughput (messages/s)", r, defs))
		}
		b.WriteString(lineSVG("open connections", r, []seriesDef{
			{"connections", "#7c3aed", func(p Point) float64 { return float64(p.Conns) }},
		}))
		cpu := []seriesDef{
			{"server", "#dc2626", func(p Point) float64 { return p.ServerCPU }},
			{"generator", "#ea580c", func(p Point) float64 { return p.GenCPU }},
		}
		if r.MachineCPUPercent > 0 {
			cpu = append(cpu,
				seriesDef{"softirq", "#a16207", func(p Point) float64 { return p.SoftirqCPU }},
				seriesDef{"others", "#9ca3af", func(p Point) float64 { return p.OtherCPU }})
		}
		b.WriteString(lineSVG("CPU (% of one core)", r, cpu))
		if r.Server != nil {
			b.WriteString(lineSVG("server RSS (MiB)", r, []seriesDef{
				{"RSS", "#0891b2", func(p Point) float64 { return float64(p.ServerRSS) / (1 << 20) }},
			}))
		}
	}
	b.WriteString("</div>\n")
}

const (
	plotW, plotH = 560, 260
	padL, padR   = 64, 16
	padT, padB   = 42, 40
)

func fmtDur(ns float64) string {
	switch {
	case ns >= 1e9:
		return trimZero(fmt.Sprintf("%.1fs", ns/1e9))
	case ns >= 1e6:
		return trimZero(fmt.Sprintf("%.1fms", ns/1e6))
	case ns >= 1e3:
		return trimZero(fmt.Sprintf("%.1fµs", ns/1e3))
	default:
		return fmt.Sprintf("%.0fns", ns)
	}
}

func trimZero(s string) string { return strings.Replace(s, ".0", "", 1) }

// latencySVG draws the histogram on a log time axis (ten bins per decade)
// with the percentiles marked.
func latencySVG(title string, l *Latency) string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d" viewBox="0 0 %d %d" xmlns="http://www.w3.org/2000/svg" font-size="11">`, plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="13" font-weight="600">%s</text>`, padL, esc(title))
	lo := math.Max(1, float64(l.Min))
	hi := math.Max(lo*10, float64(l.Max)+1)
	d0, d1 := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if d1-d0 < 1 {
		d1 = d0 + 1
	}
	const perDecade = 10
	nb := int((d1 - d0) * perDecade)
	bins := make([]float64, nb)
	for _, bk := range l.Buckets {
		mid := float64(bk.Lo) + float64(bk.Width-1)/2
		if mid < 1 {
			mid = 1
		}
		i := int((math.Log10(mid) - d0) * perDecade)
		i = max(0, min(nb-1, i))
		bins[i] += float64(bk.Count)
	}
	top := 0.0
	for _, v := range bins {
		top = math.Max(top, v)
	}
	x := func(ns float64) float64 {
		return padL + (math.Log10(math.Max(ns, 1))-d0)/(d1-d0)*float64(plotW-padL-padR)
	}
	y := func(v float64) float64 { return float64(plotH-padB) - v/top*float64(plotH-padT-padB) }
	bw := float64(plotW-padL-padR) / float64(nb)
	for i, v := range bins {
		if v == 0 {
			continue
		}
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#60a5fa"><title>%s–%s: %.0f</title></rect>`,
			padL+float64(i)*bw, y(v), math.Max(bw-1, 1), float64(plotH-padB)-y(v),
			fmtDur(math.Pow(10, d0+float64(i)/perDecade)), fmtDur(math.Pow(10, d0+float64(i+1)/perDecade)), v)
	}
	// axes
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#667"/>`, padL, plotH-padB, plotW-padR, plotH-padB)
	for d := d0; d <= d1; d++ {
		xx := x(math.Pow(10, d))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#667"/><text x="%.1f" y="%d" text-anchor="middle">%s</text>`,
			xx, plotH-padB, xx, plotH-padB+4, xx, plotH-padB+16, fmtDur(math.Pow(10, d)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="#556">%s</text>`, padL-6, padT+8, siCount(top))
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" fill="#556">0</text>`, padL-6, plotH-padB)
	// percentiles
	marks := []struct {
		name string
		v    int64
		c    string
	}{{"p50", l.P50, "#15803d"}, {"p99", l.P99, "#b45309"}, {"p99.9", l.P999, "#b91c1c"}, {"max", l.Max, "#6b21a8"}}
	for i, m := range marks {
		xx := x(float64(m.v))
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s" stroke-dasharray="4 3"/>`, xx, padT, xx, plotH-padB, m.c)
		// the values go in a row under the title, where they cannot overlap
		fmt.Fprintf(&b, `<text x="%d" y="32" fill="%s">%s %s</text>`, padL+i*110, m.c, m.name, fmtDur(float64(m.v)))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#556">n=%d  mean %s</text>`, plotW-200, plotH-6, l.Count, fmtDur(l.Mean))
	b.WriteString("</svg>\n")
	return b.String()
}

type seriesDef struct {
	name  string
	color string
	get   func(Point) float64
}

// lineSVG draws series over the run's time axis, shading the measured window.
func lineSVG(title string, r *Result, defs []seriesDef) string {
	pts := r.Series
	var b strings.Builder
	fmt.Fprintf(&b, `<svg width="%d" height="%d" viewBox="0 0 %d %d" xmlns="http://www.w3.org/2000/svg" font-size="11">`, plotW, plotH, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-size="13" font-weight="600">%s</text>`, padL, esc(title))
	tMax := pts[len(pts)-1].T
	top := 0.0
	for _, d := range defs {
		for _, p := range pts {
			top = math.Max(top, d.get(p))
		}
	}
	if top <= 0 {
		top = 1
	}
	top = niceCeil(top)
	x := func(t float64) float64 { return padL + t/tMax*float64(plotW-padL-padR) }
	y := func(v float64) float64 { return float64(plotH-padB) - v/top*float64(plotH-padT-padB) }
	if r.MeasureTo > r.MeasureFrom {
		fmt.Fprintf(&b, `<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#fef3c7"><title>measured window</title></rect>`,
			x(r.MeasureFrom), padT, math.Max(1, x(math.Min(r.MeasureTo, tMax))-x(r.MeasureFrom)), plotH-padT-padB)
	}
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e5e7eb"/><text x="%d" y="%.1f" text-anchor="end" fill="#556">%s</text>`,
			padL, y(v), plotW-padR, y(v), padL-6, y(v)+4, siCount(v))
	}
	step := niceStep(tMax / 6)
	for t := 0.0; t <= tMax+1e-9; t += step {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" fill="#556">%gs</text>`, x(t), plotH-padB+16, math.Round(t*100)/100)
	}
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#667"/>`, padL, plotH-padB, plotW-padR, plotH-padB)
	legendX := plotW - padR
	for i := len(defs) - 1; i >= 0; i-- {
		legendX -= 22 + 7*len(defs[i].name)
	}
	for _, d := range defs {
		var path strings.Builder
		for j, p := range pts {
			cmd := "L"
			if j == 0 {
				cmd = "M"
			}
			fmt.Fprintf(&path, "%s%.1f %.1f ", cmd, x(p.T), y(d.get(p)))
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="1.8"/>`, path.String(), d.color)
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="10" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`,
			legendX, 9, d.color, legendX+14, 18, esc(d.name))
		legendX += 22 + 7*len(d.name)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func niceStep(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}

func niceCeil(x float64) float64 {
	s := niceStep(x / 4)
	return math.Ceil(x/s) * s
}

func siCount(v float64) string {
	switch {
	case v >= 1e6:
		return trimZero(fmt.Sprintf("%.1fM", v/1e6))
	case v >= 1e3:
		return trimZero(fmt.Sprintf("%.1fk", v/1e3))
	default:
		return trimZero(fmt.Sprintf("%.1f", v))
	}
}

func esc(s string) string { return html.EscapeString(s) }

// SortByScenario orders results by the suite's scenario order, stable.
func SortByScenario(rs []*Result, order []string) {
	rank := map[string]int{}
	for i, n := range order {
		rank[n] = i
	}
	sort.SliceStable(rs, func(i, j int) bool { return rank[rs[i].Scenario] < rank[rs[j].Scenario] })
}
