package natsbridge

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A closing bridge hands back each fetched message once, after its iterator's drain is
// over: a nak sent while the iterator is still subscribed is redelivered to it at once,
// and naking that again spends one of the event's attempts per round trip, which had a
// restarted bridge dead-letter a healthy event as undelivered.
func TestReleaseNaksOnceAfterTheDrain(t *testing.T) {
	for _, unsubscribeAfter := range []int{0, 1, 3, 10} {
		it, m := fetchedOne(&fakeIterator{unsubscribeAfter: unsubscribeAfter})

		release(t.Context(), it)

		if !it.drained {
			t.Errorf("unsubscribe after %d Next calls: release did not drain the iterator", unsubscribeAfter)
		}
		if m.naks != 1 {
			t.Errorf("unsubscribe after %d Next calls: %d naks of the fetched message; want 1", unsubscribeAfter, m.naks)
		}
		if m.deliveries != 1 {
			t.Errorf("unsubscribe after %d Next calls: the server delivered it %d times; want once (the fetch)",
				unsubscribeAfter, m.deliveries)
		}
	}
}

// The delivery a closing bridge was making when it stopped is handed back with the
// fetched ones, after the drain, and only once.
func TestReleaseHandsBackTheHeldDeliveryAfterTheDrain(t *testing.T) {
	it, fetched := fetchedOne(&fakeIterator{unsubscribeAfter: 5})
	held := &fakeMsg{iterator: it, deliveries: 1}

	release(t.Context(), it, held)

	for name, m := range map[string]*fakeMsg{"held": held, "fetched": fetched} {
		if m.naks != 1 || m.deliveries != 1 {
			t.Errorf("%s message: %d naks, %d deliveries; want 1 nak after the drain, no redelivery", name, m.naks, m.deliveries)
		}
	}
}

// A drain that does not end within release's wait (ctx ended: Close's deadline passed)
// still has what was fetched handed back, with a delay that outlasts the bridge's
// connection, so that the server does not redeliver it to the fetch nobody reads.
func TestReleaseDelaysTheHandBackWhenTheDrainIsNotOver(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	it, m := fetchedOne(&fakeIterator{unsubscribeAfter: -1, onBlock: cancel})

	release(ctx, it)

	if m.naks != 0 || len(m.delayedNaks) != 1 || m.delayedNaks[0] != handBackDelay {
		t.Errorf("%d naks, delayed naks %v; want one delayed by %v", m.naks, m.delayedNaks, handBackDelay)
	}
	if m.deliveries != 1 {
		t.Errorf("the server delivered it %d times; want once (the fetch)", m.deliveries)
	}
}

// fetchedOne returns it holding one fetched message, m, delivered once.
func fetchedOne(it *fakeIterator) (*fakeIterator, *fakeMsg) {
	m := &fakeMsg{iterator: it, deliveries: 1}
	it.buffered = []jetstream.Msg{m}
	return it, m
}

// fakeIterator models a nats.go pull iterator after Drain, with time counted in calls of
// Next: its buffered messages come first; its subscription stays live until Next has
// been called unsubscribeAfter times (nats.go unsubscribes in a goroutine of its own),
// and a message naked meanwhile is redelivered to it; once the buffer is empty, Next
// blocks until the subscription goes and reports the iterator closed. With
// unsubscribeAfter -1 the subscription never goes: Next on an empty buffer calls
// onBlock, which is to end its context, and returns the context's error.
type fakeIterator struct {
	buffered         []jetstream.Msg
	drained          bool
	unsubscribeAfter int
	nexts            int
	onBlock          func()
}

func (it *fakeIterator) subscribed() bool {
	return it.unsubscribeAfter < 0 || it.nexts < it.unsubscribeAfter
}

func (it *fakeIterator) Next(...jetstream.NextOpt) (jetstream.Msg, error) {
	if !it.drained {
		panic("release called Next before Drain")
	}
	it.nexts++
	if it.nexts > 1000 {
		return nil, errors.New("fake iterator: 1000 calls of Next, a nak loop")
	}
	if len(it.buffered) > 0 {
		m := it.buffered[0]
		it.buffered = it.buffered[1:]
		return m, nil
	}
	if it.unsubscribeAfter < 0 {
		it.onBlock()
		return nil, context.Canceled
	}
	it.nexts = max(it.nexts, it.unsubscribeAfter)
	return nil, jetstream.ErrMsgIteratorClosed
}

func (it *fakeIterator) Drain() { it.drained = true }
func (it *fakeIterator) Stop()  { panic("release called Stop, which discards the buffer") }

// fakeMsg is a fetched message; a nak while its iterator is subscribed has the server
// deliver it to the iterator again, and count a delivery, as JetStream does.
type fakeMsg struct {
	jetstream.Msg // nil: any method release must not call panics
	iterator      *fakeIterator
	deliveries    int
	naks          int
	delayedNaks   []time.Duration
}

func (m *fakeMsg) Nak() error {
	m.naks++
	if m.iterator.subscribed() {
		m.deliveries++
		m.iterator.buffered = append(m.iterator.buffered, m)
	}
	return nil
}

// NakWithDelay has the server redeliver m after delay, which the tests give past the
// iterator's life.
func (m *fakeMsg) NakWithDelay(delay time.Duration) error {
	m.delayedNaks = append(m.delayedNaks, delay)
	return nil
}
