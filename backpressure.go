package eventbus

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// subCore is the non-generic state of one subscription: its lifecycle, its counters and the
// room accounting that Publish waits on. Plain fields are guarded by mu; atomic ones are
// written under mu too (except held and tail) so that publishers can read them without it.
type subCore struct {
	bus         *Bus
	topic, name string
	source      string // the bus's, for the envelopes of the intake's records
	capacity    int    // the buffer size: Publish waits while held >= capacity
	nearlyFull  int64  // nearlyFullPercent of capacity, rounded up; see noteFillLocked
	concurrency int
	retry       RetryPolicy
	deadLetter  DeadLetterHandler
	timeout     time.Duration // of each attempt; 0 for none
	dedup       *dedupSet     // nil without de-duplication
	breaker     *breaker      // nil without a circuit breaker

	// Written by publishers without the lock (and by workers, for held, in batches). The
	// padding keeps each group of fields off the others' cache lines, wherever the struct
	// starts.
	_    [64]byte
	held atomic.Int64  // accepted or reserved events not yet finished (but see unheld)
	tail atomic.Uint64 // the next intake position a publisher claims
	// published counts the events Publish accepted for the topic through this, its only
	// subscription (enqueueInPlace), on the line those publishers write anyway rather than
	// the topic's; see topicState.published.
	published atomic.Uint64
	_         [64]byte

	// Read by publishers on every event, written seldom: a cache line of their own.
	state    atomic.Uint32 // a subState
	sleepers atomic.Int32  // workers waiting on work
	live     atomic.Int32  // running worker goroutines; written under mu
	waiters  atomic.Int32  // publishers waiting for room
	// wakePending is set by the publisher that wakes a worker and cleared by workers as they
	// go idle, so that publishers do not queue up on mu to wake a worker already woken.
	wakePending atomic.Bool
	watched     atomic.Bool // the bus clock will look at the subscription on its next tick
	removed     atomic.Bool // Subscription.Close took it off its topic; see rejectErr
	_           [64]byte

	// Written by workers on every take: read by the bus clock only.
	takes      atomic.Uint64 // counts workers' takes of events; see watchWorkers
	watchTakes uint64        // takes when watched was set, by the publisher that set it

	mu     sync.Mutex
	work   sync.Cond // idle workers wait here; L is &mu
	head   uint64    // the next intake position a worker takes
	roomCh chan struct{}
	// unheld counts events finished but not yet subtracted from held: workers subtract in
	// batches of up to releaseBatch, so that publishers and workers do not trade the cache
	// line of held on every event. Publishers thus see at most releaseBatch more events
	// held than there are, a bound that errs only on the safe side.
	unheld       int64
	releaseBatch int64
	readyLen     int // events ready to run
	running      int // events a worker holds: in a handler or a dead-letter hook
	blocked      int // of those, how many are blocked in a Publish waiting for room
	backoff      int // events waiting for their retry timer

	stats     subStats // guarded by mu
	fullSince int64    // when the buffer became nearly full (Unix ns), or 0; see noteFillLocked
	// filledAt is when a publisher's reservation last brought held up to nearlyFull (Unix
	// ns), or 0: written by that publisher, without the lock; see noteFillLocked.
	filledAt atomic.Int64

	// testBeforeReserve, set by tests only, runs between reserveHeld's look at the state
	// and its compare-and-swap: where a close can slip in.
	testBeforeReserve func()

	ctx    context.Context // handlers' base context, cancelled by abort
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the last worker has exited
	// exited runs once the last worker has exited, under mu: then no publisher can count
	// an event in published any more.
	exited func()
	timers sync.WaitGroup
}

type subState = uint32

const (
	stateOpen     subState = iota // accepting events
	stateClosing                  // rejecting new events, handling the accepted ones
	stateAborting                 // rejecting new events, dead-lettering the accepted ones
)

// tryReserve takes room for one event without waiting, if the subscription is open and has
// room. It is the publishers' lock-free path.
func (c *subCore) tryReserve() bool {
	if !c.reserveHeld() {
		return false
	}
	// The subscription may have begun to close between the look at its state and the
	// reservation, and its workers exited, having seen nothing held: then the event must
	// not be accepted. A close that begins after this look sees the reservation.
	if c.state.Load() != stateOpen {
		c.cancelReservation()
		return false
	}
	return true
}

// reserveHeld takes room for one event if the subscription looks open and has room.
// Under c.mu, where the state cannot change, that is a reservation; without it, see
// tryReserve.
func (c *subCore) reserveHeld() bool {
	for {
		n := c.held.Load()
		if n >= int64(c.capacity) || c.state.Load() != stateOpen {
			return false
		}
		if c.testBeforeReserve != nil {
			c.testBeforeReserve()
		}
		if c.held.CompareAndSwap(n, n+1) {
			if n+1 == c.nearlyFull {
				c.filledAt.Store(c.bus.clock.nowNanos())
			}
			return true
		}
	}
}

// reserveSoon is tryReserve that, while the subscription is open but full, lets other
// goroutines run a few times and looks again before it gives up. A worker that is draining
// frees room within microseconds, while a publisher that sleeps until woken costs both
// sides several microseconds per wake-up, and the worker would drain the buffer and go to
// sleep meanwhile; so a publisher faster than the handlers runs at their pace instead.
func (c *subCore) reserveSoon(ctx context.Context) bool {
	if c.tryReserve() {
		return true
	}
	// A handler publishing into a full subscription may be in a cycle of publishes that
	// only the locked path, which counts it as blocked, can break: it looks for progress
	// every spinsPerLook yields. Other publishers yield the full publisherSpins.
	look := publishingHandler(ctx, c.bus) != nil
	takes := c.takes.Load()
	for i := range publisherSpins {
		if c.state.Load() != stateOpen || ctx.Err() != nil {
			return false
		}
		yield()
		if c.tryReserve() {
			return true
		}
		if look && i%spinsPerLook == spinsPerLook-1 {
			// No worker took an event meanwhile: they are in slow handlers or blocked
			// publishing themselves, maybe to us.
			t := c.takes.Load()
			if t == takes {
				return false
			}
			takes = t
		}
	}
	return false
}

// publisherSpins is how many times reserveSoon yields at most: some 10-30µs. A handler
// gives up sooner, after spinsPerLook yields, if no worker took an event meanwhile.
const (
	publisherSpins = 100
	spinsPerLook   = 8
)

// lowWater is the count at or below which waiting publishers are woken. Waking them once a
// quarter of the buffer has drained lets one wake-up admit many events, with room to spare
// for the time the publisher takes to wake up, so that the workers do not run dry meanwhile.
func (c *subCore) lowWater() int64 { return int64(c.capacity - max(c.capacity/4, 1)) }

// stalledLocked reports whether the subscription cannot make progress by itself: every busy
// worker is blocked in a Publish, and no other worker can take an event that is
// ready, waiting in the intake, or waiting out a retry. A Publish from a handler that would
// wait on a stalled subscription may be part of a cycle of waits, so it is let in over
// capacity instead (see reserveLocked). External publishers never are: they keep the
// buffer bound.
func (c *subCore) stalledLocked() bool {
	return c.running > 0 && c.blocked == c.running &&
		(c.running >= c.concurrency || c.readyLen == 0 && c.backoff == 0 && c.head == c.tail.Load())
}

// notifyRoomLocked wakes every publisher waiting for room, to look again.
func (c *subCore) notifyRoomLocked() {
	if c.roomCh != nil {
		close(c.roomCh)
		c.roomCh = nil
	}
}

// rejectErr is the error for a publisher arriving at a subscription that no longer accepts
// events: errGone if the subscription was removed from its topic (the publisher then skips
// it, as if it had published after the removal), even while the bus closes, since handlers
// may still publish then; else ErrClosed, as Bus.Close closed it.
func (c *subCore) rejectErr() error {
	if c.removed.Load() || !c.bus.closed.Load() {
		return errGone
	}
	return ErrClosed
}

// reserveLocked is the slow path of a reservation: it waits while the subscription is full
// and returns with c.mu held. On success the caller must commit or cancel the reservation;
// direct means the event was let in over capacity and must be committed with commitDirect.
// If the caller is a handler of this bus (from != nil) that had to wait, the returned
// unblock is that handler's subscription, whose blocked count the caller must decrement
// with unblockPublisher after releasing c.mu.
func (c *subCore) reserveLocked(ctx context.Context) (unblock *subCore, direct bool, err error) {
	var from *subCore
	looked := false
	for {
		if c.state.Load() != stateOpen {
			err = c.rejectErr()
			break
		}
		if c.reserveHeld() {
			break
		}
		if !looked {
			from, looked = publishingHandler(ctx, c.bus), true
		}
		if from != nil && c.stalledLocked() {
			// Over capacity: waiting could close a cycle of waits that never ends.
			c.held.Add(1)
			direct = true
			break
		}
		if err = ctx.Err(); err != nil {
			break
		}
		if from != nil && unblock == nil {
			// Count this handler as blocked in its own subscription, which may make that one
			// stalled: waiters on it must look again. Then start over, as c.mu was released.
			unblock = from
			c.blockPublisherLocked(from)
			continue
		}
		if c.unheld > 0 {
			c.flushLocked() // room that was finished but not yet released
			continue
		}
		if c.roomCh == nil {
			c.roomCh = make(chan struct{})
		}
		c.noteFillLocked(c.bus.clock.nowNanos())
		ch := c.roomCh
		c.waiters.Add(1)
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		c.mu.Lock()
		c.waiters.Add(-1)
	}
	if unblock == c {
		c.blocked--
		unblock = nil
	}
	return unblock, direct, err
}

// blockPublisherLocked counts a handler of from as blocked publishing into c. c.mu is held
// on entry and exit but released in between unless from is c.
func (c *subCore) blockPublisherLocked(from *subCore) {
	if from == c {
		c.blocked++
		if c.stalledLocked() {
			c.notifyRoomLocked()
		}
		return
	}
	c.mu.Unlock()
	from.mu.Lock()
	from.blocked++
	if from.stalledLocked() {
		from.notifyRoomLocked()
	}
	from.mu.Unlock()
	c.mu.Lock()
}

// unblockPublisher undoes blockPublisherLocked once the publish is over.
func (c *subCore) unblockPublisher() {
	c.mu.Lock()
	c.blocked--
	c.mu.Unlock()
}

// cancelReservation gives back room reserved and not committed. Unlike a worker, it cannot
// leave the release in a batch: no one might flush it.
func (c *subCore) cancelReservation() {
	c.mu.Lock()
	c.unheld++
	c.flushLocked()
	c.mu.Unlock()
}

// releaseLocked ends one event's hold on the subscription, in a batch unless a publisher
// waits for room or the bus or subscription is closing; see flushLocked. Only workers call
// it: they flush before they wait for work, so no release is left behind.
func (c *subCore) releaseLocked() { c.releaseNLocked(1) }

// releaseNLocked ends the hold of n events at once; see releaseLocked.
func (c *subCore) releaseNLocked(n int64) {
	c.unheld += n
	if c.unheld >= c.releaseBatch || c.waiters.Load() > 0 || c.state.Load() != stateOpen || c.bus.closed.Load() {
		c.flushLocked()
	}
}

// flushLocked subtracts the finished events from held, wakes waiting publishers once the
// buffer has drained enough, and tells closers when the subscription has emptied. Workers
// call it before they wait for work, so held is exact whenever the subscription is idle.
func (c *subCore) flushLocked() {
	if c.unheld == 0 {
		return
	}
	n := c.held.Add(-c.unheld)
	c.unheld = 0
	if c.fullSince != 0 || n >= c.nearlyFull {
		c.noteFillLocked(c.bus.clock.nowNanos())
	}
	if c.waiters.Load() > 0 && (n <= c.lowWater() || c.stalledLocked()) {
		c.notifyRoomLocked()
	}
	if n == 0 {
		if c.state.Load() != stateOpen {
			c.work.Broadcast() // idle workers may exit now
		}
		if c.bus.closed.Load() {
			// Bus.Close may be waiting for this subscription to empty, even one that
			// Subscription.Close is closing at the same time.
			c.bus.signalQuiet()
		}
	}
}

// nudgeWorkers is called once events wait in the intake: it wakes an idle worker if every
// worker is idle. If some are busy, it asks the bus clock to look again on its next tick
// (see lookAgain): a busy worker with fast handlers comes back for the waiting events within
// a tick, and waking another for the backlog it is draining would only make them contend.
func (c *subCore) nudgeWorkers() {
	if n := c.sleepers.Load(); n > 0 {
		if n == c.live.Load() {
			c.wakeWorker()
		} else if !c.watched.Load() {
			c.watchWorkers()
		}
	}
}

// watchWorkers asks the bus clock to call lookAgain on its next tick.
func (c *subCore) watchWorkers() {
	if c.watched.Swap(true) {
		return
	}
	c.watchTakes = c.takes.Load()
	c.bus.clock.watch(c)
}

// lookAgain runs on a tick of the bus clock after watchWorkers: if events still wait and
// no worker has taken any since, the busy workers are in slow handlers, and an idle one is
// woken to take the backlog in parallel. So an idle worker joins busy ones within about a
// tick (100µs), and with fast handlers is not woken at all.
func (c *subCore) lookAgain() {
	takes := c.watchTakes
	c.watched.Store(false)
	if c.sleepers.Load() == 0 {
		return
	}
	c.mu.Lock()
	backlog := c.readyLen > 0 || c.head != c.tail.Load()
	c.mu.Unlock()
	switch {
	case !backlog:
	case c.takes.Load() == takes:
		c.wakeWorker()
	default:
		c.watchWorkers()
	}
}

// wakeWorker wakes an idle worker after a publisher has put an event in the intake. Only
// one wake-up is in flight at a time: wakePending stays set until a worker next goes idle,
// and a worker clears it before its last look at the intake, so a publisher that skips the
// wake-up because of the flag has its event seen by that look.
func (c *subCore) wakeWorker() {
	if c.wakePending.Load() || !c.wakePending.CompareAndSwap(false, true) {
		return // a woken worker has yet to run; it will see this event too
	}
	c.mu.Lock()
	c.work.Signal()
	c.mu.Unlock()
}

// yield lets another goroutine run while this one waits for a few instructions of work
// elsewhere (a publisher between claiming an intake slot and filling it).
func yield() { runtime.Gosched() }

// handlerKey is the context key under which a worker's context holds its *subCore, so that a
// Publish from inside a handler (or a dead-letter hook) knows where it comes from.
type handlerKey struct{}

// publishingHandler returns the subscription of b whose handler is publishing with ctx, or
// nil if ctx does not come from a handler of b.
func publishingHandler(ctx context.Context, b *Bus) *subCore {
	c, _ := ctx.Value(handlerKey{}).(*subCore)
	if c != nil && c.bus == b {
		return c
	}
	return nil
}
