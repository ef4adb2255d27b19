package eventbus

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
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
		if !d.first(ids[i], d.hash(ids[i]), int64(i)) {
			t.Fatalf("first(new ID %d) = false", i)
		}
		if n := d.len(); n > maxIDs || len(d.cur.log)+len(d.prev.log) > maxIDs || len(d.cur.slots)+len(d.prev.slots) > 4*maxIDs {
			t.Fatalf("after %d IDs: %d remembered, logs of %d and %d slots; want at most %d, %[4]d and %d", i+1, n, len(d.cur.log)+len(d.prev.log), len(d.cur.slots)+len(d.prev.slots), maxIDs, 4*maxIDs)
		}
	}
	if d.first(ids[len(ids)-1], d.hash(ids[len(ids)-1]), 5000) {
		t.Error("first(the latest ID) = true; want it remembered")
	}
	if !d.first(ids[0], d.hash(ids[0]), 5000) {
		t.Error("first(the oldest ID) = false; want it forgotten to bound memory")
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
	for _, o := range []SubscribeOption{WithDeduplication(0, 10), WithDeduplication(time.Second, 0), WithDeduplication(time.Second, maxDedupIDs+1)} {
		if _, err := Subscribe(b, orders, "s", func(context.Context, Event[order]) error { return nil }, o); err == nil {
			t.Error("Subscribe(bad WithDeduplication) = nil; want an error")
		}
	}
	// The largest maxIDs accepted must leave a generation's log places (1 to maxIDs/2)
	// below a slot's tag, or the last ID of a full generation is misread.
	if last := newDedupSet(time.Second, maxDedupIDs).genMax; last >= 1<<dedupTagShift {
		t.Errorf("a generation holds up to %d IDs; a slot has room for places below %d", last, 1<<dedupTagShift)
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

// TestDedupSetAgainstAModel drives the set with random IDs, times and forgets, and checks
// it against what its contract promises: an ID is reported new unless it was recorded
// within its window and not forgotten since; it is reported as a repeat if it was recorded
// within its window and fewer than maxIDs/2 new IDs came after it; and never more than
// maxIDs are remembered.
func TestDedupSetAgainstAModel(t *testing.T) {
	const window, maxIDs = int64(1000), 64
	r := rand.New(rand.NewPCG(1, 2))
	pool := make([]uuid.UUID, 200)
	for i := range pool {
		pool[i] = uuid.Must(uuid.NewRandom())
	}
	d := newDedupSet(time.Duration(window), maxIDs)
	type entry struct {
		seen int64 // when recorded
		seq  int   // how many new IDs were recorded before it
	}
	model := map[uuid.UUID]entry{}
	now, seq := int64(1), 0
	for step := range 200_000 {
		now += int64(r.IntN(20))
		if r.IntN(500) == 0 {
			now += int64(r.IntN(int(2 * window))) // a lull: windows pass
		}
		id := pool[r.IntN(len(pool))]
		if r.IntN(10) == 0 {
			d.forget(id)
			delete(model, id)
			continue
		}
		e, known := model[id]
		live := known && now-e.seen < window
		must := live && seq-e.seq <= maxIDs/2
		isNew := d.first(id, d.hash(id), now)
		switch {
		case !isNew && !live:
			t.Fatalf("step %d: first(%v) = false; it was not recorded within its window (%v, %+v, now %d)", step, id, known, e, now)
		case isNew && must:
			t.Fatalf("step %d: first(%v) = true; it was recorded %d ago, %d new IDs since", step, id, now-e.seen, seq-e.seq)
		}
		if isNew {
			seq++
			model[id] = entry{now, seq}
		}
		if n, logs := d.len(), len(d.cur.log)+len(d.prev.log); n > maxIDs || logs > maxIDs {
			t.Fatalf("step %d: %d IDs remembered, %d logged; want at most %d", step, n, logs, maxIDs)
		}
	}
}

// TestDedupSetGenerations pins down the two generations: an ID moved to the previous one is
// still a repeat within its window, not after it, and not once forgotten; and the previous
// generation is dropped whole.
func TestDedupSetGenerations(t *testing.T) {
	const window = int64(100)
	d := newDedupSet(time.Duration(window), 1000)
	first := func(id uuid.UUID, now int64) bool { return d.first(id, d.hash(id), now) }
	a, b, c := uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7()), uuid.Must(uuid.NewV7())
	first(a, 10)
	first(b, 20)
	first(c, 105) // a new generation: a and b move to the previous one
	if first(a, 105) || first(b, 115) {
		t.Error("a repeat within its window, from the previous generation, was reported new")
	}
	if !first(a, 111) {
		t.Error("a repeat after its window was reported a repeat")
	}
	d.forget(b)
	if !first(b, 112) {
		t.Error("a forgotten ID was reported a repeat")
	}
	if first(b, 113) {
		t.Error("a forgotten ID seen again is not remembered anew")
	}
	if !first(c, 400) || d.len() != 1 {
		t.Errorf("after two windows: c reported a repeat, or %d IDs remembered; want it new and 1", d.len())
	}
}
