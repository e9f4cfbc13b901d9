package report

import (
	"math"
	"sort"
)

// Group is the runs that share a label (repeats of one configuration).
type Group struct {
	Label    string
	Scenario string
	Runs     []*Result
}

// Groups groups results by label, in the order labels first appear.
func Groups(rs []*Result) []*Group {
	var out []*Group
	idx := map[string]*Group{}
	for _, r := range rs {
		g := idx[r.Label]
		if g == nil {
			g = &Group{Label: r.Label, Scenario: r.Scenario}
			idx[r.Label] = g
			out = append(out, g)
		}
		g.Runs = append(g.Runs, r)
	}
	return out
}

// Median is the median of xs (the mean of the middle two for an even count).
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// FigureRow is one figure over the runs of a group.
type FigureRow struct {
	Name   string
	Unit   string
	Values []float64 // one per run, NaN where a run lacks it
	Median float64
}

// Rows returns the group's figures, in the first run's order, with medians.
func (g *Group) Rows() []FigureRow {
	var rows []FigureRow
	seen := map[string]int{}
	for _, r := range g.Runs {
		for _, f := range r.Figures {
			if _, ok := seen[f.Name]; !ok {
				seen[f.Name] = len(rows)
				rows = append(rows, FigureRow{Name: f.Name, Unit: f.Unit})
			}
		}
	}
	for i := range rows {
		var present []float64
		for _, r := range g.Runs {
			v := math.NaN()
			if f, ok := r.Figure(rows[i].Name); ok {
				v = f.Value
				present = append(present, v)
			}
			rows[i].Values = append(rows[i].Values, v)
		}
		rows[i].Median = Median(present)
	}
	return rows
}

// Median returns the median of the named figure over the group.
func (g *Group) Median(name string) (float64, bool) {
	for _, row := range g.Rows() {
		if row.Name == name {
			return row.Median, !math.IsNaN(row.Median)
		}
	}
	return 0, false
}

// headline is the figure that ranks the runs of a scenario (for picking the
// median run whose plots are shown).
func headline(scenario string) string {
	switch scenario {
	case "conns":
		return "connect rate"
	case "presence":
		return "time to full list"
	case "echo":
		return "round trips/s"
	default:
		return "deliveries/s"
	}
}

// medianOf is the median of figure fig over the group's runs, with the
// figure's unit (from the first run); ok is false when no run has it.
func (g *Group) medianOf(fig string) (v float64, unit string, ok bool) {
	v, ok = g.Median(fig)
	if f, found := g.Runs[0].Figure(fig); found {
		unit = f.Unit
	}
	return v, unit, ok
}

// MedianRun is the run whose headline figure is the median one.
func (g *Group) MedianRun() *Result {
	name := headline(g.Scenario)
	type kv struct {
		v float64
		r *Result
	}
	var xs []kv
	for _, r := range g.Runs {
		if f, ok := r.Figure(name); ok {
			xs = append(xs, kv{f.Value, r})
		}
	}
	if len(xs) == 0 {
		return g.Runs[0]
	}
	sort.Slice(xs, func(i, j int) bool { return xs[i].v < xs[j].v })
	return xs[(len(xs)-1)/2].r
}

// CeilingRatio is fanout-like throughput divided by the ceiling's, for each
// group that has a ceiling group with the same connection count.
type CeilingRatio struct {
	Label        string
	Deliveries   float64
	Ceiling      float64
	CeilingLabel string
}

// CeilingRatios pairs fan-out groups with every ceiling group of the same
// connection count (batched and unbatched ceilings give two rows).
func CeilingRatios(gs []*Group) []CeilingRatio {
	var out []CeilingRatio
	for _, g := range gs {
		if g.Scenario != "fanout" && g.Scenario != "cluster" && g.Scenario != "rooms" {
			continue
		}
		d, ok := g.Median("deliveries/s")
		if !ok {
			continue
		}
		n := g.Runs[0].Conns.Requested
		for _, c := range gs {
			if c.Scenario != "ceiling" || c.Runs[0].Conns.Requested != n {
				continue
			}
			if cv, ok := c.Median("deliveries/s"); ok && cv > 0 {
				out = append(out, CeilingRatio{Label: g.Label, Deliveries: d, Ceiling: cv, CeilingLabel: c.Label})
			}
		}
	}
	return out
}
