package idset

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestMemoryIsBounded(t *testing.T) {
	const maxIDs = 1000
	d := New(time.Hour, maxIDs)
	ids := make([]uuid.UUID, 5000)
	for i := range ids {
		ids[i] = uuid.Must(uuid.NewV7())
		if !d.First(ids[i], d.Hash(ids[i]), int64(i)) {
			t.Fatalf("First(new ID %d) = false", i)
		}
		if n := d.Len(); n > maxIDs || len(d.cur.log)+len(d.prev.log) > maxIDs || len(d.cur.slots)+len(d.prev.slots) > 4*maxIDs {
			t.Fatalf("after %d IDs: %d remembered, logs of %d and %d slots; want at most %d, %[4]d and %d", i+1, n, len(d.cur.log)+len(d.prev.log), len(d.cur.slots)+len(d.prev.slots), maxIDs, 4*maxIDs)
		}
	}
	if d.First(ids[len(ids)-1], d.Hash(ids[len(ids)-1]), 5000) {
		t.Error("First(the latest ID) = true; want it remembered")
	}
	if !d.First(ids[0], d.Hash(ids[0]), 5000) {
		t.Error("First(the oldest ID) = false; want it forgotten to bound memory")
	}
}

// TestAgainstAModel drives the set with random IDs, times and forgets, and checks
// it against what its contract promises: an ID is reported new unless it was recorded
// within its window and not forgotten since; it is reported as a repeat if it was recorded
// within its window and fewer than maxIDs/2 new IDs came after it; and never more than
// maxIDs are remembered.
func TestAgainstAModel(t *testing.T) {
	const window, maxIDs = int64(1000), 64
	r := rand.New(rand.NewPCG(1, 2))
	pool := make([]uuid.UUID, 200)
	for i := range pool {
		pool[i] = uuid.Must(uuid.NewRandom())
	}
	d := New(time.Duration(window), maxIDs)
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
			d.Forget(id)
			delete(model, id)
			continue
		}
		e, known := model[id]
		live := known && now-e.seen < window
		must := live && seq-e.seq <= maxIDs/2
		isNew := d.First(id, d.Hash(id), now)
		switch {
		case !isNew && !live:
			t.Fatalf("step %d: First(%v) = false; it was not recorded within its window (%v, %+v, now %d)", step, id, known, e, now)
		case isNew && must:
			t.Fatalf("step %d: First(%v) = true; it was recorded %d ago, %d new IDs since", step, id, now-e.seen, seq-e.seq)
		}
		if isNew {
			seq++
			model[id] = entry{now, seq}
		}
		if n, logs := d.Len(), len(d.cur.log)+len(d.prev.log); n > maxIDs || logs > maxIDs {
			t.Fatalf("step %d: %d IDs remembered, %d logged; want at most %d", step, n, logs, maxIDs)
		}
	}
}

// TestGenerations pins down the two generations: an ID moved to the previous one is
// still a repeat within its window, not after it, and not once forgotten; and the previous
// generation is dropped whole.
func TestGenerations(t *testing.T) {
	const window = int64(100)
	d := New(time.Duration(window), 1000)
	first := func(id uuid.UUID, now int64) bool { return d.First(id, d.Hash(id), now) }
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
	d.Forget(b)
	if !first(b, 112) {
		t.Error("a forgotten ID was reported a repeat")
	}
	if first(b, 113) {
		t.Error("a forgotten ID seen again is not remembered anew")
	}
	if !first(c, 400) || d.Len() != 1 {
		t.Errorf("after two windows: c reported a repeat, or %d IDs remembered; want it new and 1", d.Len())
	}
}

// TestLargestSetFitsTheSlots: the largest maxIDs accepted must leave a generation's log
// places (1 to MaxIDs/2) below a slot's tag, or the last ID of a full generation is
// misread.
func TestLargestSetFitsTheSlots(t *testing.T) {
	if last := New(time.Second, MaxIDs).genMax; last >= 1<<tagShift {
		t.Errorf("a generation holds up to %d IDs; a slot has room for places below %d", last, 1<<tagShift)
	}
}
