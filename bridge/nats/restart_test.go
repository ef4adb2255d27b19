package natsbridge_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/google/uuid"
)

// The server restarts (same port, same store directory) while events flow: every event
// the local bus accepted reaches the other bus, none is dead-lettered, and redeliveries
// are absorbed by de-duplication. The figures are logged.
func TestBrokerRestart(t *testing.T) {
	const keys, total = 20, 1200
	s := startServer(t)
	s.requireEmbedded() // it restarts the server
	var outboundDeadLetters atomic.Int32
	a := newBus(t, "bus-a", eventbus.WithDeadLetter(eventbus.DeadLetterFunc(func(context.Context, eventbus.DeadLetter) error {
		outboundDeadLetters.Add(1)
		return nil
	})))
	b := newBus(t, "bus-b")
	brA := connect(t, a, testConfig(s), natsbridge.Forward(steps))
	brB := connect(t, b, testConfig(s), natsbridge.Receive(steps))
	l := newLedger()
	mustSubscribe(t, b, steps, "ledger", func(_ context.Context, ev eventbus.Event[step]) error {
		l.handled("bus-b", ev)
		return nil
	}, eventbus.WithDeduplication(time.Minute, 10_000))

	var (
		mu       sync.Mutex
		accepted []uuid.UUID
		rejected int
	)
	restarted := make(chan struct{})
	var restarter sync.WaitGroup
	restarter.Go(func() {
		defer close(restarted)
		eventually(t, 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return len(accepted) >= total/3 },
			func() string { return "the publisher stalled before the restart" })
		s.restart()
	})
	pace := time.NewTicker(time.Millisecond) // spread the events over the restart
	for i := range total {
		<-pace.C
		id := uuid.New()
		key := fmt.Sprintf("k%02d", i%keys)
		err := eventbus.Publish(t.Context(), a, steps, step{Key: key, Seq: i / keys}, eventbus.WithKey(key), eventbus.WithID(id))
		mu.Lock()
		if err == nil {
			accepted = append(accepted, id)
		} else {
			rejected++
		}
		mu.Unlock()
	}
	pace.Stop()
	restarter.Wait()

	eventually(t, 60*time.Second, func() bool { d, _ := l.count(); return d == len(accepted) }, func() string {
		d, _ := l.count()
		return fmt.Sprintf("bus B handled %d of %d accepted events; A %+v; B %+v", d, len(accepted), brA.Stats(), brB.Stats())
	})
	lost := 0
	l.mu.Lock()
	for _, id := range accepted {
		if l.calls[id] == 0 {
			lost++
		}
	}
	order := l.order
	l.mu.Unlock()
	_, repeats := l.count()
	stA, stB := brA.Stats(), brB.Stats()
	t.Logf("attempted %d, accepted %d, lost %d, handler repeats %d; forward failures %d, forward duplicates %d, redelivered %d, reordered %d",
		total, len(accepted), lost, repeats, stA.ForwardFailures, stA.ForwardDuplicates, stB.Redelivered, len(order))
	if rejected != 0 || lost != 0 || outboundDeadLetters.Load() != 0 {
		t.Errorf("rejected %d, lost %d, dead-lettered on the way out %d; want 0, 0, 0", rejected, lost, outboundDeadLetters.Load())
	}
	if repeats != 0 {
		t.Errorf("handler repeats = %d; want redeliveries absorbed by de-duplication", repeats)
	}
	if len(order) != 0 {
		t.Errorf("per-key order broken: %v", order[:min(5, len(order))])
	}
	if stA.ForwardFailures == 0 {
		t.Errorf("no publish failed: the restart did not happen while events flowed")
	}
	<-restarted
}
