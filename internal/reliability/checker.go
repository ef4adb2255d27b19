// Package reliability checks the delivery guarantees of the bus under load and faults, in
// the manner of the Jepsen reports of the brokers users trust: every event is tagged with
// its publisher, key and sequence number, and a run ends with figures of what was
// attempted, accepted, handled, dead-lettered, lost, duplicated and reordered.
//
// The scenarios of the suite (see Scenarios) run as tests of this package, at a reduced
// size under -short, and at full size from the stress command, which writes
// docs/RELIABILITY.md:
//
//	go run ./cmd/eventbus-stress -suite -markdown docs/RELIABILITY.md
package reliability

import (
	"fmt"
	"sync"
	"sync/atomic"
)

// Tag is the payload of every event of a run: who published it, with which key, as the
// how-many-th event of that publisher.
type Tag struct {
	Publisher int
	Seq       int // from 0, per publisher
	Key       int // the event's key is strconv.Itoa(Key)
}

// Checker records what happened to every event of a run and computes its figures. Its
// methods are safe for concurrent use; record from handlers and dead-letter hooks.
type Checker struct {
	publishers, perPublisher, keys int
	subs                           []string

	accepted []atomic.Bool // per event: Publish returned nil
	rejected []atomic.Bool // per event: Publish returned an error
	// ends counts, per subscriber and event, successful handlings (low 16 bits) and dead
	// letters (high 16 bits).
	ends [][]atomic.Uint32
	// last holds, per subscriber, publisher and key, the sequence number of the last event
	// that ended, + 1 (0: none yet).
	last [][]atomic.Int64

	acceptedN    atomic.Int64   // Publish calls that returned nil
	endedBy      []atomic.Int64 // per subscriber: events handled or dead-lettered
	deadLettered atomic.Int64

	attempted, retries, panics atomic.Int64
	reordered                  atomic.Int64
	unknown                    atomic.Int64 // events ended for a subscriber the checker does not know

	mu       sync.Mutex
	firstBad []string // the first few violations, for the report
}

// NewChecker returns a checker for a run of publishers × perPublisher events over keys keys,
// delivered to the named subscribers.
func NewChecker(publishers, perPublisher, keys int, subscribers ...string) *Checker {
	n := publishers * perPublisher
	c := &Checker{
		publishers: publishers, perPublisher: perPublisher, keys: keys,
		subs:     subscribers,
		accepted: make([]atomic.Bool, n),
		rejected: make([]atomic.Bool, n),
		ends:     make([][]atomic.Uint32, len(subscribers)),
		last:     make([][]atomic.Int64, len(subscribers)),
		endedBy:  make([]atomic.Int64, len(subscribers)),
	}
	for i := range subscribers {
		c.ends[i] = make([]atomic.Uint32, n)
		c.last[i] = make([]atomic.Int64, publishers*keys)
	}
	return c
}

// Subscriber returns the index of the named subscriber, for Handled and DeadLettered, or -1.
func (c *Checker) Subscriber(name string) int {
	for i, s := range c.subs {
		if s == name {
			return i
		}
	}
	return -1
}

func (c *Checker) index(t Tag) int { return t.Publisher*c.perPublisher + t.Seq }

// Published records the outcome of one Publish of t.
func (c *Checker) Published(t Tag, err error) {
	c.attempted.Add(1)
	if err == nil {
		c.accepted[c.index(t)].Store(true)
		c.acceptedN.Add(1)
	} else {
		c.rejected[c.index(t)].Store(true)
	}
}

// Attempt records one handler attempt that is a retry (attempt > 1) or a panic.
func (c *Checker) Attempt(attempt int, panicking bool) {
	if attempt > 1 {
		c.retries.Add(1)
	}
	if panicking {
		c.panics.Add(1)
	}
}

// Handled records that subscriber sub handled t successfully.
func (c *Checker) Handled(sub int, t Tag) { c.end(sub, t, 1) }

// DeadLettered records that subscriber sub dead-lettered t.
func (c *Checker) DeadLettered(sub int, t Tag) { c.end(sub, t, 1<<16) }

func (c *Checker) end(sub int, t Tag, delta uint32) {
	if sub < 0 || sub >= len(c.subs) {
		c.unknown.Add(1)
		return
	}
	c.ends[sub][c.index(t)].Add(delta)
	c.endedBy[sub].Add(1)
	if delta != 1 {
		c.deadLettered.Add(1)
	}
	// Events of one publisher and key end one at a time, in order: each must come after
	// the last one that ended.
	if prev := c.last[sub][t.Publisher*c.keys+t.Key].Swap(int64(t.Seq) + 1); prev > int64(t.Seq) {
		c.reordered.Add(1)
		c.violation("%s: event %d/%d of key %d ended after event %d", c.subs[sub], t.Publisher, t.Seq, t.Key, prev-1)
	}
}

func (c *Checker) violation(format string, args ...any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.firstBad) < 5 {
		c.firstBad = append(c.firstBad, fmt.Sprintf(format, args...))
	}
}

// Figures are the results of one run. Per-subscriber counts are summed over subscribers.
type Figures struct {
	Attempted    int64 // Publish calls
	Accepted     int64 // Publish calls that returned nil
	Handled      int64 // (event, subscriber) pairs handled successfully
	DeadLettered int64 // (event, subscriber) pairs dead-lettered
	Lost         int64 // accepted, but for some subscriber neither handled nor dead-lettered
	Duplicated   int64 // (event, subscriber) pairs that ended more than once
	Unexpected   int64 // (event, subscriber) pairs that ended though Publish returned an error
	Reordered    int64 // per-key inversions
	Retries      int64 // handler attempts after the first
	Panics       int64 // handler panics, each recovered by the bus
	Violations   []string
}

// Figures computes the run's figures. Call it once the bus has closed.
func (c *Checker) Figures() Figures {
	f := Figures{
		Attempted: c.attempted.Load(),
		Reordered: c.reordered.Load(),
		Retries:   c.retries.Load(),
		Panics:    c.panics.Load(),
	}
	for i := range c.accepted {
		accepted := c.accepted[i].Load()
		if accepted {
			f.Accepted++
		}
		for s := range c.subs {
			e := c.ends[s][i].Load()
			ok, dl := int64(e&0xffff), int64(e>>16)
			f.Handled += ok
			f.DeadLettered += dl
			switch {
			case ok+dl > 1:
				f.Duplicated++
				c.violation("%s: event %d/%d ended %d times (%d handled, %d dead-lettered)", c.subs[s], i/c.perPublisher, i%c.perPublisher, ok+dl, ok, dl)
			case ok+dl == 0 && accepted:
				f.Lost++
				c.violation("%s: event %d/%d accepted but never ended", c.subs[s], i/c.perPublisher, i%c.perPublisher)
			case ok+dl == 1 && !accepted:
				f.Unexpected++
				c.violation("%s: event %d/%d ended though its Publish failed", c.subs[s], i/c.perPublisher, i%c.perPublisher)
			}
		}
	}
	f.Unexpected += c.unknown.Load()
	c.mu.Lock()
	f.Violations = append([]string(nil), c.firstBad...)
	c.mu.Unlock()
	return f
}

// Ended reports how many events subscriber sub has handled or dead-lettered so far.
func (c *Checker) Ended(sub int) int64 { return c.endedBy[sub].Load() }

// Accepted reports how many Publish calls have returned nil so far.
func (c *Checker) Accepted() int64 { return c.acceptedN.Load() }
