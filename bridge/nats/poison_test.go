package natsbridge_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/google/uuid"
)

var errPoison = errors.New("cannot reserve stock")

// keysOutside returns n keys whose partition (among parts) differs from key's, and one
// key in the same partition.
func keysOutside(key string, parts, n int) (others []string, same string) {
	p := natsbridge.Partition(key, parts)
	for i := 0; len(others) < n || same == ""; i++ {
		k := fmt.Sprintf("k%d", i)
		switch q := natsbridge.Partition(k, parts); {
		case q != p && len(others) < n:
			others = append(others, k)
		case q == p && same == "":
			same = k
		}
	}
	return others, same
}

// A poison event is retried by the broker with the retry policy's delays, then published
// to the dead-letter subject with its reason and terminated, while keys of other
// partitions keep flowing; a later event of its own partition waits for it. Its second
// delivery waits until the other keys are handled, so that they flow while it is being
// retried whatever the machine's speed.
func TestPoisonEvent(t *testing.T) {
	s := startServer(t)
	a := newBus(t, "bus-a")
	b := newBus(t, "bus-b")
	cfg := testConfig(s)
	cfg.Retry = eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: 300 * time.Millisecond, MaxBackoff: time.Second, Jitter: -1}
	connect(t, a, testConfig(s), natsbridge.Forward(steps))
	brB := connect(t, b, cfg, natsbridge.Receive(steps))
	dls := watchDeadLetters(t, s)

	others, sameKey := keysOutside("poison", cfg.Partitions, 12)
	var (
		mu             sync.Mutex
		poisonCalls    []time.Time
		handledOthers  = map[string]time.Time{}
		sameHandled    time.Time
		localDeadLettr atomic.Int32
	)
	othersDone := make(chan struct{})
	mustSubscribe(t, b, steps, "stock", func(_ context.Context, ev eventbus.Event[step]) error {
		mu.Lock()
		defer mu.Unlock()
		switch ev.Key {
		case "poison":
			poisonCalls = append(poisonCalls, time.Now())
			if len(poisonCalls) == 3 { // the first call of the second delivery
				mu.Unlock()
				select {
				case <-othersDone:
				case <-time.After(20 * time.Second): // the assertions below report it
				}
				mu.Lock()
			}
			return errPoison
		case sameKey:
			sameHandled = time.Now()
		default:
			handledOthers[ev.Key] = time.Now()
			if len(handledOthers) == len(others) {
				close(othersDone)
			}
		}
		return nil
	}, eventbus.WithConcurrency(4), // a worker for the other keys while the poison waits
		eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond}),
		eventbus.WithDeadLetter(eventbus.DeadLetterFunc(func(context.Context, eventbus.DeadLetter) error {
			localDeadLettr.Add(1)
			return nil
		})))

	poisonID := uuid.New()
	if err := eventbus.Publish(t.Context(), a, steps, step{Key: "poison"}, eventbus.WithKey("poison"), eventbus.WithID(poisonID)); err != nil {
		t.Fatal(err)
	}
	// Wait until the poison holds its partition, then publish the rest.
	eventually(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(poisonCalls) > 0 },
		func() string { return "the poison event never reached the handler" })
	if err := eventbus.Publish(t.Context(), a, steps, step{Key: sameKey}, eventbus.WithKey(sameKey)); err != nil {
		t.Fatal(err)
	}
	for _, k := range others {
		if err := eventbus.Publish(t.Context(), a, steps, step{Key: k}, eventbus.WithKey(k)); err != nil {
			t.Fatal(err)
		}
	}

	eventually(t, 15*time.Second, func() bool { return len(dls.all()) == 1 }, func() string {
		return fmt.Sprintf("%d dead letters; want 1; stats %+v", len(dls.all()), brB.Stats())
	})
	eventually(t, 10*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return !sameHandled.IsZero() },
		func() string { return "the event behind the poison in its partition was never handled" })
	// The bridge counts an event as handled once its ack is confirmed, after the handler.
	eventually(t, 10*time.Second, func() bool { return brB.Stats().Handled == uint64(len(others)+1) },
		func() string { return fmt.Sprintf("stats %+v; want %d handled", brB.Stats(), len(others)+1) })

	mu.Lock()
	defer mu.Unlock()
	// 3 broker deliveries, each with the subscriber's 2 local attempts.
	if len(poisonCalls) != 6 {
		t.Errorf("poison handler calls = %d; want 6 (3 deliveries x 2 local attempts)", len(poisonCalls))
	} else {
		for i, want := range []time.Duration{300 * time.Millisecond, 600 * time.Millisecond} {
			if gap := poisonCalls[2*i+2].Sub(poisonCalls[2*i+1]); gap < want {
				t.Errorf("delay before delivery %d = %v; want at least %v (NakWithDelay by the retry policy)", i+2, gap, want)
			}
		}
	}
	if n := localDeadLettr.Load(); n != 3 {
		t.Errorf("local dead-letter hook calls = %d; want 3, one per failed delivery", n)
	}
	if len(handledOthers) != len(others) {
		t.Errorf("handled %d of the %d events of other partitions", len(handledOthers), len(others))
	}
	for k, at := range handledOthers {
		if !at.Before(poisonCalls[len(poisonCalls)-1]) {
			t.Errorf("key %s handled at %v, after the poison's last attempt at %v; want other partitions to flow meanwhile", k, at, poisonCalls[len(poisonCalls)-1])
		}
	}
	if !sameHandled.After(poisonCalls[len(poisonCalls)-1]) {
		t.Errorf("key %s of the poison's partition handled before the poison was dead-lettered", sameKey)
	}

	dl := dls.all()[0]
	h := dl.Headers()
	if h.Get("ce-id") != poisonID.String() || h.Get(natsbridge.HeaderReason) != natsbridge.ReasonFailed ||
		h.Get(natsbridge.HeaderAttempts) != "3" || !strings.Contains(h.Get(natsbridge.HeaderError), errPoison.Error()) ||
		!strings.HasPrefix(dl.Subject(), s.prefix+".deadletter.") || !strings.HasSuffix(dl.Subject(), ".test.step") {
		t.Errorf("dead letter on %s with headers %v; want ce-id %v, reason failed, 3 attempts, the error %q", dl.Subject(), h, poisonID, errPoison)
	}
	if st := brB.Stats(); st.DeadLettered != 1 || st.Retried != 2 || st.Invalid != 0 || st.Handled != uint64(len(others)+1) {
		t.Errorf("stats = %+v; want 1 dead-lettered, 2 retried, 0 invalid, %d handled", st, len(others)+1)
	}
	checkSettled(t, brB.Stats())
}

// A Permanent error is not redelivered: the event is dead-lettered after one delivery.
func TestPermanentErrorIsNotRedelivered(t *testing.T) {
	s := startServer(t)
	a, b := newBus(t, "bus-a"), newBus(t, "bus-b")
	connect(t, a, testConfig(s), natsbridge.Forward(steps))
	brB := connect(t, b, testConfig(s), natsbridge.Receive(steps))
	dls := watchDeadLetters(t, s)
	var calls atomic.Int32
	mustSubscribe(t, b, steps, "strict", func(context.Context, eventbus.Event[step]) error {
		calls.Add(1)
		return eventbus.Permanent(errPoison)
	}, eventbus.WithDeadLetter(eventbus.DiscardDeadLetters))
	if err := eventbus.Publish(t.Context(), a, steps, step{Key: "x"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return len(dls.all()) == 1 }, func() string {
		return fmt.Sprintf("%d dead letters; want 1; stats %+v", len(dls.all()), brB.Stats())
	})
	h := dls.all()[0].Headers()
	if calls.Load() != 1 || h.Get(natsbridge.HeaderReason) != natsbridge.ReasonPermanent || h.Get(natsbridge.HeaderAttempts) != "1" {
		t.Errorf("handler calls = %d, dead letter headers %v; want 1 call, reason permanent after 1 attempt", calls.Load(), h)
	}
}

// Fan-out to two local subscribers where one fails once: the broker redelivers, the
// subscriber that had handled the event skips it (de-duplication), the other handles it.
func TestFanOutWithOneFailure(t *testing.T) {
	s := startServer(t)
	a, b := newBus(t, "bus-a"), newBus(t, "bus-b")
	connect(t, a, testConfig(s), natsbridge.Forward(steps))
	brB := connect(t, b, testConfig(s), natsbridge.Receive(steps))
	var okCalls, flakyCalls, plainCalls atomic.Int32
	dedup := eventbus.WithDeduplication(time.Minute, 1000)
	mustSubscribe(t, b, steps, "ok", func(context.Context, eventbus.Event[step]) error {
		okCalls.Add(1)
		return nil
	}, dedup)
	mustSubscribe(t, b, steps, "no-dedup", func(context.Context, eventbus.Event[step]) error {
		plainCalls.Add(1)
		return nil
	})
	mustSubscribe(t, b, steps, "flaky", func(context.Context, eventbus.Event[step]) error {
		if flakyCalls.Add(1) == 1 {
			return errPoison
		}
		return nil
	}, dedup, eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 1}), eventbus.WithDeadLetter(eventbus.DiscardDeadLetters))
	if err := eventbus.Publish(t.Context(), a, steps, step{Key: "x"}, eventbus.WithKey("x")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return brB.Stats().Handled == 1 }, func() string {
		return fmt.Sprintf("stats %+v; want the event handled after one redelivery", brB.Stats())
	})
	if okCalls.Load() != 1 || flakyCalls.Load() != 2 || plainCalls.Load() != 2 {
		t.Errorf("calls: ok %d, flaky %d, no-dedup %d; want 1, 2, 2", okCalls.Load(), flakyCalls.Load(), plainCalls.Load())
	}
	if st := brB.Stats(); st.Retried != 1 || st.Redelivered != 1 || st.Received != 2 {
		t.Errorf("stats = %+v; want 2 received, 1 redelivered, 1 retried", st)
	}
}

// A handler error that merely wraps eventbus.ErrClosed (a relay to a downstream bus that
// closed) is an ordinary failure: redelivered after the retry policy's backoff and counted
// as retried, not handed back at once as if the subscription had stopped.
func TestHandlerErrClosedIsAFailure(t *testing.T) {
	s := startServer(t)
	a, b := newBus(t, "bus-a"), newBus(t, "bus-b")
	connect(t, a, testConfig(s), natsbridge.Forward(steps))
	cfg := testConfig(s)
	cfg.Retry = eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: 300 * time.Millisecond, MaxBackoff: 300 * time.Millisecond, Jitter: -1}
	brB := connect(t, b, cfg, natsbridge.Receive(steps))
	var mu sync.Mutex
	var calls []time.Time
	mustSubscribe(t, b, steps, "relay", func(context.Context, eventbus.Event[step]) error {
		mu.Lock()
		defer mu.Unlock()
		if calls = append(calls, time.Now()); len(calls) == 1 {
			return fmt.Errorf("relay to the warehouse bus: %w", eventbus.ErrClosed)
		}
		return nil
	}, eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 1}), eventbus.WithDeadLetter(eventbus.DiscardDeadLetters))
	if err := eventbus.Publish(t.Context(), a, steps, step{Key: "x"}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return brB.Stats().Handled == 1 }, func() string {
		return fmt.Sprintf("not handled; stats %+v", brB.Stats())
	})
	st := brB.Stats()
	mu.Lock()
	defer mu.Unlock()
	if st.Retried != 1 || st.HandedBack != 0 || len(calls) != 2 {
		t.Errorf("stats %+v, %d calls; want 1 retried, 0 handed back, 2 calls", st, len(calls))
	}
	if gap := calls[1].Sub(calls[0]); gap < 250*time.Millisecond {
		t.Errorf("redelivered after %v; want the retry policy's backoff of 300ms", gap)
	}
}
