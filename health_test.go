package eventbus

import (
	"context"
	"errors"
	"math"
	"math/big"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// busWithStuckSubscriber returns a bus whose health policy reports a buffer 90% full for
// 10s, with a subscriber "slow" of one worker and a buffer of 10 whose handler returns only
// once release is closed.
func busWithStuckSubscriber(t *testing.T) (*Bus, chan struct{}) {
	b := New(WithHealthPolicy(HealthPolicy{FullFor: 10 * time.Second}))
	release := make(chan struct{})
	mustSubscribe(t, b, orders, "slow", func(context.Context, Event[order]) error {
		<-release
		return nil
	}, WithConcurrency(1), WithBuffer(10))
	return b, release
}

func TestHealthOfAFullBuffer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, release := busWithStuckSubscriber(t)
		mustSubscribe(t, b, orders, "fast", func(context.Context, Event[order]) error { return nil })
		if err := b.Ready(); err != nil {
			t.Fatalf("Ready() of an idle bus = %v; want nil", err)
		}
		for range 9 { // 90% of the slow one's buffer
			mustPublish(t, b, orders, order{})
		}
		synctest.Wait()
		if err := b.Ready(); err != nil {
			t.Errorf("Ready() just after the buffer filled = %v; want nil until FullFor passes", err)
		}
		time.Sleep(11 * time.Second)
		h := b.Health()
		if len(h.Subscriptions) != 2 || h.Subscriptions[0].Name != "fast" || !h.Subscriptions[0].Healthy() {
			t.Fatalf("Health() = %+v; want fast healthy, then slow", h)
		}
		if p := h.Subscriptions[1].Problems; len(p) != 1 || !strings.Contains(p[0], "buffer at least 90% full for 11s") {
			t.Errorf("slow's problems = %q; want its buffer full for 11s", p)
		}
		if err := b.Ready(); err == nil || !strings.Contains(err.Error(), "order.created/slow: buffer") {
			t.Errorf("Ready() = %v; want an error naming the slow subscription", err)
		}
		close(release)
		synctest.Wait()
		if err := b.Ready(); err != nil {
			t.Errorf("Ready() once drained = %v; want nil", err)
		}
		closeBus(t, b)
		if err := b.Ready(); !errors.Is(err, ErrClosed) {
			t.Errorf("Ready() after Close = %v; want ErrClosed", err)
		}
	})
}

func TestHealthOfDeadLettersAndCircuit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithDeadLetter(DiscardDeadLetters), WithHealthPolicy(HealthPolicy{DeadLetterRatio: 0.2, MinDeadLetters: 3}))
		var failing atomic.Bool
		failing.Store(true)
		mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
			if ev.Payload.ID == "bad" {
				return Permanent(errFlaky)
			}
			return nil
		}, WithConcurrency(1))
		mustSubscribe(t, b, orders, "breaker", func(context.Context, Event[order]) error {
			if failing.Load() {
				return errFlaky
			}
			return nil
		}, WithConcurrency(1), WithRetry(RetryPolicy{MaxAttempts: 1}), WithCircuitBreaker(2, time.Minute))
		publish := func(id string, n int) {
			for range n {
				mustPublish(t, b, orders, order{ID: id})
			}
			synctest.Wait()
		}
		publish("bad", 2) // 2 of 2 dead-lettered, fewer than MinDeadLetters; the breaker opens
		h := b.Health()
		if !h.Subscriptions[1].Healthy() || h.Subscriptions[0].Healthy() || h.Subscriptions[0].Problems[0] != "circuit breaker open" {
			t.Fatalf("Health() = %+v; want s healthy and the breaker's subscription open", h)
		}
		publish("good", 8)
		publish("bad", 1) // 3 of 11 dead-lettered: over 20% and 3 of them
		if p := b.Health().Subscriptions[1].Problems; len(p) != 1 || p[0] != "3 of the 11 events ended recently were dead-lettered" {
			t.Errorf("s's problems = %q; want 3 of 11 dead-lettered", p)
		}
		publish("good", 5) // 3 of 16: under 20%
		if p := b.Health().Subscriptions[1].Problems; len(p) != 0 {
			t.Errorf("s's problems after more good events = %q; want none", p)
		}
		publish("bad", 2)
		failing.Store(false)                    // the breaker's next probe succeeds
		time.Sleep(2*time.Minute + time.Second) // the ratio covers the last minute or two only
		if h := b.Health(); h.Err() != nil {
			t.Errorf("Health() two minutes on = %v; want every subscription healthy", h.Err())
		}
		closeBus(t, b)
	})
}

func TestWithHealthPolicyRejectsBadFields(t *testing.T) {
	for _, p := range []HealthPolicy{{FullFor: -1}, {DeadLetterRatio: 1.5}, {DeadLetterRatio: -0.1}, {MinDeadLetters: -1}} {
		func() {
			defer func() {
				if r, _ := recover().(string); !strings.HasPrefix(r, "eventbus: HealthPolicy: ") {
					t.Errorf("WithHealthPolicy(%+v) panicked with %q; want a HealthPolicy message", p, r)
				}
			}()
			WithHealthPolicy(p)
		}()
	}
}

// TestNearlyFullCount: nearlyFullPercent of the capacity, rounded up, for every capacity,
// the largest included.
func TestNearlyFullCount(t *testing.T) {
	for c := 1; c <= 1000; c++ {
		want := (int64(c)*nearlyFullPercent + 99) / 100
		if got := nearlyFullCount(c); got != want {
			t.Errorf("nearlyFullCount(%d) = %d; want %d", c, got, want)
		}
	}
	want := new(big.Int).Mul(big.NewInt(math.MaxInt), big.NewInt(nearlyFullPercent))
	want.Add(want, big.NewInt(99)).Quo(want, big.NewInt(100))
	if got := nearlyFullCount(math.MaxInt); got != want.Int64() {
		t.Errorf("nearlyFullCount(MaxInt) = %d; want %d", got, want)
	}
}

// TestHealthOfAnUnboundedBuffer: an idle subscription with the largest buffer is healthy.
func TestHealthOfAnUnboundedBuffer(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error { return nil }, WithBuffer(math.MaxInt))
		mustPublish(t, b, orders, order{})
		synctest.Wait()
		b.Health()
		time.Sleep(time.Hour)
		if err := b.Ready(); err != nil {
			t.Errorf("Ready() = %v; want nil", err)
		}
		closeBus(t, b)
	})
}

// TestFullForCountsFromWhenTheBufferFilled: the nearly-full period runs from when the buffer
// became nearly full, even if nothing but Health looked at it since; not from Health's
// first look.
func TestFullForCountsFromWhenTheBufferFilled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b, release := busWithStuckSubscriber(t)
		for range 9 { // 90% of the buffer: no publisher waits, no handler ends
			mustPublish(t, b, orders, order{})
		}
		synctest.Wait()
		time.Sleep(6 * time.Second)
		if err := b.Ready(); err != nil {
			t.Errorf("Ready() 6s after the buffer filled = %v; want nil until FullFor passes", err)
		}
		time.Sleep(5 * time.Second)
		if p := b.Health().Subscriptions[0].Problems; len(p) != 1 || !strings.Contains(p[0], "buffer at least 90% full for 11s") {
			t.Errorf("problems 11s after the buffer filled = %q; want its buffer full for 11s", p)
		}
		close(release)
		closeBus(t, b)
	})
}
