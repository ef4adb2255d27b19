package eventbus

import (
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
)

// WithDeduplication makes the subscription skip an event whose ID it has already seen
// within window: the at-least-once bridges redeliver events, and a handler that is not
// idempotent must see each only once.
//
// The first delivery of an ID is handled as usual, with its retries. A repeat whose turn
// comes while the first is in flight, or within window after the first began, is not
// passed to the handler: it ends at once as handled, and a [WithWait] publisher sees nil
// from this subscriber. If the first delivery is dead-lettered instead, its ID is
// forgotten: the event was never handled, so a repeat whose turn comes later (a broker
// redelivering it) is handled again.
// At most maxIDs IDs are remembered, so memory stays bounded whatever the rate: when more
// arrive within window, the oldest are forgotten early. [Subscribe] returns an error if
// window <= 0 or maxIDs < 1.
func WithDeduplication(window time.Duration, maxIDs int) SubscribeOption {
	return subscribeOption(func(c *subscribeConfig) {
		switch {
		case window <= 0:
			c.fail(fmt.Errorf("eventbus: WithDeduplication: window must be > 0, got %v", window))
		case maxIDs < 1:
			c.fail(fmt.Errorf("eventbus: WithDeduplication: maxIDs must be > 0, got %d", maxIDs))
		}
		c.dedupWindow, c.dedupMax = window, maxIDs
	})
}

// dedupSet remembers the IDs seen within a window, at most max of them. IDs are kept in a
// ring in the order seen, so expired and excess ones are evicted from its head.
type dedupSet struct {
	mu     sync.Mutex
	window int64                // nanoseconds
	max    int                  // IDs remembered at most
	seen   map[uuid.UUID]uint64 // the serial of the ID's ring entry
	ring   []dedupEntry         // capacity max; grows to it
	head   int                  // the oldest entry
	n      int
	serial uint64 // of the last entry
}

type dedupEntry struct {
	id      uuid.UUID
	expires int64
	serial  uint64 // tells this entry from a later one of the same ID (see forget)
}

func newDedupSet(window time.Duration, max int) *dedupSet {
	return &dedupSet{
		window: int64(window),
		max:    max,
		seen:   make(map[uuid.UUID]uint64),
	}
}

// first records id as seen at now (Unix nanoseconds) and reports whether it is new.
func (d *dedupSet) first(id uuid.UUID, now int64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for d.n > 0 && (d.ring[d.head].expires <= now || d.n >= d.max) {
		d.evictOldest()
	}
	if _, dup := d.seen[id]; dup {
		return false
	}
	d.serial++
	e := dedupEntry{id: id, expires: now + d.window, serial: d.serial}
	d.seen[id] = e.serial
	if d.n < len(d.ring) {
		d.ring[(d.head+d.n)%len(d.ring)] = e
	} else {
		// The ring is full but below max (else evictOldest made room): grow it, keeping
		// entries in order from index 0.
		grown := make([]dedupEntry, 0, min(d.max, 2*len(d.ring)+64))
		for i := range d.n {
			grown = append(grown, d.ring[(d.head+i)%len(d.ring)])
		}
		d.ring, d.head = append(grown, e), 0
		d.ring = d.ring[:cap(d.ring)]
	}
	d.n++
	return true
}

// forget removes id, whose first delivery was dead-lettered, so that a repeat is handled.
// Its ring entry stays until evicted; evictOldest then leaves alone a newer entry of id.
func (d *dedupSet) forget(id uuid.UUID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.seen, id)
}

func (d *dedupSet) evictOldest() {
	e := d.ring[d.head]
	if d.seen[e.id] == e.serial {
		delete(d.seen, e.id)
	}
	d.head = (d.head + 1) % len(d.ring)
	d.n--
}

// len reports how many IDs are remembered.
func (d *dedupSet) len() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.seen)
}
