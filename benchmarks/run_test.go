package benchmarks

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A run drives one scenario: as a benchmark (b.Loop, b.RunParallel, timed) or as a test
// (a fixed number of events, under -race in CI). The scenarios are written once against it.
type run interface {
	// next reports whether to publish another event: b.Loop, or a count.
	next() bool
	// parallel runs body on each of publishers goroutines at once, each publishing while
	// its next says so: b.RunParallel, or goroutines sharing a count.
	parallel(body func(pub int, next func() bool))
	// publishers is how many goroutines parallel runs.
	publishers() int
	// resumeTimer and stopTimer bracket the wait for a backlog to drain once b.Loop is
	// done (b.Loop stops the timer when it returns false, but the scenarios are end to
	// end).
	resumeTimer()
	stopTimer()
	// reportMetric reports a custom metric (a benchmark's p50-ns, p99-ns); tests ignore it.
	reportMetric(v float64, unit string)
	// stall is how long a scenario waits without any delivery before it declares the
	// events still expected missing.
	stall() time.Duration
}

// benchRun runs a scenario as a benchmark.
type benchRun struct{ b *testing.B }

func (r benchRun) next() bool                          { return r.b.Loop() }
func (r benchRun) resumeTimer()                        { r.b.StartTimer() }
func (r benchRun) stopTimer()                          { r.b.StopTimer() }
func (r benchRun) reportMetric(v float64, unit string) { r.b.ReportMetric(v, unit) }
func (r benchRun) stall() time.Duration                { return 10 * time.Second }

// publishers is what b.RunParallel starts: GOMAXPROCS goroutines (no SetParallelism).
func (r benchRun) publishers() int { return runtime.GOMAXPROCS(0) }

func (r benchRun) parallel(body func(pub int, next func() bool)) {
	var pubs atomic.Int32
	r.b.ResetTimer()
	r.b.RunParallel(func(pb *testing.PB) {
		body(int(pubs.Add(1)-1), pb.Next)
	})
}

// testRun runs a scenario as a test, with events events.
type testRun struct {
	events     int
	published  int
	stallAfter time.Duration
}

func newTestRun(events int) *testRun {
	return &testRun{events: events, stallAfter: 10 * time.Second}
}

func (r *testRun) next() bool {
	if r.published == r.events {
		return false
	}
	r.published++
	return true
}

func (r *testRun) publishers() int { return max(2, runtime.GOMAXPROCS(0)) }

// parallel gives each publisher an equal share of the events, so that every publisher
// publishes some.
func (r *testRun) parallel(body func(pub int, next func() bool)) {
	pubs := r.publishers()
	var wg sync.WaitGroup
	for p := range pubs {
		share := r.events / pubs
		if p < r.events%pubs {
			share++
		}
		wg.Go(func() {
			body(p, func() bool {
				share--
				return share >= 0
			})
		})
	}
	wg.Wait()
}

func (r *testRun) resumeTimer()                 {}
func (r *testRun) stopTimer()                   {}
func (r *testRun) reportMetric(float64, string) {}
func (r *testRun) stall() time.Duration         { return r.stallAfter }
