package eventbus

import (
	"encoding/binary"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// record is an event as the intake carries it: only what varies per event. The topic and
// source are the subscription's, and the time and the ID's random bits stand for the whole
// Time and ID, so that a record of a small payload fills one cache line and the hand-off
// from a publisher's core to a worker's moves as few lines as it can.
//
// Events whose envelope a record cannot hold (a supplied ID, time or source) or that carry a
// waiter take the subscription's locked path instead, as whole [Event] values.
type record[T any] struct {
	nanos   int64  // the publish time, Unix nanoseconds
	rnd     uint64 // the random bits of the ID
	key     string
	md      Metadata
	payload T
}

// stamp returns the time and random bits of a new event's envelope.
func (b *Bus) stamp() (nanos int64, rnd uint64) {
	return b.clock.nowNanos(), rand.Uint64()
}

// event fills *ev with the envelope that r stands for, on topic with source.
func (r *record[T]) event(ev *Event[T], topic, source string) {
	ev.ID = idFrom(r.nanos, r.rnd)
	ev.Type = topic
	ev.Source = source
	ev.Time = time.Unix(0, r.nanos)
	ev.Key = r.key
	ev.Payload = r.payload
	ev.Metadata = r.md
}

// stampCache remembers the time fields of the last record a worker turned into an event:
// the bus clock ticks every 100µs, so most records share their publish time with the one
// before, and their Time and the time half of their ID need not be computed again.
type stampCache struct {
	nanos int64
	time  time.Time
	hi    uint64 // the first 8 bytes of the ID, big-endian: milliseconds, version, fraction
}

// eventCached fills *ev like r.event, with the time fields from c when r shares its time.
func (r *record[T]) eventCached(ev *Event[T], topic, source string, c *stampCache) {
	if r.nanos != c.nanos || c.time.IsZero() {
		c.nanos, c.time, c.hi = r.nanos, time.Unix(0, r.nanos), idTime(r.nanos)
	}
	binary.BigEndian.PutUint64(ev.ID[0:8], c.hi)
	binary.BigEndian.PutUint64(ev.ID[8:16], idRand(r.rnd))
	ev.Type = topic
	ev.Source = source
	ev.Time = c.time
	ev.Key = r.key
	ev.Payload = r.payload
	ev.Metadata = r.md
}

// idFrom returns the UUIDv7 of an event published at nanos (Unix nanoseconds) with random
// bits rnd, per RFC 9562: 48 bits of Unix milliseconds, then 12 bits of sub-millisecond
// fraction (the "increased clock precision" method, so IDs made about 250 ns apart sort in
// time order), then 62 of the random bits. rnd comes from the runtime's per-thread
// generator, so making an ID takes no lock and no system call.
func idFrom(nanos int64, rnd uint64) uuid.UUID {
	var id uuid.UUID
	binary.BigEndian.PutUint64(id[0:8], idTime(nanos))
	binary.BigEndian.PutUint64(id[8:16], idRand(rnd))
	return id
}

// idTime is the first half of the UUIDv7 of an event published at nanos.
func idTime(nanos int64) uint64 {
	ms := uint64(nanos / 1e6)
	frac := uint64(nanos%1e6) * 4096 / 1e6 // 0..4095
	return ms<<16 | 0x7000 | frac
}

// idRand is the second half of a UUIDv7 with random bits rnd: the variant, then 62 bits.
func idRand(rnd uint64) uint64 { return rnd&(1<<62-1) | 1<<63 }

// intakeCell is one cell of a subscription's intake ring (Vyukov's bounded queue). A
// publisher that claimed position pos waits for seq == pos, fills the cell and sets seq =
// pos+1; the worker that takes it sets seq = pos+len(intake), freeing it for the next lap.
type intakeCell[T any] struct {
	seq atomic.Uint64
	rec record[T]
}

// maxIntake bounds the intake ring, which is as large as the buffer up to this many cells
// (256 KiB for a payload of 16 bytes). A subscription with a larger buffer holds the rest
// in its slots: publishers that find the ring full take the locked path.
const maxIntake = 4096

// newIntake returns a ring of at least n cells (a power of two, at most maxIntake) and its
// index mask.
func newIntake[T any](n int) ([]intakeCell[T], uint64) {
	size := 1
	for size < min(n, maxIntake) {
		size *= 2
	}
	cells := make([]intakeCell[T], size)
	for i := range cells {
		cells[i].seq.Store(uint64(i))
	}
	return cells, uint64(size - 1)
}

// claimIntake claims the next intake cell for the caller to fill, then hand over with
// fillIntake; workers stop at that cell until then. It reports false if the ring is full.
func (s *subscription[T]) claimIntake() (*intakeCell[T], uint64, bool) {
	for {
		pos := s.tail.Load()
		c := &s.intake[pos&s.mask]
		seq := c.seq.Load()
		if seq < pos { // the cell still holds the event of the previous lap: full
			return nil, 0, false
		}
		if seq == pos && s.tail.CompareAndSwap(pos, pos+1) {
			return c, pos, true
		}
	}
}

// fillIntake hands over cell c, claimed at pos and holding its record, and wakes a worker
// if one is idle.
func (s *subscription[T]) fillIntake(c *intakeCell[T], pos uint64) {
	c.seq.Store(pos + 1)
	// A worker announces itself in sleepers before it looks at the intake a last time, and
	// we look at sleepers after filling the cell: one of us sees the other.
	s.nudgeWorkers()
}

// pushIntake puts a copy of r into the intake ring and wakes a worker if one is idle. It
// reports false, doing nothing, if the ring is full.
func (s *subscription[T]) pushIntake(r *record[T]) bool {
	c, pos, ok := s.claimIntake()
	if !ok {
		return false
	}
	c.rec = *r
	s.fillIntake(c, pos)
	return true
}

// pushReserved puts a copy of r into the intake ring, for an event whose room was reserved
// within capacity, when the ring is as large as the buffer (roomIsCell): the reservation
// then proves that the next cell is free, so the publisher claims it with one atomic add
// and writes it without first reading its sequence number. That read would fetch the line
// from the worker's core only for the write to fetch it again, exclusive; in a fan-out the
// publisher pays that once per subscriber.
//
// The proof: the cells of positions pos-len(intake) to pos-1 and the event at pos are
// len(intake)+1 reservations. The last of them to reserve found fewer than capacity
// <= len(intake) events held, so one of the others had been finished and its room given
// back before that; workers take positions in order, so position pos-len(intake) had been
// taken and its cell released before. The chain of atomic operations on held and tail
// carries that release to this publisher.
func (s *subscription[T]) pushReserved(r *record[T]) {
	pos := s.tail.Add(1) - 1
	c := &s.intake[pos&s.mask]
	c.rec = *r
	s.fillIntake(c, pos)
}

// intakeFilledLocked reports whether the next intake cell holds an event.
func (s *subscription[T]) intakeFilledLocked() bool {
	return s.intake[s.head&s.mask].seq.Load() == s.head+1
}

// nextIntakeLocked returns the next filled intake cell, or nil. The caller takes its record
// and then calls releaseIntakeLocked.
func (s *subscription[T]) nextIntakeLocked() *intakeCell[T] {
	c := &s.intake[s.head&s.mask]
	if c.seq.Load() != s.head+1 {
		return nil
	}
	return c
}

// releaseIntakeLocked frees the cell nextIntakeLocked returned for the next lap.
//
// The cell keeps its copy of the record until the next lap overwrites it: clearing it
// would make the cache lines bounce once more per event between publisher and worker, and
// the ring holds at most maxIntake such stale copies.
func (s *subscription[T]) releaseIntakeLocked(c *intakeCell[T]) {
	c.seq.Store(s.head + uint64(len(s.intake)))
	s.head++
}

// drainIntakeLocked moves every filled intake cell, in order, into the slots.
func (s *subscription[T]) drainIntakeLocked() {
	for c := s.nextIntakeLocked(); c != nil; c = s.nextIntakeLocked() {
		var ev Event[T]
		c.rec.event(&ev, s.topic, s.bus.source)
		s.commitLocked(&ev, nil)
		s.releaseIntakeLocked(c)
	}
}
