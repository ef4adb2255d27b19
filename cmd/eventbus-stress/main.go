// Command eventbus-stress runs a bounded load on an embedded bus, with the faults you ask
// for, shows its progress live, and ends with the reliability figures: attempted, accepted,
// handled, dead-lettered, lost, duplicated, reordered. It exits with status 1 if any event
// was lost, duplicated, reordered or delivered though its Publish failed.
//
//	go run ./cmd/eventbus-stress -events 1000000 -fail 0.2 -panic 0.05
//
// With -suite it runs the reliability suite of internal/reliability at full size instead,
// and with -markdown FILE writes its table there (this is how docs/RELIABILITY.md is made):
//
//	go run ./cmd/eventbus-stress -suite -markdown docs/RELIABILITY.md
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/ae30fb47/eventbus/internal/reliability"
)

func main() {
	var l reliability.Load
	flag.IntVar(&l.Events, "events", 1_000_000, "events to publish, in all")
	flag.DurationVar(&l.PublishFor, "duration", 0, "stop publishing after this long (0: publish every event)")
	flag.IntVar(&l.Keys, "keys", 10_000, "ordering keys")
	flag.IntVar(&l.Publishers, "publishers", 4, "publishing goroutines")
	flag.IntVar(&l.Subscribers, "subscribers", 4, "subscribers, each receiving every event")
	flag.IntVar(&l.Concurrency, "concurrency", 0, "workers per subscriber (0: GOMAXPROCS)")
	flag.IntVar(&l.Buffer, "buffer", 0, "buffer per subscriber (0: the default)")
	flag.Float64Var(&l.FailRate, "fail", 0, "fraction of handler attempts that return an error")
	flag.Float64Var(&l.PanicRate, "panic", 0, "fraction of handler attempts that panic")
	flag.IntVar(&l.Retry.MaxAttempts, "attempts", 3, "attempts per event, the first included")
	flag.DurationVar(&l.Retry.InitialBackoff, "backoff", time.Millisecond, "wait before the first retry")
	flag.DurationVar(&l.Delay, "delay", 0, "work per handler attempt (spinning)")
	seed := flag.Uint64("seed", uint64(time.Now().UnixNano()), "seed of the handlers' fates")
	suite := flag.Bool("suite", false, "run the reliability suite instead of one load")
	markdown := flag.String("markdown", "", "with -suite, write the table of figures to this file")
	flag.Parse()
	l.Seed = *seed

	if *suite {
		os.Exit(runSuite(*markdown))
	}
	live := isTerminal(os.Stderr)
	l.Progress = func(p reliability.Progress) {
		line := fmt.Sprintf("%6.1fs  %9.0f events/s  accepted %d  in flight %d  retried %d  dead-lettered %d",
			p.Elapsed.Seconds(), float64(p.Ended)/p.Elapsed.Seconds(), p.Accepted, p.InFlight, p.Retries, p.DeadLettered)
		if live {
			fmt.Fprintf(os.Stderr, "\r%-100s", line)
		} else if int(p.Elapsed/time.Second) != int((p.Elapsed-100*time.Millisecond)/time.Second) {
			fmt.Fprintln(os.Stderr, line) // once a second when not on a terminal
		}
	}
	r, err := reliability.Run(l)
	if live {
		fmt.Fprintln(os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "eventbus-stress:", err)
		os.Exit(2)
	}
	printTable(os.Stdout, []row{{name: "load", r: r}})
	if err := r.Check(); err != nil {
		fmt.Fprintln(os.Stderr, "FAILED:", err)
		os.Exit(1)
	}
	if r.DeadLettered != r.ExpectedDeadLetters {
		fmt.Fprintf(os.Stderr, "FAILED: dead-lettered %d; the fates dictate %d\n", r.DeadLettered, r.ExpectedDeadLetters)
		os.Exit(1)
	}
}

type row struct {
	name string
	r    reliability.Result
	err  error
}

func runSuite(markdown string) int {
	var rows []row
	status := 0
	for _, sc := range reliability.Scenarios {
		fmt.Fprintf(os.Stderr, "running %s ...\n", sc.Name)
		r, err := sc.Run(false)
		if err == nil {
			err = r.Check()
		}
		if err != nil {
			status = 1
			fmt.Fprintf(os.Stderr, "FAILED %s: %v\n", sc.Name, err)
		}
		rows = append(rows, row{name: sc.Name, r: r, err: err})
	}
	printTable(os.Stdout, rows)
	if markdown != "" {
		var b strings.Builder
		writeMarkdown(&b, rows)
		if err := os.WriteFile(markdown, []byte(b.String()), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "eventbus-stress:", err)
			return 2
		}
	}
	return status
}

var header = []string{"scenario", "events", "attempted", "accepted", "handled", "dead-lettered", "lost", "duplicated", "reordered", "unexpected", "retries", "panics", "goroutines left", "peak heap", "time"}

func cells(w row) []string {
	r := w.r
	return []string{w.name, fmt.Sprint(r.Events), fmt.Sprint(r.Attempted), fmt.Sprint(r.Accepted), fmt.Sprint(r.Handled),
		fmt.Sprint(r.DeadLettered), fmt.Sprint(r.Lost), fmt.Sprint(r.Duplicated), fmt.Sprint(r.Reordered), fmt.Sprint(r.Unexpected),
		fmt.Sprint(r.Retries), fmt.Sprint(r.Panics), fmt.Sprint(r.GoroutinesLeft),
		fmt.Sprintf("%.1f MiB", float64(r.PeakHeap)/(1<<20)), r.Duration.Round(time.Millisecond).String()}
}

func printTable(w io.Writer, rows []row) {
	widths := make([]int, len(header))
	all := [][]string{header}
	for _, r := range rows {
		all = append(all, cells(r))
	}
	for _, c := range all {
		for i, s := range c {
			widths[i] = max(widths[i], len(s))
		}
	}
	for _, c := range all {
		for i, s := range c {
			fmt.Fprintf(w, "%-*s  ", widths[i], s)
		}
		fmt.Fprintln(w)
	}
	for _, r := range rows {
		if r.r.Note != "" {
			fmt.Fprintf(w, "%s: %s\n", r.name, r.r.Note)
		}
	}
}

func writeMarkdown(b *strings.Builder, rows []row) {
	fmt.Fprintf(b, "# Reliability figures\n\n")
	fmt.Fprintf(b, "Generated by `go run ./cmd/eventbus-stress -suite -markdown docs/RELIABILITY.md` on %s: %s %s/%s, %s, %d CPUs (GOMAXPROCS %d).\n",
		time.Now().UTC().Format("2006-01-02"), runtime.Version(), runtime.GOOS, runtime.GOARCH, cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Fprintf(b, "The same scenarios run, smaller under `-short`, as `TestScenarios` in internal/reliability.\n\n")
	fmt.Fprintf(b, "Every event carries (publisher, key, sequence). Per (event, subscriber): **lost** = accepted (Publish returned nil) but neither handled nor dead-lettered; **duplicated** = ended more than once; **unexpected** = ended though its Publish returned an error; **reordered** = ended before an earlier event of its publisher and key. Handled and dead-lettered count (event, subscriber) pairs. Peak heap is the peak of heap objects sampled every 10 ms, after a GC at the start of each run: it includes the checker's own tables (about 18 bytes per event per subscriber) and garbage not yet collected, such as the stacks of recovered panics in scenario 3.\n\n")
	fmt.Fprintf(b, "| %s |\n|%s\n", strings.Join(header, " | "), strings.Repeat("---|", len(header)))
	for _, r := range rows {
		fmt.Fprintf(b, "| %s |\n", strings.Join(cells(r), " | "))
	}
	fmt.Fprintf(b, "\n## Each scenario's own bar\n\n")
	for i, sc := range reliability.Scenarios {
		verdict := "met"
		if rows[i].err != nil {
			verdict = "MISSED: " + rows[i].err.Error()
		}
		fmt.Fprintf(b, "- **%s**: %s. %s", sc.Name, sc.Bar, verdict)
		if n := rows[i].r.Note; n != "" {
			fmt.Fprintf(b, " (%s)", n)
		}
		fmt.Fprintln(b, ".")
	}
}

// isTerminal reports whether f is a character device, where progress redraws one line.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// cpuModel returns the processor's name from /proc/cpuinfo, or "unknown CPU".
func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(data)) {
		if name, ok := strings.CutPrefix(line, "model name"); ok {
			return strings.TrimSpace(strings.TrimLeft(name, " \t:"))
		}
	}
	return "unknown CPU"
}
