package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// A group is the benchmarks under one top-level name, such as BenchmarkA_OneSubscriber:
// one scenario, a row per library.
type group struct {
	name string // "A_OneSubscriber"
	rows []row
}

type row struct {
	lib     string // the sub-benchmark's name: the library
	skipped string // the reason, if skipped
	runs    int
	ns      float64 // medians over the runs
	allocs  float64
	p50     float64 // 0 unless the benchmark reports p50-ns
	p99     float64
	spread  float64 // median absolute deviation of ns/op over the runs, over the median
}

// scenarioTitles describe the scenarios of package benchmarks; a group without one is
// printed under its name.
var scenarioTitles = map[string]string{
	"A_OneSubscriber":      "A: one subscriber",
	"B_TenSubscribers":     "B: ten subscribers (fan-out; ns per published event, so 10 deliveries)",
	"C_KeysOrdered":        "C: 64 keys, each key's order verified (peers without per-key order: 2 ordered shards by key hash)",
	"D_IdleLatency":        "D: idle latency (publish one event, wait until it is handled, repeat)",
	"E_Guarantees":         "E: eventbus with a retry policy, a dead-letter hook and de-duplication, nothing failing",
	"F_ParallelPublishers": "F: parallel publishers (b.RunParallel, one per GOMAXPROCS), one subscriber",
	"CheckCost":            "Cost of the checks per delivery, from one goroutine (included in every figure above)",
}

// groups gathers the results into groups, in the order they ran.
func (res *results) groups() []group {
	var gs []group
	index := map[string]int{}
	for _, full := range res.order {
		name, lib, _ := strings.Cut(strings.TrimPrefix(full, "Benchmark"), "/")
		i, ok := index[name]
		if !ok {
			i = len(gs)
			index[name] = i
			gs = append(gs, group{name: name})
		}
		r := row{lib: lib}
		if reason, ok := res.skipped[full]; ok && len(res.samples[full]) == 0 {
			r.skipped = reason
		} else {
			r.summarize(res.samples[full])
		}
		gs[i].rows = append(gs[i].rows, r)
	}
	return gs
}

func (r *row) summarize(samples []sample) {
	r.runs = len(samples)
	ns := values(samples, "ns/op")
	r.ns = median(ns)
	r.allocs = median(values(samples, "allocs/op"))
	r.p50 = median(values(samples, "p50-ns"))
	r.p99 = median(values(samples, "p99-ns"))
	if r.ns > 0 {
		dev := make([]float64, len(ns))
		for i, v := range ns {
			dev[i] = math.Abs(v - r.ns)
		}
		r.spread = median(dev) / r.ns
	}
}

func values(samples []sample, unit string) []float64 {
	var vs []float64
	for _, s := range samples {
		if v, ok := s[unit]; ok {
			vs = append(vs, v)
		}
	}
	return vs
}

// median returns the median of vs (the mean of the middle two for an even count), or 0
// for none.
func median(vs []float64) float64 {
	if len(vs) == 0 {
		return 0
	}
	s := slices.Clone(vs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// ours reports whether a row is this module's bus (or a variant of it) rather than a peer.
func ours(lib string) bool { return lib == "eventbus" || strings.HasPrefix(lib, "eventbus-") }

// reference returns the row the group's ratios are to: the fastest peer, or, in a group
// of eventbus variants only, plain eventbus. For latency, fastest means the lowest p50.
func (g group) reference() (row, bool) {
	key := func(r row) float64 {
		if r.p50 > 0 {
			return r.p50
		}
		return r.ns
	}
	var best row
	found := false
	for _, r := range g.rows {
		if r.skipped == "" && r.runs > 0 && !ours(r.lib) && (!found || key(r) < key(best)) {
			best, found = r, true
		}
	}
	if found {
		return best, true
	}
	for _, r := range g.rows {
		if r.lib == "eventbus" && r.skipped == "" && r.runs > 0 {
			return r, true
		}
	}
	return row{}, false
}

// writeTables prints a markdown table per group.
func writeTables(w io.Writer, gs []group) {
	for _, g := range gs {
		title := scenarioTitles[g.name]
		if title == "" {
			title = g.name
		}
		fmt.Fprintf(w, "\n**%s**\n\n", title)
		ref, hasRef := g.reference()
		if g.name == "CheckCost" {
			hasRef = false
		}
		latency := slices.ContainsFunc(g.rows, func(r row) bool { return r.p50 > 0 })
		header := []string{"library"}
		if latency {
			header = append(header, "p50", "p99")
		}
		header = append(header, "ns/event", "events/s", "allocs/event", "spread")
		if hasRef {
			what := "the fastest peer"
			if ours(ref.lib) {
				what = ref.lib
			}
			if latency {
				what += ", p50"
			}
			header = append(header, "× "+what)
		}
		writeRow(w, header)
		align := make([]string, len(header))
		for i := range align {
			align[i] = "---:"
		}
		align[0] = "---"
		writeRow(w, align)
		for _, r := range g.rows {
			if r.skipped != "" || r.runs == 0 {
				cells := make([]string, len(header))
				cells[0] = r.lib
				cells[1] = "skipped: " + r.skipped
				writeRow(w, cells)
				continue
			}
			cells := []string{r.lib}
			if latency {
				cells = append(cells, formatDuration(r.p50), formatDuration(r.p99))
			}
			cells = append(cells, formatNs(r.ns), formatRate(1e9/r.ns), formatCount(r.allocs),
				fmt.Sprintf("±%.0f%%", 100*r.spread))
			if hasRef {
				mine, theirs := r.ns, ref.ns
				if latency {
					mine, theirs = r.p50, ref.p50
				}
				cells = append(cells, formatRatio(mine/theirs, r.lib == ref.lib))
			}
			if r.lib == "eventbus" {
				cells[0] = "**eventbus**"
			}
			writeRow(w, cells)
		}
	}
}

func writeRow(w io.Writer, cells []string) {
	fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
}

// formatNs prints nanoseconds with three significant digits below 100 and as a whole
// number with thousands separators above.
func formatNs(ns float64) string {
	switch {
	case ns < 10:
		return fmt.Sprintf("%.2f", ns)
	case ns < 100:
		return fmt.Sprintf("%.1f", ns)
	}
	return thousands(int64(math.Round(ns)))
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// formatRate prints events per second as 6.7M, 16k, 950.
func formatRate(r float64) string {
	switch {
	case r >= 1e9:
		return fmt.Sprintf("%.1fG", r/1e9)
	case r >= 1e6:
		return fmt.Sprintf("%.1fM", r/1e6)
	case r >= 1e4:
		return fmt.Sprintf("%.0fk", r/1e3)
	case r >= 1e3:
		return fmt.Sprintf("%.1fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}

// formatDuration prints nanoseconds in the unit that suits them: 388 ns, 2.5 µs, 1.10 ms.
func formatDuration(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.3g µs", ns/1e3)
	case ns < 1e9:
		return fmt.Sprintf("%.3g ms", ns/1e6)
	}
	return fmt.Sprintf("%.3g s", ns/1e9)
}

// formatCount prints a median count: whole, or with a decimal when the median of an even
// number of runs fell between two.
func formatCount(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func formatRatio(x float64, isRef bool) string {
	if isRef {
		return "1"
	}
	switch {
	case x < 0.1:
		return fmt.Sprintf("%.2g", x)
	case x < 10:
		return fmt.Sprintf("%.2f", x)
	}
	return fmt.Sprintf("%.0f", x)
}
