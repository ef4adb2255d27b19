package eventbus

import (
	"context"
	"errors"
	"runtime/debug"
	"time"
)

// A worker is one of a subscription's goroutines. It loops over four steps until the
// subscription is closed and empty:
//
//  1. take a batch under the lock (takeLocked): its share of the backlog, up to maxBatch
//     events, from the ready list and then straight from the intake;
//  2. if there is none, sleep until there is (sleepLocked);
//  3. run the batch's handlers without the lock (runBatch), recovering panics;
//  4. settle each outcome under the lock (settleLocked): handled, a repeat skipped, retried
//     later, or dead-lettered; the dead-letter hooks run without the lock (deadLetter), and
//     the events they got end after them (buryLocked).
//
// Under a backlog a worker takes several events at once, to pay for the lock once per batch
// rather than per event; with no backlog it takes one at a time, so a slow handler holds up
// no other event.
//
// A handler, middleware or hook that calls runtime.Goexit (t.FailNow does) ends the
// goroutine whatever the worker does; the worker records it (a failed attempt, or a failed
// hook) and goes on from there on a new goroutine (see survive).
type worker[T any] struct {
	s         *subscription[T]
	hookScope handlerScope // the ctx of dead-letter hooks, never cancelled (see hookCtx)
	keys      *inflight    // its keyed events taken straight from the intake
	delivery  *Delivery    // reused by every attempt through middleware, or nil
	batch     workBatch[T]
	resumeAt  resumePoint // where to go on after runtime.Goexit, if set
	exited    bool        // the loop ended: the goroutine returns
}

// workBatch is the events a worker holds between two takes. Their keys, if taken straight
// from the intake, are in the worker's inflight set at the same positions.
type workBatch[T any] struct {
	n       int                    // events in the batch
	slot    [maxBatch]int32        // slot indexes, or -1 for events taken straight from the intake
	ev      [maxBatch]Event[T]     // the events, which stay reachable until overwritten
	attempt [maxBatch]int32        // the attempt about to run, from 1; once settled, attempts made
	err     [maxBatch]error        // each attempt's error, then the dead letter's
	dead    int                    // events to dead-letter, at positions deadPos[:dead]
	deadPos [maxBatch]int          // positions in the batch
	fast    bool                   // the last batch ran within a tick of the bus clock; see wantLocked
	probe   bool                   // the batch is the circuit breaker's half-open probe
	stamps  stampCache             // the time fields of the last event taken
	sample  latencySample          // one attempt in latencySampleEvery is timed
	scope   [maxBatch]handlerScope // the handlers' ctx, one per position (see handlerCtx)
}

// maxBatch is the most events a worker takes at once.
const maxBatch = 16

// resumePoint is where a worker goes on after a runtime.Goexit: in the batch's handlers or
// in its dead-letter hooks, from position pos.
type resumePoint struct {
	set   bool
	hooks bool
	pos   int
}

// errNotRun marks a batched event whose handler was not run because the subscription began
// to abort, and errDuplicate one skipped by de-duplication; neither leaves the worker.
var (
	errNotRun    = errors.New("eventbus: not run")
	errDuplicate = errors.New("eventbus: duplicate")
)

// goexitError is the error of an attempt whose handler or middleware called
// runtime.Goexit, as t.FailNow and t.SkipNow do: the attempt failed.
type goexitError struct{ stack []byte }

func (e *goexitError) Error() string {
	return "eventbus: handler called runtime.Goexit (t.FailNow in a handler?); stack:\n" + string(e.stack)
}

// run is the worker's goroutine.
func (w *worker[T]) run() {
	defer w.survive()
	w.s.mu.Lock()
	w.loopLocked()
}

// loopLocked is the worker's loop; mu is held on entry and released on return.
func (w *worker[T]) loopLocked() {
	s := w.s
	for {
		if !w.takeLocked() {
			if w.sleepLocked() {
				continue
			}
			break
		}
		s.running++
		s.mu.Unlock()
		w.runBatch(0)
		w.settle()
	}
	w.exited = true
	if s.live.Add(-1) == 0 {
		close(s.done)
		s.topicState.fold(&s.subCore)
	}
	s.mu.Unlock()
}

// survive runs as the worker's goroutine ends. If it ends by runtime.Goexit from user code
// (resumeAt is set), the worker goes on from there on a new goroutine, which takes the old
// one's place: it counts in live as that one did.
func (w *worker[T]) survive() {
	if w.exited || !w.resumeAt.set {
		return // the loop ended, or a panic of the bus's own is on its way up
	}
	at := w.resumeAt
	w.resumeAt = resumePoint{}
	go w.resume(at)
}

// resume finishes the batch that a runtime.Goexit interrupted at, then goes on as run.
func (w *worker[T]) resume(at resumePoint) {
	defer w.survive()
	s := w.s
	if at.hooks {
		w.deadLetter(at.pos)
		s.mu.Lock()
		w.buryLocked()
		s.running--
	} else {
		w.runBatch(at.pos)
		w.settle()
	}
	w.loopLocked()
}

// wantLocked returns how many events the worker takes: its share of the backlog, one if
// there is none, and no more than the circuit breaker admits. The share is the backlog
// over all workers while its handlers may be slow, so that those the clock wakes for the
// rest find it (see nudgeWorkers); over the workers that are awake once its last batch ran
// within a tick.
func (w *worker[T]) wantLocked() int {
	s := w.s
	want := 1
	share := s.concurrency()
	if w.batch.fast {
		share = max(int(s.live.Load()-s.sleepers.Load()), 1)
	}
	if backlog := s.readyLen + int(s.tail.Load()-s.head); backlog > share {
		want = min(maxBatch, backlog/share)
	}
	if s.breaker != nil {
		want = s.admitLocked(want)
	}
	return want
}

// takeLocked fills the batch and reports whether it holds an event. Ready events go first;
// then the intake is taken in order: an event whose key is free (or that has none) goes
// straight into the batch while it has room, its key registered in the worker's inflight
// set, and one whose key is busy into the slots, behind its key.
func (w *worker[T]) takeLocked() bool {
	s, b := w.s, &w.batch
	s.takes.Add(1)
	want := w.wantLocked()
	n := w.takeReadyLocked(0, want)
	for c := s.nextIntakeLocked(); c != nil; c = s.nextIntakeLocked() {
		r := &c.Val
		switch {
		case n >= want && n > 0:
			// The batch is full: leave this event and those after it where they are, for
			// the next take, rather than copy them into slots. An idle worker may take them
			// meanwhile, if the busy ones are slow. (A worker admitted no event, by the
			// circuit breaker, moves the intake into the slots instead, so that it can
			// sleep.)
			s.nudgeWorkers()
			return w.takenLocked(n)
		case n < want && (r.key == "" || s.claimKeyLocked(r.key, w.keys, n)):
			b.slot[n], b.attempt[n] = -1, 1
			r.eventCached(&b.ev[n], s.topic, s.bus.source, &b.stamps)
			n++
		default:
			var ev Event[T]
			r.event(&ev, s.topic, s.bus.source)
			s.commitLocked(&ev, nil)
		}
		s.releaseIntakeLocked(c)
	}
	return w.takenLocked(w.takeReadyLocked(n, want))
}

// takeReadyLocked moves ready events into the batch from position n until it holds want,
// and returns how many it holds.
func (w *worker[T]) takeReadyLocked(n, want int) int {
	s, b := w.s, &w.batch
	for ; n < want; n++ {
		i := s.popReadyLocked()
		if i < 0 {
			break
		}
		sl := &s.slots[i]
		sl.state = slotRunning
		b.slot[n], b.ev[n], b.attempt[n] = i, sl.ev, sl.attempts+1
	}
	return n
}

// takenLocked ends a take of n events: it marks the repeats that de-duplication skips and
// tells the circuit breaker, if any, that a worker took them. It reports n > 0.
func (w *worker[T]) takenLocked(n int) bool {
	s, b := w.s, &w.batch
	b.n = n
	if s.dedup != nil {
		w.markDuplicatesLocked()
	}
	if s.breaker != nil {
		b.probe = s.tookLocked(n)
	}
	return n > 0
}

// markDuplicatesLocked marks the repeats among the first attempts of the batch, which
// de-duplication skips, recording the others as seen.
func (w *worker[T]) markDuplicatesLocked() {
	s, b := w.s, &w.batch
	var hashes [maxBatch]uint64
	for j := range b.n {
		hashes[j] = s.dedup.Hash(b.ev[j].ID)
	}
	s.dedup.Prefetch(hashes[:b.n])
	now := s.bus.clock.nowNanos()
	for j := range b.n {
		if b.attempt[j] == 1 && !s.dedup.First(b.ev[j].ID, hashes[j], now) {
			b.err[j] = errDuplicate
		}
	}
}

// sleepLocked waits until there may be work and reports true, or reports false once the
// subscription is closed and empty: then the worker exits.
func (w *worker[T]) sleepLocked() bool {
	s := w.s
	s.flushLocked()
	s.wakeIfStalledLocked() // with nothing for this worker, the busy ones may all be blocked
	if s.state.Load() >= stateClosing && s.held.Load() == 0 {
		return false
	}
	// Announce the sleep, forget any wake-up sent before (it may have found no worker
	// waiting, and must not make later publishers think one is on its way), then look at
	// the intake a last time: see nudgeWorkers and wakeWorker.
	s.sleepers.Add(1)
	s.wakePending.Store(false)
	if s.nextIntakeLocked() == nil {
		s.work.Wait()
		s.wakePending.Store(false)
	}
	s.sleepers.Add(-1)
	return true
}

// runBatch runs the attempts of the batch's events from position j on, recording each
// one's error in the batch.
func (w *worker[T]) runBatch(j int) {
	b := &w.batch
	start := w.s.bus.clock.nowNanos()
	for j < b.n {
		j = w.runFrom(j)
	}
	b.fast = w.s.bus.clock.nowNanos() == start // the clock did not tick
}

// runFrom runs the attempts of the batch's events from position j and returns the
// position to go on from: the batch's end, or, if an attempt panics, the position after it,
// having recorded a *PanicError for it. Recovering once per batch rather than once per
// attempt keeps a deferred call off the per-event path.
func (w *worker[T]) runFrom(j int) (next int) {
	s, b := w.s, &w.batch
	returned := false
	defer func() {
		if returned {
			return
		}
		if r := recover(); r != nil {
			b.err[j] = &PanicError{Value: r, Stack: debug.Stack()}
			next = j + 1
			return
		}
		// runtime.Goexit: this goroutine ends, and survive has another go on.
		b.err[j] = &goexitError{stack: debug.Stack()}
		w.resumeAt = resumePoint{set: true, pos: j + 1}
	}()
	for ; j < b.n; j++ {
		switch {
		case s.state.Load() == stateAborting:
			b.err[j] = errNotRun
		case b.err[j] == errDuplicate: // marked by markDuplicatesLocked
		case b.sample.due():
			b.err[j] = b.sample.time(func() error { return w.attempt(j) })
		case s.plain:
			b.err[j] = s.handler(w.handlerCtx(j), b.ev[j])
		default:
			b.err[j] = w.attempt(j)
		}
	}
	returned = true
	return b.n
}

// attempt runs one attempt of the batch's event at position j, through the handler timeout
// if the subscription has one.
func (w *worker[T]) attempt(j int) error {
	ctx := w.handlerCtx(j)
	if w.s.timeout > 0 {
		return withTimeout(ctx, w.s.timeout, func(ctx context.Context) error {
			return w.call(ctx, j)
		})
	}
	return w.call(ctx, j)
}

// handlerCtx returns the ctx of the handler of the batch's event at position j: the
// subscription's ctx, naming that event while its handler runs (see handlerScope).
func (w *worker[T]) handlerCtx(j int) context.Context {
	ev, sc := &w.batch.ev[j], &w.batch.scope[j]
	sc.id, sc.md = ev.ID, ev.Metadata
	return sc
}

// hookCtx returns the ctx of the dead-letter hook of ev: never cancelled, naming ev.
func (w *worker[T]) hookCtx(ev *Event[T]) context.Context {
	w.hookScope.id, w.hookScope.md = ev.ID, ev.Metadata
	return &w.hookScope
}

// call runs the handler on the batch's event at position j, through the middleware if any.
func (w *worker[T]) call(ctx context.Context, j int) error {
	s, ev := w.s, &w.batch.ev[j]
	if s.chain == nil {
		return s.handler(ctx, *ev)
	}
	d := w.delivery
	*d = Delivery{
		ID: ev.ID, Type: ev.Type, Source: ev.Source, Time: ev.Time, Key: ev.Key,
		Metadata: ev.Metadata, Subscriber: s.name, Attempt: int(w.batch.attempt[j]), event: ev,
	}
	err := s.chain(ctx, d)
	d.event, d.Metadata = nil, nil // do not keep the event alive until the next attempt
	return err
}

// settle records the batch's outcomes and ends its dead letters after their hooks; mu is
// not held on entry and held on return.
func (w *worker[T]) settle() {
	s := w.s
	s.mu.Lock()
	if w.settleLocked() {
		s.mu.Unlock()
		w.deadLetter(0)
		s.mu.Lock()
		w.buryLocked()
	}
	s.running--
}

// settleLocked records the outcome of each event of the batch and reports whether some are
// to be dead-lettered: those wait, their keys busy, for deadLetter and buryLocked.
func (w *worker[T]) settleLocked() bool {
	s, b := w.s, &w.batch
	var fromIntake int64 // events taken straight from the intake and handled: no slot needed
	var ended uint64     // events that ended handled
	for j := range b.n {
		err := b.err[j]
		b.err[j] = nil
		if s.breaker != nil {
			s.judgeLocked(err, b.probe)
		}
		i := b.slot[j]
		if i < 0 {
			if err == nil && b.ev[j].Key == "" { // the common case, needing no slot and no key
				fromIntake++
				continue
			}
			if i = w.settleFromIntakeLocked(j, err); i < 0 {
				fromIntake++
				continue
			}
		}
		switch {
		case err == nil || err == errDuplicate:
			w.handledLocked(i, err == errDuplicate)
			ended++
		case err == errNotRun:
			w.toDeadLetterLocked(j, closedError(s.slots[i].lastErr))
		default:
			w.failedLocked(j, err)
		}
	}
	if fromIntake > 0 {
		s.stats.handled += uint64(fromIntake)
		ended += uint64(fromIntake)
		s.releaseNLocked(fromIntake)
	}
	if ended > 0 {
		s.stats.outcomes.Current(s.bus.clock.nowNanos()).add(ended, 0)
	}
	if b.sample.taken {
		s.stats.latency.record(b.sample.end, b.sample.d)
		b.sample.taken = false
	}
	return b.dead > 0
}

// settleFromIntakeLocked settles the batch's event at position j, taken straight from the
// intake, whose attempt gave err: it releases the event's key to the next event with that
// key, and returns -1 if the event ended handled (the common case, which needs no slot),
// or else the slot it now has, for the caller to settle it there.
func (w *worker[T]) settleFromIntakeLocked(j int, err error) int32 {
	s, b := w.s, &w.batch
	next := int32(-1)
	if b.ev[j].Key != "" {
		next = s.releaseKeyLocked(w.keys, j)
	}
	if err != nil && err != errDuplicate {
		b.slot[j] = s.slotForLocked(&b.ev[j], next)
		return b.slot[j]
	}
	if next >= 0 {
		s.pushReadyLocked(next)
	}
	if err == errDuplicate {
		s.stats.duplicates++
	}
	return -1
}

// handledLocked ends the event in slot i as handled, or as a repeat skipped by
// de-duplication.
func (w *worker[T]) handledLocked(i int32, duplicate bool) {
	s := w.s
	if duplicate {
		s.stats.duplicates++
	} else {
		s.slots[i].attempts++
	}
	s.stats.handled++
	s.finishLocked(i, nil)
}

// failedLocked records the failed attempt of the batch's event at position j: it is
// retried after its backoff, or dead-lettered once its attempts ran out, its error is
// permanent or the subscription aborts.
func (w *worker[T]) failedLocked(j int, err error) {
	s := w.s
	i := w.batch.slot[j]
	sl := &s.slots[i]
	sl.attempts++
	s.stats.failed++
	switch {
	case s.state.Load() == stateAborting:
		err = closedError(err)
	case int(sl.attempts) < s.retry.MaxAttempts && !isPermanent(err):
		s.stats.retries++
		s.retryLaterLocked(i, err)
		return
	}
	w.toDeadLetterLocked(j, err)
}

// toDeadLetterLocked marks the batch's event at position j to be dead-lettered with err.
func (w *worker[T]) toDeadLetterLocked(j int, err error) {
	s, b := w.s, &w.batch
	attempts := s.slots[b.slot[j]].attempts
	if s.dedup != nil && attempts > 0 {
		// Only the delivery that recorded the ID runs the handler, so this is it: forget
		// the ID, so that a repeat (a broker's redelivery) is handled, even one taken
		// while the hook runs.
		s.dedup.Forget(b.ev[j].ID)
	}
	b.err[j], b.attempt[j] = err, attempts
	b.deadPos[b.dead] = j
	b.dead++
}

// deadLetter hands the batch's dead letters from the from-th on to the dead-letter hook,
// without the lock. The worker still counts as running, so a hook that publishes is seen
// as a handler that publishes.
func (w *worker[T]) deadLetter(from int) {
	s, b := w.s, &w.batch
	for k := from; k < b.dead; k++ {
		j := b.deadPos[k]
		w.resumeAt = resumePoint{set: true, hooks: true, pos: k + 1} // should the hook Goexit
		s.deadLetterEvent(w.hookCtx(&b.ev[j]), &b.ev[j], int(b.attempt[j]), b.err[j])
	}
	w.resumeAt = resumePoint{}
}

// buryLocked ends the batch's dead letters, once their hooks have run.
func (w *worker[T]) buryLocked() {
	s, b := w.s, &w.batch
	for _, j := range b.deadPos[:b.dead] {
		s.stats.deadLettered++
		s.finishLocked(b.slot[j], b.err[j])
		b.err[j] = nil
	}
	s.stats.outcomes.Current(s.bus.clock.nowNanos()).add(uint64(b.dead), uint64(b.dead))
	b.dead = 0
}

// deadLetterEvent hands event ev to the dead-letter hook, logging a failure of the hook.
func (s *subscription[T]) deadLetterEvent(ctx context.Context, ev *Event[T], attempts int, err error) {
	dl := DeadLetter{
		Event: Event[any]{
			ID: ev.ID, Type: ev.Type, Source: ev.Source, Time: ev.Time,
			Key: ev.Key, Payload: visiblePayload(ev.Payload), Metadata: ev.Metadata,
		},
		Subscriber: s.name,
		Attempts:   attempts,
		Err:        err,
	}
	s.bus.deliverDeadLetter(ctx, s.deadLetter, dl)
}

// latencySample times one handler attempt in latencySampleEvery, at most one per batch.
// Timing reads only the monotonic clock, as a duration since the worker started: time.Now
// reads the wall clock too, which doubles the cost, a few percent of a worker's time on a
// KVM guest.
type latencySample struct {
	since    time.Time // when the worker started
	attempts uint32    // handler attempts so far
	taken    bool      // a sample waits to be recorded
	d        time.Duration
	end      int64 // when the sampled attempt ended, Unix nanoseconds
}

// due counts an attempt about to run and reports whether to time it: the worker's first,
// then one in latencySampleEvery, so that a subscription that handled a few events shows
// a sample of them.
func (l *latencySample) due() bool {
	l.attempts++
	return l.attempts%latencySampleEvery == 1
}

// time runs attempt, timing it.
func (l *latencySample) time(attempt func() error) error {
	if l.since.IsZero() {
		l.since = time.Now()
	}
	start := time.Since(l.since)
	err := attempt()
	end := time.Since(l.since)
	l.d, l.end, l.taken = end-start, l.since.Add(end).UnixNano(), true
	return err
}
