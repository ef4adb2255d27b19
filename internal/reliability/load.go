package reliability

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ae30fb47/eventbus"
)

// Load describes one run: publishers publishing events over keys to subscribers whose
// handlers fail, panic or dawdle as told. Fates are decided by a hash of (subscriber,
// event, attempt), so the outcome each event must have is known in advance.
type Load struct {
	Events      int // in all, split evenly among publishers
	Keys        int
	Publishers  int
	Subscribers int
	Concurrency int // per subscriber; 0 for the bus default
	Buffer      int // per subscriber; 0 for the bus default

	FailRate  float64 // fraction of attempts that return an error
	PanicRate float64 // fraction of attempts that panic
	Retry     eventbus.RetryPolicy

	Delay       time.Duration // each attempt's work, spinning (or sleeping, see Sleep)
	Sleep       bool          // handlers sleep for Delay instead of spinning
	HotKeyDelay time.Duration // each attempt's work for key 0, if not 0

	// Stall, if not nil, blocks the handler of subscriber 0 until it is closed.
	Stall <-chan struct{}
	// PublishFor, if not 0, stops publishers that long after they began, even if they
	// have not published all their events.
	PublishFor time.Duration
	// PublishTimeout, if not 0, bounds each Publish call: a publisher whose Publish times
	// out (its ctx ends while a buffer is full) moves on to its next event.
	PublishTimeout time.Duration
	// CloseAfter, if not 0, closes the bus that long after publishing began, without
	// waiting for the publishers, with a deadline of half the work then queued: the
	// events accepted and not yet ended, times Delay, over the handlers that can run
	// side by side (GOMAXPROCS for spinning ones).
	CloseAfter time.Duration

	Seed     uint64
	Progress func(Progress) // if not nil, called every 100ms and once at the end
	OnStart  func(*Checker) // if not nil, called once the bus runs, before publishing
}

// Progress is a snapshot of a running load, for live display.
type Progress struct {
	Elapsed                                time.Duration
	Accepted, Ended, Retries, DeadLettered int64
	InFlight                               int64 // accepted × subscribers - ended
}

// Result is the outcome of one run.
type Result struct {
	Figures
	Events         int // events each publisher set out to publish, in all
	Duration       time.Duration
	CloseErr       error         // what Close returned
	CloseTook      time.Duration // from the start of Close to its return
	CloseDeadline  time.Duration // the deadline Close was given, if CloseAfter was set
	Backlog        int64         // events accepted and not yet ended when Close began
	GoroutinesLeft int           // goroutines alive after Close, beyond those before the bus
	PeakHeap       uint64        // bytes of live heap objects, sampled every 10ms
	// ExpectedDeadLetters and ExpectedPanics are what the fates dictate for the events
	// that were accepted, when the run was not cut short by Close.
	ExpectedDeadLetters, ExpectedPanics int64
	Throughput                          float64 // handled + dead-lettered per second, all subscribers
	ThroughputOthers                    float64 // the same, for events of keys other than 0
	Note                                string  // the scenario's own figure
}

type fate uint8

const (
	succeed fate = iota
	fail
	panics
)

// fateOf decides attempt (from 1) of event t for subscriber sub.
func (l *Load) fateOf(sub int, t Tag, attempt int) fate {
	if l.FailRate == 0 && l.PanicRate == 0 {
		return succeed
	}
	h := mix(l.Seed ^ uint64(sub)<<56 ^ uint64(t.Publisher)<<48 ^ uint64(t.Seq)<<8 ^ uint64(attempt))
	u := float64(h>>11) / (1 << 53)
	switch {
	case u < l.PanicRate:
		return panics
	case u < l.PanicRate+l.FailRate:
		return fail
	}
	return succeed
}

// mix is SplitMix64's finalizer.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// injectFaults returns middleware that makes each attempt of subscriber sub fail or panic
// as its fate says, by the bus's own attempt number, before the handler runs.
func (l *Load) injectFaults(chk *Checker, sub int) eventbus.Middleware {
	return func(next eventbus.Handler) eventbus.Handler {
		return func(ctx context.Context, d *eventbus.Delivery) error {
			f := l.fateOf(sub, d.Payload().(Tag), d.Attempt)
			chk.Attempt(d.Attempt, f == panics)
			switch f {
			case panics:
				panic(fmt.Sprintf("injected panic in %s attempt %d", d.Subscriber, d.Attempt))
			case fail:
				return errInjected
			}
			return next(ctx, d)
		}
	}
}

// errInjected is the error of an attempt fated to fail.
var errInjected = errors.New("reliability: injected failure")

// Run runs the load on a fresh bus and returns its figures.
func Run(l Load) (Result, error) {
	if l.Publishers < 1 || l.Subscribers < 1 || l.Keys < 1 || l.Events < l.Publishers {
		return Result{}, fmt.Errorf("reliability: bad load %+v", l)
	}
	retry, attempts := l.Retry, l.Retry.MaxAttempts
	if attempts == 0 {
		attempts = 3
	}
	perPub := l.Events / l.Publishers
	names := make([]string, l.Subscribers)
	for i := range names {
		names[i] = "sub" + strconv.Itoa(i)
	}
	chk := NewChecker(l.Publishers, perPub, l.Keys, names...)
	keys := make([]string, l.Keys)
	for i := range keys {
		keys[i] = strconv.Itoa(i)
	}

	goroutinesBefore := runtime.NumGoroutine()
	sampler := startHeapSampler()
	var othersEnded atomic.Int64
	var othersDone atomic.Int64 // nanoseconds since start when the last non-hot event ended
	start := time.Now()

	bus := eventbus.New(eventbus.WithDeadLetter(eventbus.DeadLetterFunc(func(_ context.Context, dl eventbus.DeadLetter) error {
		t := dl.Event.Payload.(Tag)
		chk.DeadLettered(chk.Subscriber(dl.Subscriber), t)
		if t.Key != 0 {
			othersEnded.Add(1)
			othersDone.Store(int64(time.Since(start)))
		}
		return nil
	})))
	topic := eventbus.NewTopic[Tag]("reliability")
	for s := range l.Subscribers {
		opts := []eventbus.SubscribeOption{eventbus.WithRetry(retry)}
		if l.Concurrency > 0 {
			opts = append(opts, eventbus.WithConcurrency(l.Concurrency))
		}
		if l.Buffer > 0 {
			opts = append(opts, eventbus.WithBuffer(l.Buffer))
		}
		if l.FailRate > 0 || l.PanicRate > 0 {
			opts = append(opts, eventbus.WithMiddleware(l.injectFaults(chk, s)))
		}
		_, err := eventbus.Subscribe(bus, topic, names[s], func(ctx context.Context, ev eventbus.Event[Tag]) error {
			t := ev.Payload
			if s == 0 && l.Stall != nil {
				select {
				case <-l.Stall:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			d := l.Delay
			if t.Key == 0 && l.HotKeyDelay > 0 {
				d = l.HotKeyDelay
			}
			if l.Sleep {
				time.Sleep(d)
			} else {
				spin(d)
			}
			chk.Handled(s, t)
			if t.Key != 0 {
				othersEnded.Add(1)
				othersDone.Store(int64(time.Since(start)))
			}
			return nil
		}, opts...)
		if err != nil {
			return Result{}, err
		}
	}

	stopProgress := startProgress(l.Progress, chk, l.Subscribers, start)
	if l.OnStart != nil {
		l.OnStart(chk)
	}
	var wg sync.WaitGroup
	for p := range l.Publishers {
		wg.Go(func() {
			for seq := range perPub {
				if l.PublishFor > 0 && time.Since(start) > l.PublishFor {
					return
				}
				k := int(mix(uint64(p)<<32|uint64(seq)) % uint64(l.Keys))
				t := Tag{Publisher: p, Seq: seq, Key: k}
				ctx, cancel := context.Background(), context.CancelFunc(func() {})
				if l.PublishTimeout > 0 {
					ctx, cancel = context.WithTimeout(ctx, l.PublishTimeout)
				}
				err := eventbus.Publish(ctx, bus, topic, t, eventbus.WithKey(keys[k]))
				cancel()
				chk.Published(t, err)
				if errors.Is(err, eventbus.ErrClosed) {
					return
				}
			}
		})
	}
	var res Result
	closeBus := func(ctx context.Context) {
		t := time.Now()
		res.CloseErr = bus.Close(ctx)
		res.CloseTook = time.Since(t)
	}
	if l.CloseAfter > 0 {
		time.Sleep(l.CloseAfter)
		backlog := chk.Accepted() * int64(l.Subscribers)
		for s := range l.Subscribers {
			backlog -= chk.Ended(s)
		}
		parallel := runtime.GOMAXPROCS(0) // spinning handlers share the cores
		if l.Sleep {
			parallel = l.Subscribers * max(l.Concurrency, 1) // sleeping ones run side by side
		}
		res.CloseDeadline = time.Duration(backlog) * l.Delay / time.Duration(parallel) / 2
		res.Backlog = backlog
		ctx, cancel := context.WithTimeout(context.Background(), res.CloseDeadline)
		closeBus(ctx)
		cancel()
		wg.Wait()
	} else {
		wg.Wait()
		closeBus(context.Background())
	}
	res.Duration = time.Since(start)
	stopProgress()
	res.PeakHeap = sampler.stop()
	res.GoroutinesLeft = goroutinesLeft(goroutinesBefore)

	res.Figures = chk.Figures()
	res.Events = perPub * l.Publishers
	ended := res.Handled + res.DeadLettered
	res.Throughput = float64(ended) / res.Duration.Seconds()
	if d := time.Duration(othersDone.Load()); d > 0 {
		res.ThroughputOthers = float64(othersEnded.Load()) / d.Seconds()
	}
	for i := range chk.accepted {
		if !chk.accepted[i].Load() {
			continue
		}
		t := Tag{Publisher: i / perPub, Seq: i % perPub}
		for s := range l.Subscribers {
			for n := 1; n <= attempts; n++ {
				f := l.fateOf(s, t, n)
				if f == panics {
					res.ExpectedPanics++
				}
				if f == succeed {
					break
				}
				if n == attempts {
					res.ExpectedDeadLetters++
				}
			}
		}
	}
	return res, nil
}

// spin works for d without sleeping: sleeps on this machine last far longer than asked.
func spin(d time.Duration) {
	if d <= 0 {
		return
	}
	for start := time.Now(); time.Since(start) < d; {
	}
}

// heapSampler records the peak of live heap objects.
type heapSampler struct {
	stopCh chan struct{}
	done   chan uint64
}

func startHeapSampler() *heapSampler {
	runtime.GC() // so that garbage of an earlier run does not count as this one's
	h := &heapSampler{stopCh: make(chan struct{}), done: make(chan uint64)}
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		var peak uint64
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-t.C:
			case <-h.stopCh:
				h.done <- peak
				return
			}
		}
	}()
	return h
}

func (h *heapSampler) stop() uint64 {
	close(h.stopCh)
	return <-h.done
}

// startProgress calls report every 100ms until the returned stop is called, and once more
// then.
func startProgress(report func(Progress), chk *Checker, subs int, start time.Time) (stop func()) {
	if report == nil {
		return func() {}
	}
	snapshot := func() Progress {
		p := Progress{Elapsed: time.Since(start), Retries: chk.retries.Load(), DeadLettered: chk.deadLettered.Load()}
		p.Accepted = chk.Accepted()
		for s := range subs {
			p.Ended += chk.Ended(s)
		}
		p.InFlight = p.Accepted*int64(subs) - p.Ended
		return p
	}
	stopCh, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				report(snapshot())
			case <-stopCh:
				report(snapshot())
				return
			}
		}
	}()
	return func() {
		close(stopCh)
		<-done
	}
}

// goroutinesLeft returns how many more goroutines run than before, giving those of the
// harness that were told to stop (not the bus's: Close waits for those) a second to exit.
func goroutinesLeft(before int) int {
	n := runtime.NumGoroutine() - before
	for deadline := time.Now().Add(time.Second); n > 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
		n = runtime.NumGoroutine() - before
	}
	return max(0, n)
}
