package reliability

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ae30fb47/eventbus"
)

// churn publishes to two lasting subscribers while others subscribe and unsubscribe. A
// lasting subscriber must end every accepted event; a churning one every event whose
// Publish began after its Subscribe returned and returned before its Close began (events
// published meanwhile may or may not reach it), and none twice.
func churn(short bool) (Result, error) {
	const publishers, keys = 2, 100
	perPub := size(short, 200_000, 40_000) / publishers
	chk := NewChecker(publishers, perPub, keys, "lasting0", "lasting1")
	goroutinesBefore := runtime.NumGoroutine()
	sampler := startHeapSampler()
	start := time.Now()

	var clock atomic.Int64 // a logical clock ordering publishes against (un)subscribes
	began := make([]int64, publishers*perPub)
	returned := make([]int64, publishers*perPub)

	bus := eventbus.New(eventbus.WithDeadLetter(eventbus.DiscardDeadLetters))
	topic := eventbus.NewTopic[Tag]("churn")
	for s := range 2 {
		name := "lasting" + strconv.Itoa(s)
		if _, err := eventbus.Subscribe(bus, topic, name, func(_ context.Context, ev eventbus.Event[Tag]) error {
			chk.Handled(s, ev.Payload)
			return nil
		}, eventbus.WithBuffer(256)); err != nil {
			return Result{}, err
		}
	}

	type churner struct {
		ends               map[int]int
		subscribed, closed int64
		closeErr           error
	}
	var churners []*churner
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			c := &churner{ends: make(map[int]int)}
			var mu sync.Mutex
			sub, err := eventbus.Subscribe(bus, topic, "churner"+strconv.Itoa(i), func(_ context.Context, ev eventbus.Event[Tag]) error {
				mu.Lock()
				c.ends[chk.index(ev.Payload)]++
				mu.Unlock()
				return nil
			}, eventbus.WithBuffer(64), eventbus.WithConcurrency(1))
			if err != nil {
				c.closeErr = err
				churners = append(churners, c)
				return
			}
			c.subscribed = clock.Add(1)
			time.Sleep(time.Duration(i%5) * 200 * time.Microsecond)
			c.closed = clock.Add(1)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			c.closeErr = sub.Close(ctx)
			cancel()
			churners = append(churners, c)
		}
	})

	var pubs sync.WaitGroup
	for p := range publishers {
		pubs.Go(func() {
			for seq := range perPub {
				t := Tag{Publisher: p, Seq: seq, Key: int(mix(uint64(p)<<32|uint64(seq)) % keys)}
				i := chk.index(t)
				began[i] = clock.Add(1)
				err := eventbus.Publish(context.Background(), bus, topic, t, eventbus.WithKey(strconv.Itoa(t.Key)))
				returned[i] = clock.Add(1)
				chk.Published(t, err)
			}
		})
	}
	pubs.Wait()
	close(stop)
	wg.Wait()
	closeStart := time.Now()
	closeErr := bus.Close(context.Background())
	var r Result
	r.CloseErr, r.CloseTook = closeErr, time.Since(closeStart)
	r.Duration = time.Since(start)
	r.PeakHeap = sampler.stop()
	r.GoroutinesLeft = goroutinesLeft(goroutinesBefore)
	r.Figures = chk.Figures()
	r.Events = publishers * perPub

	var checked int64
	for ci, c := range churners {
		if c.closeErr != nil {
			r.Violations = append(r.Violations, fmt.Sprintf("churner %d: %v", ci, c.closeErr))
			continue
		}
		for i, n := range c.ends {
			r.Handled += int64(n)
			if n > 1 {
				r.Duplicated++
			}
			if !chk.accepted[i].Load() {
				r.Unexpected++
			}
		}
		for i := range began {
			if began[i] > c.subscribed && returned[i] < c.closed && chk.accepted[i].Load() {
				checked++
				if c.ends[i] == 0 {
					r.Lost++
					if len(r.Violations) < 5 {
						r.Violations = append(r.Violations, fmt.Sprintf("churner %d: event %d/%d published while subscribed, never handled", ci, i/perPub, i%perPub))
					}
				}
			}
		}
	}
	r.Throughput = float64(r.Handled) / r.Duration.Seconds()
	r.Note = fmt.Sprintf("%d subscriptions came and went; %d (event, churner) pairs required and checked", len(churners), checked)
	if closeErr != nil {
		return r, fmt.Errorf("bus.Close() = %v", closeErr)
	}
	if len(churners) < 3 || checked == 0 {
		return r, fmt.Errorf("only %d churners, %d pairs checked: the scenario did not churn", len(churners), checked)
	}
	return r, nil
}

type hop struct {
	Seed, TTL int
}

// reentrant publishes seeds that handlers of A and B forward to each other (B to A twice)
// until their TTL runs out, under one-event buffers: a cycle of waits that deadlocks a bus
// of plain bounded queues.
func reentrant(short bool) (Result, error) {
	seeds := size(short, 2000, 200)
	const ttl = 6
	goroutinesBefore := runtime.NumGoroutine()
	sampler := startHeapSampler()
	start := time.Now()
	var handled, dead atomic.Int64
	bus := eventbus.New(eventbus.WithDeadLetter(eventbus.DeadLetterFunc(func(context.Context, eventbus.DeadLetter) error {
		dead.Add(1)
		return nil
	})))
	ta, tb := eventbus.NewTopic[hop]("a"), eventbus.NewTopic[hop]("b")
	forward := func(to eventbus.Topic[hop], twice bool) func(context.Context, eventbus.Event[hop]) error {
		return func(ctx context.Context, ev eventbus.Event[hop]) error {
			handled.Add(1)
			if ev.Payload.TTL == 0 {
				return nil
			}
			next := hop{ev.Payload.Seed, ev.Payload.TTL - 1}
			if twice {
				if err := eventbus.Publish(ctx, bus, to, next); err != nil {
					return err
				}
			}
			return eventbus.Publish(ctx, bus, to, next)
		}
	}
	for _, s := range []struct {
		t     eventbus.Topic[hop]
		to    eventbus.Topic[hop]
		twice bool
	}{{ta, tb, false}, {tb, ta, true}} {
		if _, err := eventbus.Subscribe(bus, s.t, "sub-"+s.t.Name(), forward(s.to, s.twice),
			eventbus.WithBuffer(1), eventbus.WithConcurrency(3), eventbus.WithRetry(fastRetry)); err != nil {
			return Result{}, err
		}
	}
	var accepted atomic.Int64
	done := make(chan error, 1)
	go func() {
		var pubs sync.WaitGroup
		for p := range 2 {
			pubs.Go(func() {
				for i := p; i < seeds; i += 2 {
					if eventbus.Publish(context.Background(), bus, ta, hop{i, ttl}) == nil {
						accepted.Add(1)
					}
				}
			})
		}
		pubs.Wait()
		done <- bus.Close(context.Background())
	}()
	var r Result
	select {
	case r.CloseErr = <-done:
	case <-time.After(2 * time.Minute):
		return r, fmt.Errorf("deadlock: not done after 2 minutes, %d hops handled", handled.Load())
	}
	r.Duration = time.Since(start)
	r.PeakHeap = sampler.stop()
	r.GoroutinesLeft = goroutinesLeft(goroutinesBefore)

	// hops(A, t) = 1 + hops(B, t-1); hops(B, t) = 1 + 2 hops(A, t-1); both 1 at t = 0.
	hopsA, hopsB := int64(1), int64(1)
	for range ttl {
		hopsA, hopsB = 1+hopsB, 1+2*hopsA
	}
	want := accepted.Load() * hopsA
	r.Events = seeds
	r.Attempted, r.Accepted = int64(seeds), accepted.Load()
	r.Handled, r.DeadLettered = handled.Load(), dead.Load()
	r.Lost = max(0, want-r.Handled-r.DeadLettered)
	r.Duplicated = max(0, r.Handled+r.DeadLettered-want)
	r.Throughput = float64(r.Handled) / r.Duration.Seconds()
	r.Note = fmt.Sprintf("%d hops from %d seeds", r.Handled, r.Accepted)
	switch {
	case r.CloseErr != nil:
		return r, fmt.Errorf("bus.Close() = %v", r.CloseErr)
	case r.Accepted != int64(seeds) || r.DeadLettered != 0:
		return r, fmt.Errorf("accepted %d of %d seeds, %d dead letters; want all and none", r.Accepted, seeds, r.DeadLettered)
	}
	return r, nil
}
