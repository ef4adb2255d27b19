package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"time"
)

// subscription is one subscriber's queue and workers.
//
// Publishers hand events over through the intake, a bounded ring of compact records (see
// intake.go), without taking the subscription's lock. Workers take them from the intake
// straight into their batches, keyed ones too while their key is free (see keys.go). Events
// that must wait get a slot: slots are a slab that grows up to the most the subscription may
// hold and is reused through a free list, so the steady state allocates nothing. Slots are
// linked into lists by index:
//
//   - the ready list, FIFO: events a worker may take now;
//   - per key, a chain (nextKey) of the events waiting behind the one event of that key that
//     is ready, running or waiting to retry; keys maps each key with a chain or a slot of its
//     own to its chain's last slot.
//
// So at most one event per key is ever ready or running, and a key waiting out a retry
// backoff holds up only its own chain: workers take any other ready event. An event taken
// straight from the intake gets a slot only if it fails.
type subscription[T any] struct {
	subCore
	handler func(context.Context, Event[T]) error
	chain   Handler // the handler wrapped in middleware, or nil without middleware

	intake []intakeCell[T] // length a power of two
	mask   uint64

	slots     []slot[T]
	free      int32 // head of the free list, or -1
	readyHead int32 // head of the ready list, or -1
	readyTail int32
	keys      map[string]int32
	keyCounts [64]int32 // keys in keys by bit h%64 of their hash h; see mayHaveKeyLocked

	flights      []inflight // per worker: keyed events running straight from the intake
	inflightKeys int        // live entries in flights
	keySeed      uint64     // of keyHash
	plain        bool       // no handler timeout and no middleware: runFrom calls the handler itself
	roomIsCell   bool       // the buffer fits in the intake: room reserved is a free cell; see pushReserved
}

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

func newSubscription[T any](b *Bus, topic, name string, h func(context.Context, Event[T]) error, cfg subscribeConfig) *subscription[T] {
	s := &subscription[T]{
		handler:   h,
		chain:     chain(h, b.middleware, cfg.middleware),
		free:      -1,
		readyHead: -1,
		readyTail: -1,
		keys:      make(map[string]int32),
		flights:   make([]inflight, cfg.concurrency),
		keySeed:   rand.Uint64(),
	}
	s.intake, s.mask = newIntake[T](cfg.buffer)
	s.roomIsCell = cfg.buffer <= len(s.intake)
	s.bus = b
	s.source = b.source
	s.topic = topic
	s.name = name
	s.capacity = cfg.buffer
	s.nearlyFull = nearlyFullCount(cfg.buffer)
	s.releaseBatch = int64(min(max(cfg.buffer/16, 1), 32))
	s.concurrency = cfg.concurrency
	s.retry = cfg.retry
	s.deadLetter = cfg.deadLetter
	s.timeout = cfg.timeout
	s.plain = s.timeout == 0 && s.chain == nil
	if cfg.dedupWindow > 0 {
		s.dedup = newDedupSet(cfg.dedupWindow, cfg.dedupMax)
	}
	if cfg.breakerFailures > 0 {
		s.breaker = &breaker{failures: cfg.breakerFailures, coolDown: cfg.breakerCoolDown}
	}
	s.done = make(chan struct{})
	s.work.L = &s.mu
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	return s
}

// start launches the workers; they run until the subscription is closed and empty.
func (s *subscription[T]) start() {
	ctx := context.WithValue(s.ctx, handlerKey{}, &s.subCore)
	dlCtx := context.WithoutCancel(ctx)
	s.live.Store(int32(s.concurrency))
	for w := range s.concurrency {
		go s.runWorker(ctx, dlCtx, &s.flights[w])
	}
}

// enqueue accepts an event, waiting while the subscription is full; see reserve and commit.
func (s *subscription[T]) enqueue(ctx context.Context, o *outgoing[T]) error {
	if s.reserveSoon(ctx) {
		s.commit(o, false)
		return nil
	}
	s.mu.Lock()
	unblock, _, err := s.reserveLocked(ctx)
	if err == nil {
		ev := o.envelope(s)
		s.commitDirectLocked(&ev, o.wait)
	}
	s.mu.Unlock()
	if unblock != nil {
		unblock.unblockPublisher()
	}
	return err
}

// enqueueInPlace accepts an event that a record can carry, if the subscription has room,
// writing the record straight into an intake cell so that it is never copied. It reports
// false, doing nothing, if the subscription is full or closing: then the caller takes the
// waiting path of enqueue.
func (s *subscription[T]) enqueueInPlace(b *Bus, payload T, pc *publishConfig) bool {
	if !s.tryReserve() {
		return false
	}
	// Counted before the event is handed over, so before it can be finished: the workers
	// cannot have exited, and folded published into the topic's count, without this count.
	s.published.Add(1)
	if c, pos, ok := s.claimIntake(); ok {
		r := &c.rec
		r.nanos, r.rnd = pc.stamp(b)
		r.key, r.md, r.payload = pc.key, pc.metadata(), payload
		s.fillIntake(c, pos)
		return true
	}
	var o outgoing[T] // the ring is full: commit falls back to the slots
	o.rec.nanos, o.rec.rnd = pc.stamp(b)
	o.rec.key, o.rec.md, o.rec.payload = pc.key, pc.metadata(), payload
	s.commit(&o, false)
	return true
}

// reserve reserves room for one event, waiting while the subscription is full (see
// reserveLocked). The caller must then commit or cancelReservation.
func (s *subscription[T]) reserve(ctx context.Context) (direct bool, err error) {
	if s.reserveSoon(ctx) {
		return false, nil
	}
	s.mu.Lock()
	unblock, direct, err := s.reserveLocked(ctx)
	s.mu.Unlock()
	if unblock != nil {
		unblock.unblockPublisher()
	}
	return direct, err
}

// commit hands over o, for which room was reserved: through the intake if a record can
// carry it, the intake has a free cell and the room is within capacity; else under the lock.
func (s *subscription[T]) commit(o *outgoing[T], direct bool) {
	if !direct && !o.whole {
		if s.roomIsCell {
			s.pushReserved(&o.rec)
			return
		}
		for range 4 {
			if s.pushIntake(&o.rec) {
				return
			}
			yield() // the ring is full: let a worker drain it rather than drain it under the lock
		}
	}
	ev := o.envelope(s)
	s.mu.Lock()
	s.commitDirectLocked(&ev, o.wait)
	s.mu.Unlock()
}

// commitDirectLocked places ev straight into the slots, after every event already claimed in
// the intake, so that the events of one publisher keep their order.
func (s *subscription[T]) commitDirectLocked(ev *Event[T], w *waiter) {
	for t := s.tail.Load(); s.head < t; {
		s.drainIntakeLocked()
		if s.head < t { // a publisher is still filling a cell
			s.mu.Unlock()
			yield()
			s.mu.Lock()
		}
	}
	s.stats.direct++
	s.commitLocked(ev, w)
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

// runWorker is a worker: it takes ready events and handles, retries or dead-letters them
// until the subscription is closed and empty.
//
// Under a backlog a worker takes a small batch of ready events at once, its share of the
// ready list up to maxBatch, to pay for the lock once per batch rather than per event. With
// no backlog it takes one event at a time, so a slow handler holds up no other event.
func (s *subscription[T]) runWorker(ctx, dlCtx context.Context, f *inflight) {
	wb := workBatch[T]{since: time.Now()}
	var d *Delivery // reused by every attempt that goes through middleware
	if s.chain != nil {
		d = new(Delivery)
	}
	s.mu.Lock()
	for {
		n := s.takeLocked(&wb, f)
		if n == 0 {
			s.flushLocked()
			if s.waiters.Load() > 0 && s.stalledLocked() {
				// This worker has nothing to run and every busy one is blocked publishing:
				// a handler waiting for room here may close a cycle of waits, so it must
				// look again (see reserveLocked).
				s.notifyRoomLocked()
			}
			if s.state.Load() != stateOpen && s.held.Load() == 0 {
				break
			}
			// Announce the sleep, forget any wake-up sent before (it may have found no worker
			// waiting, and must not make later publishers think one is on its way), then look
			// at the intake a last time: see pushIntake and wakeWorker.
			clear(wb.ev[:wb.used]) // keep no payload alive while idle
			wb.used = 0
			s.sleepers.Add(1)
			s.wakePending.Store(false)
			if !s.intakeFilledLocked() {
				s.work.Wait()
				s.wakePending.Store(false)
			}
			s.sleepers.Add(-1)
			continue
		}
		s.running++
		s.mu.Unlock()
		wb.used = max(wb.used, n)

		start := s.bus.clock.nowNanos()
		for j := 0; j < n; {
			j = s.runFrom(ctx, &wb, j, n, d)
		}
		wb.fast = s.bus.clock.nowNanos() == start // the clock did not tick

		s.mu.Lock()
		var handled int64      // events taken straight from the intake and handled, to release
		var ended, dead uint64 // events of the batch that ended, and of those dead-lettered
		for j, i := range wb.slot[:n] {
			err := wb.err[j]
			wb.err[j] = nil
			if s.breaker != nil {
				if err != errNotRun && err != errDuplicate {
					s.attemptedLocked(err == nil, wb.probe)
				} else if wb.probe {
					s.probeNotAttemptedLocked()
				}
			}
			if i < 0 { // taken straight from the intake
				next := int32(-1)
				if wb.ev[j].Key != "" {
					next = s.releaseKeyLocked(f, j)
				}
				if err == nil || err == errDuplicate { // the common case: no slot needed
					if next >= 0 {
						s.pushReadyLocked(next)
					}
					if err == errDuplicate {
						s.stats.duplicates++
					}
					handled++
					continue
				}
				i = s.slotForLocked(&wb.ev[j], next)
			}
			sl := &s.slots[i]
			switch {
			case err == errNotRun:
				err = closedError(sl.lastErr)
			case err == errDuplicate:
				s.stats.duplicates++
				s.stats.handled++
				ended++
				s.finishLocked(i, nil)
				wb.ev[j] = Event[T]{}
				continue
			case err == nil:
				sl.attempts++
				s.stats.handled++
				ended++
				s.finishLocked(i, nil)
				wb.ev[j] = Event[T]{}
				continue
			default:
				sl.attempts++
				s.stats.failed++
				if s.state.Load() == stateAborting {
					err = closedError(err)
				} else if int(sl.attempts) < s.retry.MaxAttempts && !isPermanent(err) {
					s.stats.retries++
					s.retryLaterLocked(i, err)
					wb.ev[j] = Event[T]{}
					continue
				}
			}
			attempts := int(sl.attempts)
			if s.dedup != nil && attempts > 0 {
				// Only the delivery that recorded the ID runs the handler, so this is it.
				s.dedup.forget(wb.ev[j].ID)
			}
			s.mu.Unlock()
			s.deadLetterEvent(dlCtx, &wb.ev[j], attempts, err)
			s.mu.Lock()
			s.stats.deadLettered++
			ended++
			dead++
			s.finishLocked(i, err)
			wb.ev[j] = Event[T]{}
		}
		if handled > 0 {
			s.stats.handled += uint64(handled)
			ended += uint64(handled)
			s.releaseNLocked(handled)
		}
		if ended > 0 {
			s.stats.outcomes.add(s.bus.clock.nowNanos(), ended, dead)
		}
		if wb.sampled {
			wb.sampled = false
			s.stats.latency.record(wb.sampleEnd, wb.sample)
		}
		s.running--
	}
	if s.live.Add(-1) == 0 {
		close(s.done)
		if s.exited != nil {
			s.exited()
		}
	}
	s.mu.Unlock()
}

// workBatch is the events a worker holds between two takes. Their keys, if taken straight
// from the intake, are in the worker's inflight set at the same positions.
type workBatch[T any] struct {
	slot    [maxBatch]int32 // slot indexes, or -1 for events taken straight from the intake
	ev      [maxBatch]Event[T]
	attempt [maxBatch]int32 // the attempt about to run, from 1
	err     [maxBatch]error
	used    int  // positions of ev that may hold an event since the worker last went idle
	fast    bool // the last batch ran within a tick of the bus clock; see takeLocked
	probe   bool // the batch is the circuit breaker's half-open probe
	stamps  stampCache

	// One attempt in latencySampleEvery is timed (at most one per batch, as the batch is
	// smaller); the sample is recorded with the batch's outcomes. Timing reads only the
	// monotonic clock, as a duration since the worker started: time.Now reads the wall
	// clock too, which doubles the cost, a few percent of a worker's time on a KVM guest.
	since     time.Time // when the worker started
	attempts  uint32    // handler attempts so far, for sampling
	sampled   bool
	sample    time.Duration
	sampleEnd time.Time
}

// maxBatch is the most events a worker takes at once.
const maxBatch = 16

// errNotRun marks a batched event whose handler was not run because the subscription began
// to abort, and errDuplicate one skipped by de-duplication; neither leaves the worker.
var (
	errNotRun    = errors.New("eventbus: not run")
	errDuplicate = errors.New("eventbus: duplicate")
)

// takeLocked fills the worker's batch with events to run, as many as its share of the
// backlog (one if there is none) and the circuit breaker admit, and returns how many. Ready
// events go first; then the intake is taken in order: an event whose key is free (or that
// has none) goes straight into the batch while it has room, its key registered in f, and
// one whose key is busy into the slots, behind its key.
func (s *subscription[T]) takeLocked(wb *workBatch[T], f *inflight) int {
	s.takes.Add(1)
	// A batch is this worker's share of the backlog: with all workers while its handlers
	// may be slow, so that those the clock wakes for the rest find it (see nudgeWorkers);
	// with the workers that are awake once its last batch ran within a tick.
	want := 1
	share := s.concurrency
	if wb.fast {
		share = max(int(s.live.Load()-s.sleepers.Load()), 1)
	}
	if backlog := s.readyLen + int(s.tail.Load()-s.head); backlog > share {
		want = min(maxBatch, backlog/share)
	}
	if s.breaker != nil {
		want = s.admitLocked(want)
	}
	n := s.takeReadyLocked(wb, 0, want)
	for c := s.nextIntakeLocked(); c != nil; c = s.nextIntakeLocked() {
		r := &c.rec
		switch {
		case n >= want && n > 0:
			// The batch is full: leave this event and those after it where they are, for
			// the next take, rather than copy them into slots. An idle worker may take them
			// meanwhile, if the busy ones are slow. (A worker admitted no event, by the
			// circuit breaker, moves the intake into the slots instead, so that it can
			// sleep.)
			s.nudgeWorkers()
			return s.takenLocked(wb, n)
		case n < want && (r.key == "" || s.claimKeyLocked(r.key, f, n)):
			wb.slot[n], wb.attempt[n] = -1, 1
			r.eventCached(&wb.ev[n], s.topic, s.source, &wb.stamps)
			n++
		default:
			var ev Event[T]
			r.event(&ev, s.topic, s.source)
			s.commitLocked(&ev, nil)
		}
		s.releaseIntakeLocked(c)
	}
	return s.takenLocked(wb, s.takeReadyLocked(wb, n, want))
}

// markDuplicatesLocked marks the repeats among the first attempts of the n events of the
// batch, which de-duplication skips, recording the others as seen.
func (s *subscription[T]) markDuplicatesLocked(wb *workBatch[T], n int) {
	var hashes [maxBatch]uint64
	for j := range n {
		hashes[j] = s.dedup.hash(wb.ev[j].ID)
	}
	s.dedup.prefetch(hashes[:n])
	now := s.bus.clock.nowNanos()
	for j := range n {
		if wb.attempt[j] == 1 && !s.dedup.first(wb.ev[j].ID, hashes[j], now) {
			wb.err[j] = errDuplicate
		}
	}
}

// takenLocked marks the repeats among the n events of the batch that de-duplication skips,
// tells the circuit breaker, if any, that a worker took them, and returns n.
func (s *subscription[T]) takenLocked(wb *workBatch[T], n int) int {
	if s.dedup != nil {
		s.markDuplicatesLocked(wb, n)
	}
	if s.breaker != nil {
		wb.probe = s.tookLocked(n)
	}
	return n
}

// takeReadyLocked moves ready events into the batch from position n until it holds want.
func (s *subscription[T]) takeReadyLocked(wb *workBatch[T], n, want int) int {
	for ; n < want; n++ {
		i := s.popReadyLocked()
		if i < 0 {
			break
		}
		sl := &s.slots[i]
		sl.state = slotRunning
		wb.slot[n], wb.ev[n], wb.attempt[n] = i, sl.ev, sl.attempts+1
	}
	return n
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

// runFrom runs the attempts of the batch's events from position j to n, recording each
// one's error in wb.err, and returns n; or, if an attempt panics, records a *PanicError for
// it and returns the position after it, for the caller to go on from there. Recovering
// once per batch rather than once per attempt keeps a deferred call off the per-event path.
func (s *subscription[T]) runFrom(ctx context.Context, wb *workBatch[T], j, n int, d *Delivery) (next int) {
	defer func() {
		if r := recover(); r != nil {
			wb.err[j] = &PanicError{Value: r, Stack: debug.Stack()}
			next = j + 1
		}
	}()
	for ; j < n; j++ {
		switch {
		case s.state.Load() == stateAborting:
			wb.err[j] = errNotRun
		case wb.err[j] == errDuplicate: // marked by takeLocked
		default:
			if wb.attempts++; wb.attempts%latencySampleEvery == 0 {
				start := time.Since(wb.since)
				wb.err[j] = s.attempt(ctx, wb, j, d)
				end := time.Since(wb.since)
				wb.sampleEnd = wb.since.Add(end)
				wb.sample, wb.sampled = end-start, true
				continue
			}
			if s.plain {
				wb.err[j] = s.handler(ctx, wb.ev[j])
			} else {
				wb.err[j] = s.attempt(ctx, wb, j, d)
			}
		}
	}
	return n
}

// attempt runs one attempt of the batch's event at position j, through the handler timeout
// if the subscription has one.
func (s *subscription[T]) attempt(ctx context.Context, wb *workBatch[T], j int, d *Delivery) error {
	if s.timeout > 0 {
		return withTimeout(ctx, s.timeout, func(ctx context.Context) error {
			return s.call(ctx, &wb.ev[j], int(wb.attempt[j]), d)
		})
	}
	return s.call(ctx, &wb.ev[j], int(wb.attempt[j]), d)
}

// call runs the handler, through the middleware if any.
func (s *subscription[T]) call(ctx context.Context, ev *Event[T], attempt int, d *Delivery) error {
	if s.chain == nil {
		return s.handler(ctx, *ev)
	}
	*d = Delivery{
		ID: ev.ID, Type: ev.Type, Source: ev.Source, Time: ev.Time, Key: ev.Key,
		Metadata: ev.Metadata, Subscriber: s.name, Attempt: attempt, event: ev,
	}
	err := s.chain(ctx, d)
	d.event, d.Metadata = nil, nil // do not keep the event alive until the next attempt
	return err
}

// finishLocked ends event i for good: handled if err is nil, dead-lettered otherwise. It
// releases the event's key to the next event with that key and frees the slot.
func (s *subscription[T]) finishLocked(i int32, err error) {
	sl := &s.slots[i]
	if s.dedup != nil && sl.attempts > 0 { // a delivery that ran the handler, not a repeat
		s.dedup.settled(sl.ev.ID)
	}
	if sl.wait != nil {
		if err != nil {
			err = &DeliveryError{Topic: s.topic, Subscriber: s.name, Attempts: int(sl.attempts), Err: err}
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
	s.releaseLocked()
}

// retryLaterLocked parks event i until its backoff has passed. Its key stays busy, so later
// events with that key keep waiting; the worker moves on to other events.
func (s *subscription[T]) retryLaterLocked(i int32, err error) {
	sl := &s.slots[i]
	if s.dedup != nil {
		// Only the delivery that recorded the ID runs the handler, so this is it: its
		// repeats are skipped until finishLocked settles it.
		s.dedup.retry(sl.ev.ID)
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

// abort stops the subscription hard: handlers' contexts are cancelled, retry waits end, and
// every event not yet handled is dead-lettered with an error wrapping ErrClosed.
func (s *subscription[T]) abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.state.Load() == stateAborting {
		return
	}
	s.state.Store(stateAborting)
	s.cancel(ErrClosed)
	s.stopBreakerLocked()
	for i := range s.slots {
		sl := &s.slots[i]
		if sl.state == slotBackoff && sl.timer.Stop() {
			s.timers.Done()
			s.retryDueLocked(int32(i))
		}
	}
	s.notifyRoomLocked()
	s.work.Broadcast()
}

// beginClose stops intake; the workers handle what was accepted, then exit.
func (c *subCore) beginClose() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.state.CompareAndSwap(stateOpen, stateClosing)
	c.notifyRoomLocked()
	c.work.Broadcast()
}

// wait blocks until the workers and retry timers are gone. Once the workers are, nothing
// is held, so a cool-down of the circuit breaker has nothing left to hold back: it ends
// rather than keep Close waiting.
func (c *subCore) wait() {
	<-c.done
	c.mu.Lock()
	c.stopBreakerLocked()
	c.mu.Unlock()
	c.timers.Wait()
}

// closedError is the error of an event dead-lettered because its subscription stopped.
func closedError(last error) error {
	if last == nil {
		return ErrClosed
	}
	return fmt.Errorf("%w; last error: %w", ErrClosed, last)
}

// deadLetterEvent hands event ev to the dead-letter hook, logging a failure of the hook.
func (s *subscription[T]) deadLetterEvent(ctx context.Context, ev *Event[T], attempts int, err error) {
	dl := DeadLetter{
		Event: Event[any]{
			ID: ev.ID, Type: ev.Type, Source: ev.Source, Time: ev.Time,
			Key: ev.Key, Payload: ev.Payload, Metadata: ev.Metadata,
		},
		Subscriber: s.name,
		Attempts:   attempts,
		Err:        err,
	}
	s.bus.deliverDeadLetter(ctx, s.deadLetter, dl)
}
