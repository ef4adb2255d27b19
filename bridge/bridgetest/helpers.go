package bridgetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	"github.com/google/uuid"
)

// newBus makes a bus whose dead letters the returned recorder keeps; the test's cleanup
// closes it, after the bridges connected later.
func newBus(t *testing.T, source string) (*eventbus.Bus, *deadLetters) {
	t.Helper()
	dls := &deadLetters{}
	b := eventbus.New(eventbus.WithSource(source), eventbus.WithDeadLetter(dls))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("bus %s: Close() = %v", source, err)
		}
	})
	return b, dls
}

// subscribe subscribes h to topic on b, or fails t.
func subscribe[T any](t *testing.T, b *eventbus.Bus, topic eventbus.Topic[T], name string, h func(context.Context, eventbus.Event[T]) error, opts ...eventbus.SubscribeOption) {
	t.Helper()
	if _, err := eventbus.Subscribe(b, topic, name, h, opts...); err != nil {
		t.Fatalf("Subscribe(%s) = %v", topic.Name(), err)
	}
}

// connect connects a bridge with open, within 20 s; the test's cleanup closes it.
func connect(t *testing.T, open func(ctx context.Context) (Bridge, error)) Bridge {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	br, err := open(ctx)
	if err != nil {
		t.Fatalf("connecting a bridge: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := br.Close(ctx); err != nil {
			t.Errorf("Bridge.Close() = %v", err)
		}
	})
	return br
}

// eventually polls cond every 10ms until it holds or d has passed, then fails t with msg.
func eventually(t *testing.T, d time.Duration, cond func() bool, msg func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, msg())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// deadLetters is a bus's dead-letter hook that keeps the IDs it receives.
type deadLetters struct {
	mu     sync.Mutex
	letter map[uuid.UUID]bool
}

func (d *deadLetters) HandleDeadLetter(_ context.Context, dl eventbus.DeadLetter) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.letter == nil {
		d.letter = map[uuid.UUID]bool{}
	}
	d.letter[dl.Event.ID] = true
	return nil
}

func (d *deadLetters) ids() map[uuid.UUID]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	m := make(map[uuid.UUID]bool, len(d.letter))
	for id := range d.letter {
		m[id] = true
	}
	return m
}

// ledger records, across buses, every handler call of Steps in the order they happened.
type ledger struct {
	mu      sync.Mutex
	calls   map[uuid.UUID]int // handler calls per event ID
	perBus  map[string]int    // first handlings per bus
	lastSeq map[string]int    // the last Seq handled per key
	order   []string          // per-key order violations
}

func newLedger() *ledger {
	return &ledger{calls: map[uuid.UUID]int{}, perBus: map[string]int{}, lastSeq: map[string]int{}}
}

// handled records that bus handled ev, checking that it comes after every earlier event
// of its key; a repeat is only counted.
func (l *ledger) handled(bus string, ev eventbus.Event[Step]) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.calls[ev.ID]++; l.calls[ev.ID] > 1 {
		return
	}
	l.perBus[bus]++
	if last, seen := l.lastSeq[ev.Payload.Key]; seen && ev.Payload.Seq <= last {
		l.order = append(l.order, fmt.Sprintf("key %s: seq %d after %d", ev.Payload.Key, ev.Payload.Seq, last))
	}
	l.lastSeq[ev.Payload.Key] = max(l.lastSeq[ev.Payload.Key], ev.Payload.Seq)
}

func (l *ledger) seen(id uuid.UUID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[id] > 0
}

func (l *ledger) byBus(bus string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.perBus[bus]
}

func (l *ledger) distinct() int { d, _ := l.count(); return d }

// count returns how many distinct events were handled and how many calls were repeats.
func (l *ledger) count() (distinct, repeats int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.calls {
		distinct++
		repeats += n - 1
	}
	return distinct, repeats
}

// check fails t if the per-key order was broken, or if there were more handler repeats
// than maxRepeats (which a subscriber's de-duplication should absorb).
func (l *ledger) check(t *testing.T, repeats, maxRepeats int) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.order) > 0 {
		t.Errorf("per-key order broken %d times: %v", len(l.order), l.order[:min(5, len(l.order))])
	}
	if repeats > maxRepeats {
		t.Errorf("%d handler calls repeated an event; want at most %d", repeats, maxRepeats)
	}
}
