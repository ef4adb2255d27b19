package eventbus

import (
	"context"
	"errors"
	"math"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ae30fb47/eventbus/internal/idset"
	"github.com/google/uuid"
)

func TestDeduplicationSkipsRepeatsWithinTheWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		calls := map[uuid.UUID]int{}
		mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
			calls[ev.ID]++
			if ev.Payload.ID == "flaky" && calls[ev.ID] == 1 {
				return errors.New("first attempt fails")
			}
			return nil
		}, WithConcurrency(1), WithDeduplication(time.Minute, 100),
			WithRetry(RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond}))
		id, flaky := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
		for range 3 { // a waiting publisher of a repeat sees it as handled
			if err := Publish(context.Background(), b, orders, order{ID: "x"}, WithID(id), WithWait()); err != nil {
				t.Fatalf("Publish(repeat) = %v; want nil", err)
			}
		}
		if err := Publish(context.Background(), b, orders, order{ID: "flaky"}, WithID(flaky), WithWait()); err != nil {
			t.Fatalf("Publish(flaky) = %v; want nil: its retry is not a repeat", err)
		}
		time.Sleep(59 * time.Second)
		mustPublish(t, b, orders, order{ID: "x"}, WithID(id)) // still within the window
		synctest.Wait()
		if calls[id] != 1 || calls[flaky] != 2 {
			t.Errorf("handler calls: %d for the repeated ID, %d for the flaky one; want 1 and 2", calls[id], calls[flaky])
		}
		time.Sleep(2 * time.Second)
		mustPublish(t, b, orders, order{ID: "x"}, WithID(id)) // the window has passed
		closeBus(t, b)
		if calls[id] != 2 {
			t.Errorf("handler calls for the ID after its window: %d in all; want 2", calls[id])
		}
	})
}

// TestDeduplicationOfConcurrentRepeats: repeats without a key may be taken by several
// workers at once; only one of them reaches the handler.
func TestDeduplicationOfConcurrentRepeats(t *testing.T) {
	b := New()
	var calls atomic.Int32
	mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
		calls.Add(1)
		time.Sleep(time.Millisecond)
		return nil
	}, WithConcurrency(8), WithDeduplication(time.Hour, 10))
	id := uuid.Must(uuid.NewV7())
	for range 100 {
		mustPublish(t, b, orders, order{}, WithID(id))
	}
	closeBus(t, b)
	if calls.Load() != 1 {
		t.Errorf("handler ran %d times for one ID; want 1", calls.Load())
	}
}

// TestDeduplicationWhileTheFirstRetries: a repeat that comes while the first delivery
// waits for its retry is skipped, although the window has passed; once the first has been
// handled, a repeat after the window is handled again.
func TestDeduplicationWhileTheFirstRetries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithLogger(discardLogger))
		var calls [3]atomic.Int32
		mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
			if calls[ev.Payload.Total].Add(1) == 1 && ev.Payload.Total == 0 {
				return errors.New("flaky")
			}
			return nil
		}, WithDeduplication(50*time.Millisecond, 100), WithDeadLetter(&recorder{}),
			WithRetry(RetryPolicy{MaxAttempts: 3, InitialBackoff: 200 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}))
		id := uuid.New()
		mustPublish(t, b, orders, order{Total: 0}, WithID(id))
		time.Sleep(100 * time.Millisecond) // past the window; the first waits for its retry
		mustPublish(t, b, orders, order{Total: 1}, WithID(id))
		time.Sleep(time.Second)
		synctest.Wait()
		if c0, c1 := calls[0].Load(), calls[1].Load(); c0 != 2 || c1 != 0 {
			t.Errorf("first delivery %d attempts, repeat during its retry handled %d times; want 2 and 0", c0, c1)
		}
		mustPublish(t, b, orders, order{Total: 2}, WithID(id)) // the window has long passed
		synctest.Wait()
		if c2 := calls[2].Load(); c2 != 1 {
			t.Errorf("a repeat after the first was handled and the window passed: %d handler calls; want 1", c2)
		}
		closeBus(t, b)
	})
}

// TestDeduplicationForEver: the longest window there is, for "for ever", skips repeats
// like any other (it overflowed the expiry times once).
func TestDeduplicationForEver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		var calls atomic.Int32
		mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
			calls.Add(1)
			return nil
		}, WithDeduplication(time.Duration(math.MaxInt64), 100))
		id := uuid.New()
		for range 3 {
			if err := Publish(context.Background(), b, orders, order{}, WithID(id), WithWait()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(24 * time.Hour)
		}
		if n := calls.Load(); n != 1 {
			t.Errorf("handler called %d times for one ID; want 1", n)
		}
		closeBus(t, b)
	})
}

func TestWithDeduplicationRejectsBadArguments(t *testing.T) {
	b := New()
	defer closeBus(t, b)
	for _, o := range []SubscribeOption{WithDeduplication(0, 10), WithDeduplication(time.Second, 0), WithDeduplication(time.Second, idset.MaxIDs+1)} {
		if _, err := Subscribe(b, orders, "s", func(context.Context, Event[order]) error { return nil }, o); err == nil {
			t.Error("Subscribe(bad WithDeduplication) = nil; want an error")
		}
	}
}

// TestDeduplicationForgetsDeadLetteredIDs: a broker redelivers an event that a subscriber
// dead-lettered; the repeat must reach the handler, since the event was never handled.
// A repeat of a handled event must not, even after the dead-lettered ID was re-recorded.
func TestDeduplicationForgetsDeadLetteredIDs(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dls := &recorder{}
		b := New(WithDeadLetter(dls))
		calls := map[uuid.UUID]int{}
		fail := true
		mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
			calls[ev.ID]++
			if ev.Payload.ID == "poison" && fail {
				return errors.New("fails every attempt")
			}
			return nil
		}, WithConcurrency(1), WithDeduplication(time.Minute, 100),
			WithRetry(RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond}))
		poison, good := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
		ctx := context.Background()
		if err := Publish(ctx, b, orders, order{ID: "poison"}, WithID(poison), WithWait()); err == nil {
			t.Fatal("Publish(poison) = nil; want its dead-letter error")
		}
		fail = false // the redelivery succeeds
		for range 2 {
			if err := Publish(ctx, b, orders, order{ID: "poison"}, WithID(poison), WithWait()); err != nil {
				t.Fatalf("Publish(redelivery) = %v; want nil", err)
			}
		}
		mustPublish(t, b, orders, order{ID: "good"}, WithID(good))
		mustPublish(t, b, orders, order{ID: "good"}, WithID(good))
		closeBus(t, b)
		if calls[poison] != 3 {
			t.Errorf("handler calls for the dead-lettered ID = %d; want 2 attempts + 1 redelivery, the second repeat skipped", calls[poison])
		}
		if calls[good] != 1 {
			t.Errorf("handler calls for the handled ID = %d; want 1", calls[good])
		}
		if n := len(dls.all()); n != 1 {
			t.Errorf("dead letters = %d; want 1", n)
		}
	})
}
