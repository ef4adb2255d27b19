package natsbridge_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
)

// Two buses of one group share the stream's consumers: every event is handled once
// across both, each key in order, and both do part of the work.
func TestTwoConsumingBuses(t *testing.T) {
	const keys, perKey = 16, 25
	s := startServer(t)
	a := newBus(t, "bus-a")
	connect(t, a, testConfig(s), natsbridge.Forward(steps))

	l := newLedger()
	var bridges []*natsbridge.Bridge
	for _, name := range []string{"bus-b1", "bus-b2"} {
		b := newBus(t, name)
		bridges = append(bridges, connect(t, b, testConfig(s), natsbridge.Receive(steps)))
		mustSubscribe(t, b, steps, "ledger", func(_ context.Context, ev eventbus.Event[step]) error {
			l.handled(name, ev)
			return nil
		}, eventbus.WithDeduplication(time.Minute, 10_000))
	}

	for seq := range perKey {
		for k := range keys {
			key := fmt.Sprintf("k%02d", k)
			if err := eventbus.Publish(t.Context(), a, steps, step{Key: key, Seq: seq}, eventbus.WithKey(key)); err != nil {
				t.Fatalf("Publish() = %v", err)
			}
		}
	}
	const total = keys * perKey
	eventually(t, 30*time.Second, func() bool { d, _ := l.count(); return d == total }, func() string {
		d, _ := l.count()
		return fmt.Sprintf("handled %d of %d events; stats %+v %+v", d, total, bridges[0].Stats(), bridges[1].Stats())
	})
	eventually(t, 5*time.Second, func() bool { return bridges[0].Stats().Handled+bridges[1].Stats().Handled == total },
		func() string { return "not every event was acked" })

	distinct, repeats := l.count()
	l.mu.Lock()
	defer l.mu.Unlock()
	t.Logf("handled %d events, %d repeats; bus-b1 %d, bus-b2 %d", distinct, repeats, l.byBus["bus-b1"], l.byBus["bus-b2"])
	if repeats != 0 {
		t.Errorf("%d handler calls repeated an event; want every event handled exactly once", repeats)
	}
	if len(l.order) > 0 {
		t.Errorf("per-key order broken %d times: %v", len(l.order), l.order[:min(5, len(l.order))])
	}
	if l.byBus["bus-b1"] == 0 || l.byBus["bus-b2"] == 0 {
		t.Errorf("handled per bus = %v; want both buses to share the work", l.byBus)
	}
}
