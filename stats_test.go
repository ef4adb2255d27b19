package eventbus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ae30fb47/eventbus/internal/window"
	"github.com/google/uuid"
)

// TestStatsCountEveryOutcome runs a known mix of outcomes and checks every counter exactly.
func TestStatsCountEveryOutcome(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithDeadLetter(DiscardDeadLetters))
		tries := map[string]int{}
		sub := mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
			tries[ev.Payload.ID]++
			switch {
			case ev.Payload.ID == "flaky" && tries["flaky"] == 1:
				return errors.New("first attempt fails")
			case ev.Payload.ID == "poison":
				return errors.New("always fails")
			}
			return nil
		}, WithConcurrency(1), WithDeduplication(time.Hour, 10),
			WithRetry(RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond}))
		mustSubscribe(t, b, orders, "other", func(context.Context, Event[order]) error { return nil })
		id := uuid.Must(uuid.NewV7())
		for range 5 {
			mustPublish(t, b, orders, order{ID: "fine"})
		}
		mustPublish(t, b, orders, order{ID: "flaky"})
		mustPublish(t, b, orders, order{ID: "poison"})
		mustPublish(t, b, orders, order{ID: "dup"}, WithID(id))
		mustPublish(t, b, orders, order{ID: "dup"}, WithID(id))
		if err := Publish(context.Background(), b, orders, order{ID: "fine"}, WithWait()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // the retries
		synctest.Wait()

		want := SubscriptionStats{
			Topic: "order.created", Name: "s",
			Delivered: 10, Handled: 9, Duplicates: 1, FailedAttempts: 4, Retries: 3,
			DeadLettered: 1, Capacity: DefaultBuffer, Circuit: CircuitClosed,
		}
		got := sub.Stats()
		got.Latency = Latency{}
		if got != want {
			t.Errorf("Stats() =\n%+v; want\n%+v", got, want)
		}
		st := b.Stats()
		if len(st.Topics) != 1 || st.Topics[0].Name != "order.created" || st.Topics[0].Published != 10 {
			t.Fatalf("Stats().Topics = %+v; want order.created with 10 published", st.Topics)
		}
		if subs := st.Topics[0].Subscriptions; len(subs) != 2 || subs[0].Name != "other" || subs[1].Name != "s" || subs[0].Handled != 10 {
			t.Errorf("Stats().Topics[0].Subscriptions = %+v; want other (10 handled), then s", subs)
		}
		closeBus(t, b)
	})
}

// TestStatsShowHeldEvents: events a stuck handler holds show as in flight and queued.
func TestStatsShowHeldEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		release := make(chan struct{})
		sub := mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
			<-release
			return nil
		}, WithConcurrency(1), WithBuffer(10))
		for range 4 {
			mustPublish(t, b, orders, order{})
		}
		synctest.Wait()
		if got := sub.Stats(); got.InFlight != 1 || got.Queued != 3 || got.Delivered != 4 || got.Handled != 0 || got.Capacity != 10 {
			t.Errorf("Stats() = %+v; want 1 in flight, 3 queued, 4 delivered, capacity 10", got)
		}
		close(release)
		closeBus(t, b)
		if got := sub.Stats(); got.InFlight != 0 || got.Queued != 0 || got.Handled != 4 {
			t.Errorf("Stats() after Close = %+v; want nothing held, 4 handled", got)
		}
	})
}

// TestStatsLatency: the sampled latencies of a handler that takes 5ms.
func TestStatsLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		sub := mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
			time.Sleep(5 * time.Millisecond)
			return nil
		}, WithConcurrency(1))
		for range 10 * latencySampleEvery {
			mustPublish(t, b, orders, order{})
		}
		closeBus(t, b)
		lat := sub.Stats().Latency
		if lat.Samples != 10 {
			t.Errorf("Latency.Samples = %d; want one in %d of 640 attempts, 10", lat.Samples, latencySampleEvery)
		}
		for _, q := range []time.Duration{lat.P50, lat.P95, lat.P99} {
			if q < 5*time.Millisecond || q > 5*time.Millisecond*9/8 {
				t.Errorf("Latency = %+v; want each quantile within [5ms, 5.625ms]", lat)
			}
		}
		time.Sleep(2 * time.Duration(window.Length))
		if lat := sub.Stats().Latency; lat.Samples != 0 {
			t.Errorf("Latency two windows later = %+v; want no samples", lat)
		}
	})
}

func TestLatencyHistogramBounds(t *testing.T) {
	prev := time.Duration(-1)
	for i := range latencyBuckets {
		ub := latencyUpperBound(i)
		if ub <= prev {
			t.Fatalf("upper bound of bucket %d = %v, not above %v", i, ub, prev)
		}
		prev = ub
	}
	for _, d := range []time.Duration{0, 1, 63, 64, 65, 100, 1000, 12345, time.Millisecond, 3 * time.Second, time.Hour, 24 * time.Hour} {
		i := latencyBucket(d)
		ub := latencyUpperBound(i)
		if i == latencyBuckets-1 {
			if d < 1<<maxLatencyExp {
				t.Errorf("%v went to the overflow bucket", d)
			}
			continue
		}
		if d > ub || (i > 0 && d <= latencyUpperBound(i-1)) {
			t.Errorf("%v went to bucket %d, (%v, %v]", d, i, latencyUpperBound(max(i-1, 0)), ub)
		}
		if d >= 64 && d < 1<<maxLatencyExp && float64(ub) > float64(d)*1.125 {
			t.Errorf("bucket of %v reports %v, more than 12.5%% above", d, ub)
		}
	}
	var h histogram
	for d := range time.Duration(100) {
		h.record(d * time.Microsecond)
	}
	if p50 := h.quantile(0.5); p50 < 49*time.Microsecond || p50 > 56*time.Microsecond {
		t.Errorf("p50 of 0..99µs = %v; want about 50µs", p50)
	}
}

// TestLatencyWindows: a summary covers the samples of the last one to two windows.
func TestLatencyWindows(t *testing.T) {
	var l latencies
	minute := window.Length
	start := 1000 * minute
	l.record(start, time.Millisecond)
	l.record(start+minute/2, time.Millisecond)
	if s := l.summary(start + minute/2); s.Samples != 2 {
		t.Errorf("within the first window: %d samples; want 2", s.Samples)
	}
	l.record(start+minute+1, 2*time.Millisecond) // rotates
	if s := l.summary(start + minute + 2); s.Samples != 3 {
		t.Errorf("in the second window: %d samples; want 3 (both windows)", s.Samples)
	}
	if s := l.summary(start + 2*minute + 2); s.Samples != 1 {
		t.Errorf("after the second window: %d samples; want 1 (the previous window dropped)", s.Samples)
	}
	l.record(start+4*minute, time.Millisecond) // both windows are stale
	if s := l.summary(start + 4*minute); s.Samples != 1 {
		t.Errorf("after a gap of two windows: %d samples; want 1", s.Samples)
	}
}

// Published counts every accepted event exactly, and never goes down, while parallel
// publishers run and subscribers come and go: a topic's only subscriber counts its
// publishes itself, and its count must move into the topic's when it leaves.
func TestPublishedCountsAcrossSubscriberChurn(t *testing.T) {
	b := New()
	topic := NewTopic[int]("churn.published")
	nop := func(context.Context, Event[int]) error { return nil }
	published := func() uint64 {
		for _, ts := range b.Stats().Topics {
			if ts.Name == topic.Name() {
				return ts.Published
			}
		}
		t.Fatal("the topic is missing from Stats")
		return 0
	}
	previous := mustSubscribe(t, b, topic, "s0", nop)

	accepted, stopPublishers := publishUntilStopped(t, 2, func(_, seq int) error {
		return Publish(context.Background(), b, topic, seq)
	})
	var last uint64
	for round := 1; round <= 40; round++ {
		next := mustSubscribe(t, b, topic, fmt.Sprint("s", round), nop) // two subscribers
		time.Sleep(200 * time.Microsecond)
		if err := previous.Close(context.Background()); err != nil { // one again: next alone
			t.Fatal(err)
		}
		previous = next
		time.Sleep(200 * time.Microsecond)
		if n := published(); n < last {
			t.Fatalf("round %d: Published went down from %d to %d", round, last, n)
		} else {
			last = n
		}
	}
	stopPublishers()
	if got, want := published(), uint64(accepted.Load()); got != want {
		t.Errorf("Published = %d; want the %d events Publish accepted", got, want)
	}
	if last == 0 {
		t.Error("nothing was published while the subscribers changed")
	}
	closeBus(t, b)
}
