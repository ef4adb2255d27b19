package eventbus

import (
	"log/slog"
	"runtime"
	"time"

	"github.com/ae30fb47/eventbus/internal/ring"
)

// The queue of a subscription is its intake (a ring that publishers fill without the lock;
// see handoff.go) and its slots, for the events that must wait under the lock: behind a
// busy key, for a retry, or with a waiting publisher. Slots are a slab that grows up to
// the most the subscription may hold and is reused through a free list, so the steady
// state allocates nothing. Slots are linked into lists by index:
//
//   - the ready list, FIFO: events a worker may take now;
//   - per key, a chain (nextKey) of the events waiting behind the one event of that key that
//     is ready, running or waiting to retry (see keys.go).
//
// An event taken straight from the intake gets a slot only if it fails.

type slot[T any] struct {
	ev       Event[T]
	next     int32 // next slot in the ready or free list
	nextKey  int32 // next event with the same key, or -1
	attempts int32
	state    slotState
	lastErr  error       // the error of the last failed attempt
	timer    *time.Timer // the retry timer while state is slotBackoff
	wait     *waiter     // the waiting publisher, if any
}

type slotState uint8

const (
	slotFree    slotState = iota
	slotPending           // behind an earlier event with the same key
	slotReady             // in the ready list
	slotRunning           // held by a worker
	slotBackoff           // waiting for its retry timer
)

// commitDirectLocked places ev straight into the slots, after every event already claimed in
// the intake, so that the events of one publisher keep their order. A cell claimed but not
// yet filled is waited for: its publisher is between two instructions of commit, which
// never waits. Events moved from the intake to wait behind their keys may leave the
// subscription stalled, so it looks.
func (s *subscription[T]) commitDirectLocked(ev *Event[T], w *waiter) {
	drained := false
	for t := s.tail.Load(); s.head < t; {
		s.drainIntakeLocked()
		drained = true
		if s.head < t {
			s.mu.Unlock()
			runtime.Gosched()
			s.mu.Lock()
		}
	}
	s.stats.direct++
	s.commitLocked(ev, w)
	if drained {
		s.wakeIfStalledLocked()
	}
}

// commitLocked gives ev a slot: ready, or pending behind the busy event of its key.
func (s *subscription[T]) commitLocked(ev *Event[T], w *waiter) {
	i := s.allocLocked()
	sl := &s.slots[i]
	sl.ev = *ev
	sl.wait = w
	sl.nextKey = -1
	if ev.Key != "" && s.chainLocked(i, ev.Key) {
		sl.state = slotPending
		return
	}
	s.pushReadyLocked(i)
}

func (s *subscription[T]) allocLocked() int32 {
	if i := s.free; i >= 0 {
		s.free = s.slots[i].next
		return i
	}
	s.slots = append(s.slots, slot[T]{})
	return int32(len(s.slots) - 1)
}

// pushReadyLocked appends slot i to the ready list and wakes an idle worker for it.
func (s *subscription[T]) pushReadyLocked(i int32) {
	sl := &s.slots[i]
	sl.state = slotReady
	sl.next = -1
	if s.readyTail < 0 {
		s.readyHead = i
	} else {
		s.slots[s.readyTail].next = i
	}
	s.readyTail = i
	s.readyLen++
	if s.sleepers.Load() > 0 {
		s.work.Signal()
	}
}

func (s *subscription[T]) popReadyLocked() int32 {
	i := s.readyHead
	if i >= 0 {
		s.readyHead = s.slots[i].next
		if s.readyHead < 0 {
			s.readyTail = -1
		}
		s.readyLen--
	}
	return i
}

// nextIntakeLocked returns the next filled intake cell, or nil. The caller takes its record
// and then calls releaseIntakeLocked.
func (s *subscription[T]) nextIntakeLocked() *ring.Cell[record[T]] { return s.intake.Next(s.head) }

// releaseIntakeLocked frees the cell nextIntakeLocked returned for the next lap. The cell
// keeps its copy of the record until the next lap overwrites it: clearing it would make
// its cache lines bounce once more per event between publisher and worker, and the ring
// holds at most maxIntake such stale copies.
func (s *subscription[T]) releaseIntakeLocked(c *ring.Cell[record[T]]) {
	s.intake.Release(c, s.head)
	s.head++
}

// drainIntakeLocked moves every filled intake cell, in order, into the slots.
func (s *subscription[T]) drainIntakeLocked() {
	for c := s.nextIntakeLocked(); c != nil; c = s.nextIntakeLocked() {
		var ev Event[T]
		c.Val.event(&ev, s.topic, s.bus.source)
		s.commitLocked(&ev, nil)
		s.releaseIntakeLocked(c)
	}
}

// slotForLocked gives an event taken straight from the intake a slot, once it needs one to
// be retried or dead-lettered; next is the first slot chained behind it, or -1. The slot
// holds the event's key from now on.
func (s *subscription[T]) slotForLocked(ev *Event[T], next int32) int32 {
	i := s.allocLocked()
	sl := &s.slots[i]
	sl.ev = *ev
	sl.wait = nil
	sl.nextKey = next
	sl.state = slotRunning
	if ev.Key != "" && next < 0 {
		s.setKeyLocked(ev.Key, i) // the last of its key's chain; else keys has the key already
	}
	return i
}

// finishLocked ends event i for good: handled if err is nil, dead-lettered otherwise. It
// tells a waiting publisher, releases the event's key to the next event with that key,
// frees the slot and gives the room back.
func (s *subscription[T]) finishLocked(i int32, err error) {
	sl := &s.slots[i]
	if s.dedup != nil && sl.attempts > 0 { // a delivery that ran the handler, not a repeat
		s.dedup.Settled(sl.ev.ID)
	}
	if sl.wait != nil {
		if err != nil {
			_, stopped := err.(*stoppedError)
			err = &DeliveryError{Topic: s.topic, Subscriber: s.name, Attempts: int(sl.attempts), Err: err, Stopped: stopped}
		}
		sl.wait.done(err)
	}
	if key := sl.ev.Key; key != "" {
		if next := sl.nextKey; next >= 0 {
			s.pushReadyLocked(next)
		} else {
			s.deleteKeyLocked(key)
		}
	}
	*sl = slot[T]{next: s.free} // drop references for the garbage collector
	s.free = i
	s.releaseNLocked(1)
}

// retryLaterLocked parks event i until its backoff has passed. Its key stays busy, so later
// events with that key keep waiting; the worker moves on to other events.
func (s *subscription[T]) retryLaterLocked(i int32, err error) {
	sl := &s.slots[i]
	if s.dedup != nil {
		// Only the delivery that recorded the ID runs the handler, so this is it: its
		// repeats are skipped until finishLocked settles it.
		s.dedup.Retry(sl.ev.ID)
	}
	s.backoff++
	sl.state = slotBackoff
	sl.lastErr = err
	s.timers.Add(1)
	wait := s.retry.backoff(int(sl.attempts))
	if lg := s.bus.logger; lg.Enabled(s.ctx, slog.LevelDebug) {
		lg.LogAttrs(s.ctx, slog.LevelDebug, "eventbus: retrying",
			slog.String("topic", s.topic), slog.String("subscriber", s.name),
			slog.String("id", sl.ev.ID.String()), slog.Int("attempts", int(sl.attempts)),
			slog.Duration("backoff", wait), slog.Any("error", err))
	}
	sl.timer = time.AfterFunc(wait, func() {
		s.mu.Lock()
		s.retryDueLocked(i)
		s.mu.Unlock()
		s.timers.Done()
	})
}

// retryDueLocked makes event i ready again after its backoff, unless abort already did.
func (s *subscription[T]) retryDueLocked(i int32) {
	sl := &s.slots[i]
	if sl.state != slotBackoff {
		return
	}
	sl.timer = nil
	s.backoff--
	s.pushReadyLocked(i)
}
