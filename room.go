package eventbus

import (
	"context"
	"runtime"
)

// Room: a subscription holds at most its buffer's worth of events (held), and a publisher
// waits for room while it is full. The waits of a publisher end, because it never waits
// while it holds room (see handoff.go), and because of one rule for the handlers that
// publish: a subscription whose busy workers are all blocked publishing (or waiting, with
// WithWait, for an outcome), and that no idle worker can make progress in, is stalled
// (stalledLocked), and lets a handler's publish in over its buffer. Any cycle of waits goes
// through handlers that publish, since other publishers hold nothing while they wait; and
// in such a cycle every subscription is stalled, so it opens. External publishers always
// wait, so the buffer bounds what the bus holds unless handlers publish in a cycle that
// multiplies events.
//
// Whoever makes room wakes the publishers waiting for it, under mu, where they look
// (releasedLocked, beginClose and abort); and so does whoever may make the subscription
// stalled (wakeIfStalledLocked). The inputs of stalledLocked change towards a stall in
// three ways only, each of which looks: a handler blocks in a publish (blockPublisher), a
// worker finishes its batch and finds nothing to take (sleepLocked), or a publisher moves
// the intake into the slots, behind busy keys (commitDirectLocked). A worker that takes
// events counts as running, which moves away from a stall.

// testHookBeforeReserve, set by tests only, runs in reserve between its look at the state
// and its compare-and-swap: where a close can slip in.
var testHookBeforeReserve func(*subCore)

// reserve takes room for one event without waiting: within the buffer, or over it if over
// is set and the buffer is full. It returns roomNone if the buffer is full, roomGone or
// roomClosed if the subscription no longer accepts events from this publisher, a handler
// of the bus or not (see accepts and rejection).
func (c *subCore) reserve(over, handler bool) room {
	var n int64
	for {
		n = c.held.Load()
		if !c.accepts(handler) {
			return c.rejection()
		}
		if n >= int64(c.capacity) && !over {
			return roomNone
		}
		if testHookBeforeReserve != nil {
			testHookBeforeReserve(c)
		}
		if c.held.CompareAndSwap(n, n+1) {
			break
		}
	}
	// The subscription may have begun to close between the look at its state and the
	// reservation, and its workers exited, having seen nothing held: then the event must
	// not be accepted. A close that begins after this look sees the reservation.
	if !c.accepts(handler) {
		c.cancelRoom()
		return c.rejection()
	}
	if n+1 == c.nearlyFull {
		c.filledAt.Store(c.bus.clock.nowNanos())
	}
	if n >= int64(c.capacity) {
		return roomOver
	}
	return roomInside
}

// rejection is the room of a publisher arriving at a subscription that no longer accepts
// events: roomGone if the subscription was removed from its topic (the publisher then
// skips it, as if it had published after the removal), even while the bus closes, since
// handlers may still publish then; else roomClosed, as Bus.Close closed it.
func (c *subCore) rejection() room {
	if c.removed.Load() || !c.bus.sd.closed.Load() {
		return roomGone
	}
	return roomClosed
}

// cancelRoom gives back room reserved and not committed. It takes the lock only if someone
// may be waiting for the change: a publisher for room, or a closer or the workers for the
// subscription to empty.
func (c *subCore) cancelRoom() {
	n := c.held.Add(-1)
	if c.waiters.Load() > 0 || n == 0 && (c.state.Load() != stateOpen || c.bus.sd.closed.Load()) {
		c.mu.Lock()
		c.releasedLocked(n)
		c.mu.Unlock()
	}
}

// spinForRoom lets other goroutines run a few times while the subscription is full, and
// reports true as soon as it has room again (or no longer accepts events from the caller),
// for the caller to reserve it. A worker that is draining frees room within microseconds, while a
// publisher that sleeps until woken costs both sides several microseconds per wake-up, and
// the worker would drain the buffer and go to sleep meanwhile; so a publisher faster than
// the handlers runs at their pace instead. A handler publishing (handler set) may be in a
// cycle of publishes that only awaitRoom can break, so it gives up once no worker took an
// event in spinsPerLook yields.
func (c *subCore) spinForRoom(ctx context.Context, handler bool) bool {
	takes := c.takes.Load()
	for i := range publisherSpins {
		if ctx.Err() != nil {
			return false
		}
		runtime.Gosched()
		if c.held.Load() < int64(c.capacity) || !c.accepts(handler) {
			return true
		}
		if handler && i%spinsPerLook == spinsPerLook-1 {
			t := c.takes.Load()
			if t == takes {
				return false
			}
			takes = t
		}
	}
	return false
}

// publisherSpins is how many times spinForRoom yields at most: some 10-30µs. A handler
// gives up sooner, after spinsPerLook yields, if no worker took an event meanwhile.
const (
	publisherSpins = 100
	spinsPerLook   = 8
)

// awaitRoom waits, holding no room, until the subscription looks to have room or no longer
// accepts events from the caller (then it returns false and nil, for the caller to reserve
// again), or until it is stalled and from, the subscription of the handler publishing, is
// not nil (then it returns true: the caller may take room over the buffer), or until ctx
// ends.
func (c *subCore) awaitRoom(ctx context.Context, from *subCore) (over bool, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Counted before the look at held, so that a publisher giving room back without the
	// lock (cancelRoom) either sees a waiter or has given it back before the look.
	c.waiters.Add(1)
	defer c.waiters.Add(-1)
	for {
		switch {
		case c.held.Load() < int64(c.capacity) || !c.accepts(from != nil):
			return false, nil
		case from != nil && c.stalledLocked():
			return true, nil
		case c.unheld > 0:
			c.flushLocked() // room that was finished but not yet given back
			continue
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if c.roomCh == nil {
			c.roomCh = make(chan struct{})
		}
		c.noteFillLocked(c.bus.clock.nowNanos())
		ch := c.roomCh
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
		}
		c.mu.Lock()
	}
}

// stalledLocked reports whether the subscription cannot make progress by itself: it has
// busy workers, each blocked in a Publish (or waiting for an outcome), and no idle worker
// can take an event that would run: none is ready, waiting in the intake or waiting out a
// retry, or the circuit breaker admits none. A handler's publish that would wait for a
// stalled subscription may be part of a cycle of waits, so it is let in over the buffer
// instead (see awaitRoom).
func (c *subCore) stalledLocked() bool {
	if c.running == 0 || c.blocked < c.running {
		return false
	}
	if c.running >= c.concurrency() || !c.mayAdmitLocked() {
		return true
	}
	return c.readyLen == 0 && c.backoff == 0 && c.head == c.tail.Load()
}

// wakeIfStalledLocked wakes the publishers waiting for room if the subscription is
// stalled, so that the handlers among them get in; see the comment at the top of room.go
// for who calls it.
func (c *subCore) wakeIfStalledLocked() {
	if c.waiters.Load() > 0 && c.stalledLocked() {
		c.notifyRoomLocked()
	}
}

// blockPublisher counts a handler of c as blocked in a publish, which may make c stalled.
func (c *subCore) blockPublisher() {
	c.mu.Lock()
	c.blocked++
	c.wakeIfStalledLocked()
	c.mu.Unlock()
}

// unblockPublisher undoes blockPublisher once the publish is over.
func (c *subCore) unblockPublisher() {
	c.mu.Lock()
	c.blocked--
	c.mu.Unlock()
}

// notifyRoomLocked wakes every publisher waiting for room, to look again.
func (c *subCore) notifyRoomLocked() {
	if c.roomCh != nil {
		close(c.roomCh)
		c.roomCh = nil
	}
}

// lowWater is the count at or below which waiting publishers are woken. Waking them once a
// quarter of the buffer has drained lets one wake-up admit many events, with room to spare
// for the time the publisher takes to wake up, so that the workers do not run dry meanwhile.
func (c *subCore) lowWater() int64 { return int64(c.capacity - max(c.capacity/4, 1)) }

// releaseNLocked ends the hold of n finished events: in a batch of up to releaseBatch,
// unless a publisher waits for room or the bus or subscription is closing, so that
// publishers and workers do not trade the cache line of held on every event. Publishers
// thus see at most releaseBatch more events held than there are, a bound that errs only on
// the safe side. Only workers call it, and they flush before they sleep, so no release is
// left behind.
func (c *subCore) releaseNLocked(n int64) {
	c.unheld += n
	if c.unheld >= c.releaseBatch || c.waiters.Load() > 0 || c.state.Load() != stateOpen || c.bus.sd.closed.Load() {
		c.flushLocked()
	}
}

// flushLocked subtracts the finished events from held. Workers call it before they wait
// for work, so held is exact whenever the subscription is idle.
func (c *subCore) flushLocked() {
	if c.unheld == 0 {
		return
	}
	n := c.held.Add(-c.unheld)
	c.unheld = 0
	c.releasedLocked(n)
}

// releasedLocked tells those who wait for a change of held, now n: Health's watch of a
// full buffer, publishers waiting for room once the buffer has drained enough, and the
// workers and closers waiting for a closing subscription to empty.
func (c *subCore) releasedLocked(n int64) {
	if c.fullSince != 0 || n >= c.nearlyFull {
		c.noteFillLocked(c.bus.clock.nowNanos())
	}
	if c.waiters.Load() > 0 && (n <= c.lowWater() || c.stalledLocked()) {
		c.notifyRoomLocked()
	}
	if n == 0 {
		if c.state.Load() >= stateClosing {
			c.work.Broadcast() // idle workers may exit now
		}
		if c.bus.sd.closed.Load() {
			// Bus.Close may be waiting for this subscription to empty, even one that
			// Subscription.Close is closing at the same time.
			c.bus.signalQuiet()
		}
	}
}
