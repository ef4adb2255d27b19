package eventbus

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

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

func TestDeduplicationMemoryIsBounded(t *testing.T) {
	const maxIDs = 1000
	d := newDedupSet(time.Hour, maxIDs)
	ids := make([]uuid.UUID, 5000)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
		if !d.first(ids[i], int64(i)) {
			t.Fatalf("first(new ID %d) = false", i)
		}
		if n := d.len(); n > maxIDs || len(d.ring) > maxIDs {
			t.Fatalf("after %d IDs: %d remembered, ring of %d; want at most %d", i+1, n, len(d.ring), maxIDs)
		}
	}
	if d.first(ids[len(ids)-1], 5000) {
		t.Error("first(the latest ID) = true; want it remembered")
	}
	if !d.first(ids[0], 5000) {
		t.Error("first(the oldest ID) = false; want it forgotten to bound memory")
	}
}

func TestWithDeduplicationRejectsBadArguments(t *testing.T) {
	b := New()
	defer closeBus(t, b)
	for _, o := range []SubscribeOption{WithDeduplication(0, 10), WithDeduplication(time.Second, 0)} {
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
