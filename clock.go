package eventbus

import (
	"sync"
	"sync/atomic"
	"time"
)

// clock tells the time of events cheaply. Reading the system clock costs about 30ns on a
// KVM guest, and measured end to end it cost a third of an event's time, so while the bus
// is publishing a ticker goroutine reads it every tick and publishers read the last tick.
// The ticker starts with the first event, stops after idleTicks ticks without one (so an
// idle bus wakes nobody), and stops for good at Close.
//
// Event times are thus the time of the last tick: at most one tick, 100µs, early when the
// machine has a core to spare for the ticker, more when it has not.
type clock struct {
	nanos   atomic.Int64 // Unix nanoseconds of the last tick; 0 while no ticker runs
	used    atomic.Bool  // a publisher read nanos since the last tick
	mu      sync.Mutex   // guards starting and stopping the ticker
	running bool
	stopped bool
	stop    chan struct{} // closed by shutdown
	wg      sync.WaitGroup

	watchMu  sync.Mutex
	watching []*subCore // to look at on the next tick; see subCore.watchWorkers
	looking  []*subCore // the ticker's spare list
}

const (
	tick      = 100 * time.Microsecond
	idleTicks = 1000 // 100ms
)

// now returns the time of the last tick, or, with no ticker running, the system time,
// starting the ticker.
func (c *clock) now() time.Time {
	if ns := c.nanos.Load(); ns != 0 {
		if !c.used.Load() {
			c.used.Store(true)
		}
		return time.Unix(0, ns)
	}
	t := time.Now()
	c.start(t)
	return t
}

// nowNanos is now as Unix nanoseconds.
func (c *clock) nowNanos() int64 {
	if ns := c.nanos.Load(); ns != 0 {
		if !c.used.Load() {
			c.used.Store(true)
		}
		return ns
	}
	t := time.Now()
	c.start(t)
	return t.UnixNano()
}

func (c *clock) start(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running || c.stopped {
		return
	}
	if c.stop == nil {
		c.stop = make(chan struct{})
	}
	c.running = true
	c.nanos.Store(t.UnixNano())
	c.wg.Go(c.run)
}

// run is the ticker goroutine.
func (c *clock) run() {
	t := time.NewTicker(tick)
	defer t.Stop()
	idle := 0
	for {
		select {
		case <-c.stop:
			c.halt()
			return
		case <-t.C:
		}
		if c.used.Swap(false) {
			idle = 0
		} else if idle++; idle >= idleTicks && c.haltIdle() {
			return
		}
		c.nanos.Store(time.Now().UnixNano())
		c.lookAtWatched()
	}
}

// watch has the ticker call s.lookAgain on its next tick, starting the ticker if needed.
func (c *clock) watch(s *subCore) {
	c.watchMu.Lock()
	c.watching = append(c.watching, s)
	c.watchMu.Unlock()
	c.nowNanos() // starts the ticker if it was halted
}

// lookAtWatched calls lookAgain on the subscriptions watched since the last tick.
func (c *clock) lookAtWatched() {
	c.watchMu.Lock()
	subs := c.watching
	c.watching = c.looking[:0]
	c.watchMu.Unlock()
	for _, s := range subs {
		s.lookAgain()
	}
	clear(subs)
	c.looking = subs[:0]
}

// haltIdle stops the ticker for idleness and reports true, unless a subscription is
// watched: then the ticker runs on. watch, which adds to the watched under watchMu, sees
// nanos = 0 after a halt and starts a new ticker.
func (c *clock) haltIdle() bool {
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if len(c.watching) > 0 {
		return false
	}
	c.halt()
	return true
}

func (c *clock) halt() {
	c.mu.Lock()
	c.nanos.Store(0)
	c.running = false
	c.mu.Unlock()
}

// shutdown stops the ticker for good and waits for it; later events read the system clock.
func (c *clock) shutdown() {
	c.mu.Lock()
	if !c.stopped {
		c.stopped = true
		if c.stop != nil {
			close(c.stop)
		}
	}
	c.mu.Unlock()
	c.wg.Wait()
}
