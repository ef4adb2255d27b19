package natsbridge_test

import (
	"fmt"
	"sync"

	"github.com/ae30fb47/eventbus"
	"github.com/google/uuid"
)

// step is the payload of the ordering tests: the Seq-th event of Key.
type step struct {
	Key string `json:"key"`
	Seq int    `json:"seq"`
}

var steps = eventbus.NewTopic[step]("test.step")

// ledger records, across buses, every handler call in the order they happened.
type ledger struct {
	mu      sync.Mutex
	calls   map[uuid.UUID]int // handler calls per event ID
	byBus   map[string]int    // first handlings per bus
	lastSeq map[string]int    // the last Seq handled per key
	order   []string          // per-key order violations
}

func newLedger() *ledger {
	return &ledger{calls: map[uuid.UUID]int{}, byBus: map[string]int{}, lastSeq: map[string]int{}}
}

// handled records that bus handled ev; it checks that ev comes after every earlier
// event of its key.
func (l *ledger) handled(bus string, ev eventbus.Event[step]) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.calls[ev.ID]++
	if l.calls[ev.ID] > 1 {
		return
	}
	l.byBus[bus]++
	last, seen := l.lastSeq[ev.Payload.Key]
	if seen && ev.Payload.Seq <= last {
		l.order = append(l.order, fmt.Sprintf("key %s: seq %d after %d", ev.Payload.Key, ev.Payload.Seq, last))
	}
	l.lastSeq[ev.Payload.Key] = ev.Payload.Seq
}

// count returns how many distinct events were handled and how many handler calls
// were repeats.
func (l *ledger) count() (distinct, repeats int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.calls {
		distinct++
		repeats += n - 1
	}
	return distinct, repeats
}
