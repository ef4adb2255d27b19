package eventbus

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

type keyed struct {
	Key string
	Seq int
}

var keyedTopic = NewTopic[keyed]("keyed")

// TestPerKeyOrderAndExclusion publishes many keys from several goroutines into subscribers
// with several workers and flaky handlers, and checks that each key's events are handled in
// publish order, one at a time, retries included.
func TestPerKeyOrderAndExclusion(t *testing.T) {
	const publishers, keysPer, perKey = 4, 25, 40
	b := New()
	type state struct {
		inFlight atomic.Int32
		mu       sync.Mutex
		done     []int
	}
	var keys sync.Map // key -> *state
	var violations atomic.Int32
	for _, conc := range []int{1, 4} {
		name := fmt.Sprintf("c%d", conc)
		mustSubscribe(t, b, keyedTopic, name, func(_ context.Context, ev Event[keyed]) error {
			v, _ := keys.LoadOrStore(name+ev.Key, &state{})
			st := v.(*state)
			if st.inFlight.Add(1) != 1 {
				violations.Add(1)
			}
			defer st.inFlight.Add(-1)
			runtime.Gosched()
			if rand.IntN(4) == 0 {
				return errors.New("flaky") // retried; order must hold across the retry
			}
			st.mu.Lock()
			st.done = append(st.done, ev.Payload.Seq)
			st.mu.Unlock()
			return nil
		}, WithConcurrency(conc), WithBuffer(64), WithRetry(RetryPolicy{MaxAttempts: 50, InitialBackoff: time.Microsecond, MaxBackoff: 50 * time.Microsecond}))
	}
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for seq := range perKey {
				for k := range keysPer {
					key := fmt.Sprintf("p%d-k%d", p, k)
					mustPublish(t, b, keyedTopic, keyed{key, seq}, WithKey(key))
				}
			}
		})
	}
	wg.Wait()
	closeBus(t, b)
	if v := violations.Load(); v > 0 {
		t.Errorf("%d times, two events of one key were handled at once", v)
	}
	n := 0
	keys.Range(func(k, v any) bool {
		n++
		done := v.(*state).done
		if len(done) != perKey {
			t.Errorf("key %s: handled %d events; want %d", k, len(done), perKey)
			return true
		}
		for i, seq := range done {
			if seq != i {
				t.Errorf("key %s: handled order %v; want 0..%d in order", k, done, perKey-1)
				break
			}
		}
		return true
	})
	if want := 2 * publishers * keysPer; n != want {
		t.Errorf("saw %d (subscriber, key) pairs; want %d", n, want)
	}
}

// TestDifferentKeysRunInParallel checks that a subscriber runs up to its concurrency of
// handlers at once for distinct keys, and that unkeyed events also run in parallel.
func TestDifferentKeysRunInParallel(t *testing.T) {
	for _, withKey := range []bool{true, false} {
		t.Run(fmt.Sprintf("keyed=%v", withKey), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := New()
				var inFlight, peak atomic.Int32
				release := make(chan struct{})
				mustSubscribe(t, b, keyedTopic, "s", func(_ context.Context, ev Event[keyed]) error {
					n := inFlight.Add(1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					<-release
					inFlight.Add(-1)
					return nil
				}, WithConcurrency(3))
				for i := range 5 {
					var opts []PublishOption
					if withKey {
						opts = append(opts, WithKey(fmt.Sprint(i)))
					}
					mustPublish(t, b, keyedTopic, keyed{}, opts...)
				}
				// Idle workers join busy ones that have not come back for more events
				// within a tick of the bus clock, one at a time.
				time.Sleep(10 * tick)
				synctest.Wait()
				if got := inFlight.Load(); got != 3 {
					t.Errorf("handlers in flight = %d; want the concurrency, 3", got)
				}
				close(release)
				closeBus(t, b)
				if got := peak.Load(); got != 3 {
					t.Errorf("peak handlers in flight = %d; want 3", got)
				}
			})
		})
	}
}

// TestRetryBackoffHoldsOnlyItsKey is the parallel-consumer model: with one worker, an event
// waiting out its retry backoff holds up later events of its own key only.
func TestRetryBackoffHoldsOnlyItsKey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		var mu sync.Mutex
		var handled []string
		failOnce := true
		mustSubscribe(t, b, keyedTopic, "s", func(_ context.Context, ev Event[keyed]) error {
			mu.Lock()
			defer mu.Unlock()
			name := fmt.Sprintf("%s%d", ev.Key, ev.Payload.Seq)
			if name == "a1" && failOnce {
				failOnce = false
				return errors.New("try again")
			}
			handled = append(handled, name)
			return nil
		}, WithConcurrency(1), WithRetry(RetryPolicy{InitialBackoff: time.Second, Jitter: -1}))
		start := time.Now()
		mustPublish(t, b, keyedTopic, keyed{Seq: 1}, WithKey("a"))
		mustPublish(t, b, keyedTopic, keyed{Seq: 2}, WithKey("a"))
		for i := 1; i <= 3; i++ {
			mustPublish(t, b, keyedTopic, keyed{Seq: i}, WithKey("b"))
		}
		synctest.Wait()
		mu.Lock()
		if got, want := fmt.Sprint(handled), "[b1 b2 b3]"; got != want {
			t.Errorf("handled during a1's backoff = %s; want %s", got, want)
		}
		mu.Unlock()
		time.Sleep(time.Second)
		synctest.Wait()
		mu.Lock()
		if got, want := fmt.Sprint(handled), "[b1 b2 b3 a1 a2]"; got != want {
			t.Errorf("handled after the backoff = %s; want %s", got, want)
		}
		mu.Unlock()
		if elapsed := time.Since(start); elapsed != time.Second {
			t.Errorf("retry came after %v; want 1s", elapsed)
		}
		closeBus(t, b)
	})
}

// TestKeysThatShareAHash: keys that agree on their length and first and last eight bytes
// hash alike for the inflight sets; they must still be told apart: each in order, both in
// parallel.
func TestKeysThatShareAHash(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		k1, k2 := "tenant-a/1/order-17", "tenant-a/2/order-17"
		var mu sync.Mutex
		inFlight, peak := map[string]int{}, 0
		var order []string
		release := make(chan struct{})
		mustSubscribe(t, b, keyedTopic, "t", func(_ context.Context, ev Event[keyed]) error {
			mu.Lock()
			inFlight[ev.Key]++
			if inFlight[ev.Key] > 1 {
				t.Errorf("two events of %s in flight at once", ev.Key)
			}
			peak = max(peak, inFlight[k1]+inFlight[k2])
			order = append(order, fmt.Sprint(ev.Key[9:10], ev.Payload.Seq))
			mu.Unlock()
			<-release
			mu.Lock()
			inFlight[ev.Key]--
			mu.Unlock()
			return nil
		}, WithConcurrency(2))
		mustPublish(t, b, keyedTopic, keyed{Seq: 0}, WithKey(k1))
		synctest.Wait() // one worker runs k1's first event
		mustPublish(t, b, keyedTopic, keyed{Seq: 0}, WithKey(k2))
		for i := 1; i < 3; i++ {
			mustPublish(t, b, keyedTopic, keyed{Seq: i}, WithKey(k1))
			mustPublish(t, b, keyedTopic, keyed{Seq: i}, WithKey(k2))
		}
		time.Sleep(10 * tick) // the other worker joins for k2
		synctest.Wait()
		close(release)
		closeBus(t, b)
		if peak != 2 {
			t.Errorf("at most %d of the two keys ran at once; want 2", peak)
		}
		var got1, got2 []string
		for _, o := range order {
			if o[:1] == "1" {
				got1 = append(got1, o)
			} else {
				got2 = append(got2, o)
			}
		}
		if fmt.Sprint(got1) != "[10 11 12]" || fmt.Sprint(got2) != "[20 21 22]" {
			t.Errorf("handled %v and %v; want each key in order", got1, got2)
		}
	})
}
