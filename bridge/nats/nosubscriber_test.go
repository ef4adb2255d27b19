package natsbridge_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
)

// A service that connects its bridge before it subscribes (the backlog arrives in
// between) loses nothing: a delivery that finds no local subscriber is not acked but
// redelivered by the retry policy, and handled once the subscriber is there.
func TestReceiveBeforeSubscribe(t *testing.T) {
	const n = 20
	s := startServer(t)
	a := newBus(t, "bus-a")
	connect(t, a, testConfig(s), natsbridge.Forward(steps))
	for i := range n {
		if err := eventbus.Publish(t.Context(), a, steps, step{Key: "k", Seq: i}, eventbus.WithKey("k")); err != nil {
			t.Fatal(err)
		}
	}
	b := newBus(t, "bus-b")
	cfg := testConfig(s)
	cfg.Retry.MaxAttempts = 50 // patience for ~10 s of the test's backoff before a dead letter
	br := connect(t, b, cfg, natsbridge.Receive(steps))
	dls := watchDeadLetters(t, s)
	// Wait for the outcome of a delivery made while the topic had no subscriber.
	eventually(t, 10*time.Second, func() bool { st := br.Stats(); return st.NoSubscribers > 0 || st.Handled > 0 },
		func() string { return fmt.Sprintf("no delivery settled; stats %+v", br.Stats()) })
	if st := br.Stats(); st.Handled > 0 {
		t.Fatalf("the bridge acked %d events as handled before any subscriber existed: lost; stats %+v", st.Handled, st)
	}

	l := newLedger()
	mustSubscribe(t, b, steps, "late", func(_ context.Context, ev eventbus.Event[step]) error {
		l.handled("bus-b", ev)
		return nil
	})
	eventually(t, 20*time.Second, func() bool { d, _ := l.count(); return d == n }, func() string {
		d, _ := l.count()
		return fmt.Sprintf("handled %d of %d events published before the subscriber; stats %+v", d, n, br.Stats())
	})
	eventually(t, 10*time.Second, func() bool { return br.Stats().Handled == n },
		func() string { return fmt.Sprintf("stats %+v; want %d handled", br.Stats(), n) })
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.order) != 0 {
		t.Errorf("per-key order broken: %v", l.order)
	}
	if st := br.Stats(); st.Retried < st.NoSubscribers || st.DeadLettered != 0 || len(dls.all()) != 0 {
		t.Errorf("stats %+v, %d dead letters; want every delivery without subscriber retried, none dead-lettered", st, len(dls.all()))
	}
}

// An event whose topic never gets a local subscriber is dead-lettered once the retry
// policy's attempts are spent, with a reason that says so; it is never acked as handled.
func TestNoSubscriberDeadLetter(t *testing.T) {
	s := startServer(t)
	a, b := newBus(t, "bus-a"), newBus(t, "bus-b")
	connect(t, a, testConfig(s), natsbridge.Forward(steps))
	cfg := testConfig(s)
	br := connect(t, b, cfg, natsbridge.Receive(steps))
	dls := watchDeadLetters(t, s)
	if err := eventbus.Publish(t.Context(), a, steps, step{Key: "k"}, eventbus.WithKey("k")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return len(dls.all()) == 1 }, func() string {
		return fmt.Sprintf("%d dead letters; want 1; stats %+v", len(dls.all()), br.Stats())
	})
	// The bridge counts a dead letter once the server has it, after the watcher may see it.
	eventually(t, 10*time.Second, func() bool { return br.Stats().DeadLettered == 1 },
		func() string { return fmt.Sprintf("stats %+v; want 1 dead-lettered", br.Stats()) })
	h := dls.all()[0].Headers()
	want := fmt.Sprint(cfg.Retry.MaxAttempts)
	if h.Get(natsbridge.HeaderReason) != natsbridge.ReasonNoSubscribers || h.Get(natsbridge.HeaderAttempts) != want ||
		!strings.Contains(h.Get(natsbridge.HeaderError), "no local subscriber") {
		t.Errorf("dead letter headers %v; want reason %s after %s attempts", h, natsbridge.ReasonNoSubscribers, want)
	}
	if st := br.Stats(); st.Handled != 0 || st.NoSubscribers != uint64(cfg.Retry.MaxAttempts) || st.DeadLettered != 1 {
		t.Errorf("stats %+v; want 0 handled, %d deliveries without subscriber, 1 dead-lettered", st, cfg.Retry.MaxAttempts)
	}
	checkSettled(t, br.Stats())
}
