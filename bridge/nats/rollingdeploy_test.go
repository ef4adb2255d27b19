package natsbridge_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
)

// During a rolling deploy that adds a Receive route, a bridge of the old version shares
// the Group's consumers, whose filter the new version widened: it fetches events of a
// type it does not know. It hands them back with a delay, so that a new bridge handles
// them, instead of dead-lettering them as invalid.
func TestUnknownTypeLeftToOtherBridges(t *testing.T) {
	s := startServer(t)
	if v := serverVersion(t, s); before210(v) {
		t.Skipf("adds a received topic to a Group: needs several filter subjects, nats-server 2.10 or later; the server runs %s", v)
	}
	cfg := testConfig(s)
	cfg.Retry.MaxAttempts = 50 // the old bridge may get the event many times before the new one does
	a := newBus(t, "bus-a")
	connect(t, a, cfg, natsbridge.Forward(orderCreated))
	dls := watchDeadLetters(t, s)

	old := newBus(t, "old")
	mustSubscribe(t, old, steps, "h", func(context.Context, eventbus.Event[step]) error { return nil })
	oldBr := connect(t, old, cfg, natsbridge.Receive(steps))
	// The first new bridge widens the consumers' filter to order.created, then stops, so
	// that only the old bridge fetches for a while.
	first := newBus(t, "new-1")
	firstBr, err := natsbridge.Connect(t.Context(), first, cfg, natsbridge.Receive(steps), natsbridge.Receive(orderCreated))
	if err != nil {
		t.Fatal(err)
	}
	if err := firstBr.Close(t.Context()); err != nil {
		t.Fatal(err)
	}

	if err := eventbus.Publish(t.Context(), a, orderCreated, order{ID: "o-1"}, eventbus.WithKey("o-1")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { st := oldBr.Stats(); return st.UnknownTypes > 0 || st.DeadLettered > 0 },
		func() string { return fmt.Sprintf("the old bridge did not settle the event; stats %+v", oldBr.Stats()) })
	if st := oldBr.Stats(); st.DeadLettered > 0 {
		t.Fatalf("the old bridge dead-lettered an event of a type its Group receives: stats %+v", st)
	}

	var handled atomic.Int32
	b := newBus(t, "new-2")
	mustSubscribe(t, b, orderCreated, "h", func(context.Context, eventbus.Event[order]) error { handled.Add(1); return nil })
	newBr := connect(t, b, cfg, natsbridge.Receive(steps), natsbridge.Receive(orderCreated))
	eventually(t, 20*time.Second, func() bool { return handled.Load() == 1 }, func() string {
		return fmt.Sprintf("the new bridge did not handle the event; old %+v, new %+v", oldBr.Stats(), newBr.Stats())
	})
	if n := len(dls.all()); n != 0 || oldBr.Stats().Handled != 0 {
		t.Errorf("%d dead letters, old bridge %+v; want none, nothing handled by the old bridge", n, oldBr.Stats())
	}
}
