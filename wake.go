package eventbus

// Waking workers: a worker that finds no work announces itself in sleepers, looks at the
// intake a last time and waits on work. A publisher that fills an intake cell looks at
// sleepers after filling it: one of the two sees the other, so no event is left behind a
// sleeping worker. Events committed into the slots signal work under the lock instead (see
// pushReadyLocked).

// nudgeWorkers is called once an event waits in the intake: it wakes an idle worker if every
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
