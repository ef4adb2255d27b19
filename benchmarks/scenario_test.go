package benchmarks

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// A scenario is one workload, run against each of its libraries: as a benchmark
// (Benchmark<name>/<library>) and as a test on a few events (TestScenarios).
type scenario struct {
	name       string // the benchmark's name after "Benchmark"
	libs       []library
	run        func(r run, lib library) error
	testEvents int // events published by TestScenarios, under -race
}

var (
	scenarioA = scenario{"A_OneSubscriber", peers, func(r run, lib library) error {
		return throughput(r, lib, 1)
	}, 20000}
	scenarioB = scenario{"B_TenSubscribers", peers, func(r run, lib library) error {
		return throughput(r, lib, 10)
	}, 2000}
	scenarioC = scenario{"C_KeysOrdered", peers, keysOrdered, 20000}
	scenarioD = scenario{"D_IdleLatency", peers, idleLatency, 200}
	scenarioE = scenario{"E_Guarantees", guarantees, func(r run, lib library) error {
		return throughput(r, lib, 1)
	}, 20000}
	scenarioF = scenario{"F_ParallelPublishers", peers, parallelPublishers, 20000}

	scenarios = []scenario{scenarioA, scenarioB, scenarioC, scenarioD, scenarioE, scenarioF}
)

// bench runs the scenario as one sub-benchmark per library.
func (sc scenario) bench(b *testing.B) {
	for _, lib := range sc.libs {
		b.Run(lib.name, func(b *testing.B) {
			b.ReportAllocs()
			if err := sc.run(benchRun{b}, lib); err != nil {
				if reason, ok := isSkip(err); ok {
					b.Skip(reason)
				}
				b.Fatal(err)
			}
		})
	}
}

// throughput publishes events from one goroutine to subs subscribers, as fast as the
// library takes them, then waits until every subscriber has handled every event (scenarios
// A, B and E). ns/op is per published event, from Publish to the last handler.
func throughput(r run, lib library, subs int) error {
	s := newUnorderedSink(subs, 1)
	inst, err := lib.start(config{subscribers: subs, deliver: s.deliver})
	if err != nil {
		return err
	}
	var n uint64
	for r.next() {
		if err := inst.publish(Msg{Seq: n}); err != nil {
			return abandon(inst, fmt.Errorf("publish event %d: %w", n, err))
		}
		n++
	}
	return finish(r, inst, s, []uint64{n})
}

// keysOrdered publishes round-robin over keyCount keys to one subscriber that must handle
// each key's events in publish order (scenario C). eventbus orders by WithKey; the other
// libraries shard by key over shardCount ordered consumers (see config.ordered).
func keysOrdered(r run, lib library) error {
	s := newOrderedSink(1)
	inst, err := lib.start(config{subscribers: 1, ordered: true, deliver: s.deliver})
	if err != nil {
		return err
	}
	var n uint64
	for r.next() {
		if err := inst.publish(Msg{Key: uint32(n % keyCount), Seq: n / keyCount}); err != nil {
			return abandon(inst, fmt.Errorf("publish event %d: %w", n, err))
		}
		n++
	}
	return finish(r, inst, s, perKey(n))
}

// perKey returns how many of n events published round-robin over keyCount keys each key
// got.
func perKey(n uint64) []uint64 {
	want := make([]uint64, keyCount)
	for k := range want {
		want[k] = n / keyCount
		if uint64(k) < n%keyCount {
			want[k]++
		}
	}
	return want
}

// idleLatency publishes one event, waits until its handler has run, and repeats, so the
// library is idle at every publish (scenario D). It reports the median and 99th percentile
// of the time from Publish to the handler's signal reaching the publisher (through a
// channel, the same for every library), as p50-ns and p99-ns.
func idleLatency(r run, lib library) error {
	s := newUnorderedSink(1, 1)
	handled := make(chan struct{}, 1)
	deliver := func(sub int, m Msg) {
		s.deliver(sub, m)
		select {
		case handled <- struct{}{}:
		default: // only a duplicate finds the signal still pending; the sink counts it
		}
	}
	inst, err := lib.start(config{subscribers: 1, deliver: deliver})
	if err != nil {
		return err
	}
	dog := watch(handled, r.stall())
	var lat latencies
	var n uint64
	for r.next() {
		start := time.Now()
		if err := inst.publish(Msg{Seq: n}); err != nil {
			dog.stop()
			return abandon(inst, fmt.Errorf("publish event %d: %w", n, err))
		}
		<-handled
		lat.record(time.Since(start))
		if dog.barked() {
			dog.stop()
			return abandon(inst, fmt.Errorf("event %d not handled within %v: %v", n, r.stall(), s.faultErr()))
		}
		n++
		dog.progress.Store(n)
	}
	dog.stop()
	if err := finish(r, inst, s, []uint64{n}); err != nil {
		return err
	}
	r.reportMetric(float64(lat.quantile(0.50)), "p50-ns")
	r.reportMetric(float64(lat.quantile(0.99)), "p99-ns")
	return nil
}

// parallelPublishers publishes from several goroutines at once (b.RunParallel: one per
// GOMAXPROCS) to one subscriber (scenario F). ns/op is wall time per published event.
func parallelPublishers(r run, lib library) error {
	pubs := r.publishers()
	s := newUnorderedSink(1, pubs)
	inst, err := lib.start(config{subscribers: 1, deliver: s.deliver})
	if err != nil {
		return err
	}
	counts := make([]uint64, pubs)
	var failed atomic.Pointer[error]
	r.parallel(func(p int, next func() bool) {
		if p >= pubs {
			err := fmt.Errorf("publisher %d of %d", p, pubs)
			failed.CompareAndSwap(nil, &err)
			return
		}
		var n uint64
		for next() {
			if err := inst.publish(Msg{Pub: uint32(p), Seq: n}); err != nil {
				fail := fmt.Errorf("publisher %d: publish event %d: %w", p, n, err)
				failed.CompareAndSwap(nil, &fail)
				return
			}
			n++
		}
		counts[p] = n
	})
	if err := failed.Load(); err != nil {
		return abandon(inst, *err)
	}
	return finish(r, inst, s, counts)
}

// finish waits, timed, until every subscriber has handled the events expected, then
// closes the library and checks that nothing else arrived.
func finish(r run, inst instance, s *sink, want []uint64) error {
	r.resumeTimer()
	err := s.wait(want, r.stall())
	r.stopTimer()
	if err != nil {
		return abandon(inst, err)
	}
	if err := inst.close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return s.verify(want)
}

// abandon closes inst after a failure, so that its goroutines stop all the same, and
// returns the failure.
func abandon(inst instance, err error) error {
	if cerr := inst.close(); cerr != nil {
		return fmt.Errorf("%w (and close: %v)", err, cerr)
	}
	return err
}

// A watchdog wakes a publisher waiting for a handler that never runs: when progress has
// not moved for stall, it sends the signal itself and barks.
type watchdog struct {
	progress atomic.Uint64
	bark     atomic.Bool
	done     chan struct{}
	stopped  chan struct{}
}

func watch(signal chan<- struct{}, stall time.Duration) *watchdog {
	d := &watchdog{done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(d.stopped)
		tick := time.NewTicker(stall / 10)
		defer tick.Stop()
		last, since := d.progress.Load(), time.Now()
		for {
			select {
			case <-d.done:
				return
			case <-tick.C:
			}
			if p := d.progress.Load(); p != last {
				last, since = p, time.Now()
				continue
			}
			if time.Since(since) > stall {
				d.bark.Store(true)
				select {
				case signal <- struct{}{}:
				default:
				}
				return
			}
		}
	}()
	return d
}

func (d *watchdog) barked() bool { return d.bark.Load() }

// stop ends the watchdog's goroutine and waits for it.
func (d *watchdog) stop() {
	close(d.done)
	<-d.stopped
}
