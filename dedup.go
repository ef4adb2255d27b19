package eventbus

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
)

// WithDeduplication makes the subscription skip an event whose ID it has already seen
// within window: the at-least-once bridges redeliver events, and a handler that is not
// idempotent must see each only once.
//
// The first delivery of an ID is handled as usual, with its retries. A repeat whose turn
// comes within window after the first began, or while the first waits for or runs a
// retry, is not passed to the handler: it ends at once as handled, and a [WithWait]
// publisher sees nil from this subscriber. (A first attempt that runs longer than window
// without failing does not protect its ID beyond window: choose a window longer than an
// attempt may take.) If the first delivery is dead-lettered instead, its ID is
// forgotten: the event was never handled, so a repeat whose turn comes later (a broker
// redelivering it) is handled again.
// At most maxIDs IDs are remembered, so memory stays bounded whatever the rate (about 40
// bytes per ID): when more arrive within window, the oldest are forgotten early, but never
// any of the last maxIDs/2. A window over 50 years counts as 50 years (math.MaxInt64 for
// "for ever" is fine). [Subscribe] returns an error if window <= 0, or if maxIDs is below 1
// or above 1<<24.
func WithDeduplication(window time.Duration, maxIDs int) SubscribeOption {
	return subscribeOption(func(c *subscribeConfig) {
		switch {
		case window <= 0:
			c.fail(fmt.Errorf("eventbus: WithDeduplication: window must be > 0, got %v", window))
		case maxIDs < 1 || maxIDs > maxDedupIDs:
			c.fail(fmt.Errorf("eventbus: WithDeduplication: maxIDs must be within [1, %d], got %d", maxDedupIDs, maxIDs))
		}
		c.dedupWindow, c.dedupMax = window, maxIDs
	})
}

// dedupSet remembers the event IDs seen within a window, at most max of them. It is
// guarded by its subscription's lock.
//
// IDs live in two generations, the current one and the one before it; a new ID goes into
// the current one. When the current generation is a window old, or holds half of max IDs,
// it becomes the previous one and the previous one is emptied whole: no ID is ever deleted
// one by one. So an ID is remembered for its window (each carries its expiry), or until
// max/2 newer IDs have come, whichever is first, and never more than max are.
//
// Most IDs a subscription sees are new, and a large set does not fit in a core's cache, so
// an insert must not write at random into big slots: a generation appends its IDs to a log,
// and indexes them with a hash table of 4-byte slots, each holding a byte of the ID's hash
// and its place in the log. A lookup reads the log only when the byte matches (a repeat,
// or one time in 256).
type dedupSet struct {
	window    int64 // nanoseconds
	genMax    int   // IDs a generation holds at most
	keepPrev  bool  // max allows a previous generation
	seed      [2]uint64
	cur, prev dedupGen
	curStart  int64 // when the current generation began, Unix nanoseconds
	// retrying holds the IDs whose first delivery failed and is to be retried: a repeat
	// of one is skipped however long the retries take, window or not.
	retrying map[uuid.UUID]struct{}
	touched  uint32
}

// dedupGen is one generation: its IDs in the order seen, and an open-addressing hash table
// with linear probing over them. A slot is 0 when empty, else the top byte of the ID's hash
// and, below it, the ID's place in the log plus one.
type dedupGen struct {
	log   []dedupEntry
	slots []uint32 // length a power of two
	n     int      // live IDs: in the log and not forgotten
}

type dedupEntry struct {
	id      uuid.UUID
	expires int64 // Unix nanoseconds; 0 once forgotten
}

const (
	minDedupSlots = 64      // the size a table starts at; it doubles as IDs come
	dedupTagShift = 24      // a slot's tag is above this bit, its place in the log below
	maxDedupIDs   = 1 << 24 // so that a generation's log places, 1 to maxDedupIDs/2, fit below the tag
	// maxDedupWindow bounds the window, so that expiry times (now + window) and generation
	// ages (2 × window) stay far from overflowing: a longer one means "for ever", which
	// this is, for a process.
	maxDedupWindow = 50 * 365 * 24 * time.Hour
)

func newDedupSet(window time.Duration, maxIDs int) *dedupSet {
	return &dedupSet{
		window:   int64(min(window, maxDedupWindow)),
		genMax:   max(maxIDs/2, 1),
		keepPrev: maxIDs >= 2,
		seed:     [2]uint64{rand.Uint64() | 1, rand.Uint64() | 1},
		cur:      dedupGen{slots: make([]uint32, minDedupSlots)},
		prev:     dedupGen{slots: make([]uint32, minDedupSlots)},
	}
}

// hash mixes the two halves of id with the set's random seed (the multiply-and-fold of
// wyhash), so that IDs chosen by a publisher cannot be made to collide without the seed.
func (d *dedupSet) hash(id uuid.UUID) uint64 {
	lo := binary.LittleEndian.Uint64(id[0:8])
	hi := binary.LittleEndian.Uint64(id[8:16])
	h, l := bits.Mul64(lo^d.seed[0], hi^d.seed[1])
	return h ^ l
}

// first records id, whose hash is h, as seen at now (Unix nanoseconds) and reports whether
// it is new: not remembered, or remembered with its window passed, or forgotten.
func (d *dedupSet) first(id uuid.UUID, h uint64, now int64) bool {
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

// prefetch reads the slots where the IDs with hashes hs start, in both generations, so
// that the cache misses of a batch's lookups overlap instead of following one another.
func (d *dedupSet) prefetch(hs []uint64) {
	var sum uint32
	cm, pm := uint64(len(d.cur.slots)-1), uint64(len(d.prev.slots)-1)
	for _, h := range hs {
		sum += d.cur.slots[h&cm] + d.prev.slots[h&pm]
	}
	d.touched = sum // keeps the loads
}

// retry records that the first delivery of id failed and is to be retried.
func (d *dedupSet) retry(id uuid.UUID) {
	if d.retrying == nil {
		d.retrying = make(map[uuid.UUID]struct{})
	}
	d.retrying[id] = struct{}{}
}

// settled records that the first delivery of id ended, handled or dead-lettered.
func (d *dedupSet) settled(id uuid.UUID) {
	if len(d.retrying) > 0 {
		delete(d.retrying, id)
	}
}

// forget drops id, whose first delivery was dead-lettered, so that a repeat is handled. It
// settles id too, at once: the dead-letter hook runs without the lock, and a repeat taken
// meanwhile must be handled.
func (d *dedupSet) forget(id uuid.UUID) {
	d.settled(id)
	h := d.hash(id)
	for _, g := range []*dedupGen{&d.cur, &d.prev} {
		if e := g.find(id, h); e != nil && e.expires != 0 {
			e.expires = 0
			g.n--
		}
	}
}

// rotate starts a new generation if the current one is a window old; two windows old, the
// previous one is emptied too.
func (d *dedupSet) rotate(now int64) {
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
func (d *dedupSet) turn(now int64) {
	d.cur, d.prev = d.prev, d.cur
	if !d.keepPrev {
		d.prev.reset()
	}
	d.cur.reset()
	d.curStart = now
}

// len reports how many IDs are remembered.
func (d *dedupSet) len() int { return d.cur.n + d.prev.n }

// reset empties g, keeping its memory.
func (g *dedupGen) reset() {
	g.log = g.log[:0]
	clear(g.slots)
	g.n = 0
}

// find returns the log entry of id, whose hash is h, or nil.
func (g *dedupGen) find(id uuid.UUID, h uint64) *dedupEntry {
	mask := uint64(len(g.slots) - 1)
	tag := uint32(h>>56) << dedupTagShift
	for i := h & mask; ; i = (i + 1) & mask {
		sl := g.slots[i]
		if sl == 0 {
			return nil
		}
		if sl&^(1<<dedupTagShift-1) == tag {
			if e := &g.log[sl&(1<<dedupTagShift-1)-1]; e.id == id {
				return e
			}
		}
	}
}

// add appends id, which g lacks, to the log and indexes it, first doubling the table if
// that would leave it more than half full.
func (g *dedupGen) add(d *dedupSet, id uuid.UUID, h uint64, expires int64) {
	if 2*(len(g.log)+1) > len(g.slots) {
		g.slots = make([]uint32, 2*len(g.slots))
		for i := range g.log {
			g.index(d.hash(g.log[i].id), i)
		}
	}
	g.log = append(g.log, dedupEntry{id: id, expires: expires})
	g.index(h, len(g.log)-1)
	g.n++
}

// index puts log entry i, whose ID's hash is h, into the first empty slot from h on.
func (g *dedupGen) index(h uint64, i int) {
	mask := uint64(len(g.slots) - 1)
	j := h & mask
	for g.slots[j] != 0 {
		j = (j + 1) & mask
	}
	g.slots[j] = uint32(h>>56)<<dedupTagShift | uint32(i+1)
}
