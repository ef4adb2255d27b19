// Package idset remembers the event IDs seen within a window of time, in bounded memory,
// for the de-duplication of a subscription. A Set is not safe for concurrent use: its
// owner guards it with a lock of its own.
//
// IDs live in two generations, the current one and the one before it; a new ID goes into
// the current one. When the current generation is a window old, or holds half of the most
// IDs allowed, it becomes the previous one and the previous one is emptied whole: no ID is
// ever deleted one by one. So an ID is remembered for its window (each carries its
// expiry), or until max/2 newer IDs have come, whichever is first, and never more than
// max are.
//
// Most IDs a subscription sees are new, and a large set does not fit in a core's cache, so
// an insert must not write at random into big slots: a generation appends its IDs to a
// log, and indexes them with a hash table of 4-byte slots, each holding a byte of the ID's
// hash and its place in the log. A lookup reads the log only when the byte matches (a
// repeat, or one time in 256).
package idset

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
)

// MaxIDs is the most IDs a Set may be asked to remember, so that a generation's log
// places, 1 to MaxIDs/2, fit below a slot's tag.
const MaxIDs = 1 << 24

// MaxWindow bounds the window, so that expiry times (now + window) and generation ages
// (2 × window) stay far from overflowing: a longer one means "for ever", which this is,
// for a process.
const MaxWindow = 50 * 365 * 24 * time.Hour

const (
	minSlots = 64 // the size a table starts at; it doubles as IDs come
	tagShift = 24 // a slot's tag is above this bit, its place in the log below
)

// Set remembers IDs; see the package doc. Times are Unix nanoseconds.
type Set struct {
	window    int64 // nanoseconds
	genMax    int   // IDs a generation holds at most
	keepPrev  bool  // max allows a previous generation
	seed      [2]uint64
	cur, prev generation
	curStart  int64 // when the current generation began
	// retrying holds the IDs whose first delivery failed and is to be retried: a repeat
	// of one is a repeat however long the retries take, window or not.
	retrying map[uuid.UUID]struct{}
	touched  uint32
}

// generation is one generation: its IDs in the order seen, and an open-addressing hash
// table with linear probing over them. A slot is 0 when empty, else the top byte of the
// ID's hash and, below it, the ID's place in the log plus one.
type generation struct {
	log   []entry
	slots []uint32 // length a power of two
	n     int      // live IDs: in the log and not forgotten
}

type entry struct {
	id      uuid.UUID
	expires int64 // 0 once forgotten
}

// New returns an empty set that remembers IDs for window (at most MaxWindow), and at most
// maxIDs of them (1 to MaxIDs).
func New(window time.Duration, maxIDs int) *Set {
	return &Set{
		window:   int64(min(window, MaxWindow)),
		genMax:   max(maxIDs/2, 1),
		keepPrev: maxIDs >= 2,
		seed:     [2]uint64{rand.Uint64() | 1, rand.Uint64() | 1},
		cur:      generation{slots: make([]uint32, minSlots)},
		prev:     generation{slots: make([]uint32, minSlots)},
	}
}

// Hash mixes the two halves of id with the set's random seed (the multiply-and-fold of
// wyhash), so that IDs chosen by a publisher cannot be made to collide without the seed.
func (d *Set) Hash(id uuid.UUID) uint64 {
	lo := binary.LittleEndian.Uint64(id[0:8])
	hi := binary.LittleEndian.Uint64(id[8:16])
	h, l := bits.Mul64(lo^d.seed[0], hi^d.seed[1])
	return h ^ l
}

// First records id, whose Hash is h, as seen at now and reports whether it is new: not
// remembered, or remembered with its window passed, or forgotten, and not retrying.
func (d *Set) First(id uuid.UUID, h uint64, now int64) bool {
	d.rotate(now)
	if len(d.retrying) > 0 {
		if _, ok := d.retrying[id]; ok {
			return false
		}
	}
	if d.prev.n > 0 {
		if e := d.prev.find(id, h); e != nil && e.expires > now {
			return false
		}
	}
	if e := d.cur.find(id, h); e != nil {
		if e.expires > now {
			return false // the current generation is younger than a window
		}
		e.expires = now + d.window // forgotten, and seen again
		d.cur.n++
		return true
	}
	if len(d.cur.log) >= d.genMax { // forgotten IDs count, so that the log stays bounded
		d.turn(now)
	}
	d.cur.add(d, id, h, now+d.window)
	return true
}

// Prefetch reads the slots where the IDs with hashes hs start, in both generations, so
// that the cache misses of a batch's lookups overlap instead of following one another.
func (d *Set) Prefetch(hs []uint64) {
	var sum uint32
	cm, pm := uint64(len(d.cur.slots)-1), uint64(len(d.prev.slots)-1)
	for _, h := range hs {
		sum += d.cur.slots[h&cm] + d.prev.slots[h&pm]
	}
	d.touched = sum // keeps the loads
}

// Retry records that the first delivery of id failed and is to be retried: First reports
// its repeats as such until Settled or Forget.
func (d *Set) Retry(id uuid.UUID) {
	if d.retrying == nil {
		d.retrying = make(map[uuid.UUID]struct{})
	}
	d.retrying[id] = struct{}{}
}

// Settled records that the first delivery of id ended, handled or dead-lettered.
func (d *Set) Settled(id uuid.UUID) {
	if len(d.retrying) > 0 {
		delete(d.retrying, id)
	}
}

// Forget drops id, whose first delivery was dead-lettered, so that a repeat is new. It
// settles id too.
func (d *Set) Forget(id uuid.UUID) {
	d.Settled(id)
	h := d.Hash(id)
	for _, g := range []*generation{&d.cur, &d.prev} {
		if e := g.find(id, h); e != nil && e.expires != 0 {
			e.expires = 0
			g.n--
		}
	}
}

// Len reports how many IDs are remembered.
func (d *Set) Len() int { return d.cur.n + d.prev.n }

// rotate starts a new generation if the current one is a window old; two windows old, the
// previous one is emptied too.
func (d *Set) rotate(now int64) {
	if now-d.curStart < d.window {
		return
	}
	stale := now-d.curStart >= 2*d.window
	d.turn(now)
	if stale {
		d.prev.reset()
	}
}

// turn makes the current generation the previous one, emptying the previous one, and
// starts a new one at now.
func (d *Set) turn(now int64) {
	d.cur, d.prev = d.prev, d.cur
	if !d.keepPrev {
		d.prev.reset()
	}
	d.cur.reset()
	d.curStart = now
}

// reset empties g, keeping its memory.
func (g *generation) reset() {
	g.log = g.log[:0]
	clear(g.slots)
	g.n = 0
}

// find returns the log entry of id, whose hash is h, or nil.
func (g *generation) find(id uuid.UUID, h uint64) *entry {
	mask := uint64(len(g.slots) - 1)
	tag := uint32(h>>56) << tagShift
	for i := h & mask; ; i = (i + 1) & mask {
		sl := g.slots[i]
		if sl == 0 {
			return nil
		}
		if sl&^(1<<tagShift-1) == tag {
			if e := &g.log[sl&(1<<tagShift-1)-1]; e.id == id {
				return e
			}
		}
	}
}

// add appends id, which g lacks, to the log and indexes it, first doubling the table if
// that would leave it more than half full.
func (g *generation) add(d *Set, id uuid.UUID, h uint64, expires int64) {
	if 2*(len(g.log)+1) > len(g.slots) {
		g.slots = make([]uint32, 2*len(g.slots))
		for i := range g.log {
			g.index(d.Hash(g.log[i].id), i)
		}
	}
	g.log = append(g.log, entry{id: id, expires: expires})
	g.index(h, len(g.log)-1)
	g.n++
}

// index puts log entry i, whose ID's hash is h, into the first empty slot from h on.
func (g *generation) index(h uint64, i int) {
	mask := uint64(len(g.slots) - 1)
	j := h & mask
	for g.slots[j] != 0 {
		j = (j + 1) & mask
	}
	g.slots[j] = uint32(h>>56)<<tagShift | uint32(i+1)
}
