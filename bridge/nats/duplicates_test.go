package natsbridge_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// Duplicates are counted and absorbed at both ends: a forwarded event already in the
// stream (a publish retried after its ack was lost) is acknowledged as a duplicate and
// stored once, thanks to Nats-Msg-Id; an event that reaches the stream twice anyway (a
// producer's retry outside the Duplicates window) is received twice and handled once by
// a de-duplicating subscriber.
func TestDuplicatesAbsorbed(t *testing.T) {
	s := startServer(t)
	a, b := newBus(t, "bus-a"), newBus(t, "bus-b")
	cfg := testConfig(s)
	brA := connect(t, a, cfg, natsbridge.Forward(steps))
	brB := connect(t, b, cfg, natsbridge.Receive(steps))
	var calls atomic.Int32
	mustSubscribe(t, b, steps, "h", func(context.Context, eventbus.Event[step]) error {
		calls.Add(1)
		return nil
	}, eventbus.WithDeduplication(time.Minute, 1000))

	// rawPublish stores ev as the bridge would, under the given Nats-Msg-Id.
	rawPublish := func(ev eventbus.Event[step], msgID string) {
		t.Helper()
		msg := cloudEventMsg(t, ev, s.subject(natsbridge.Partition(ev.Key, cfg.Partitions), "test.step"))
		msg.Header.Set(nats.MsgIdHdr, msgID)
		rawPublish(t, s, msg)
	}

	// 1. The stream already has the event (as after a publish whose ack was lost).
	first := eventbus.Event[step]{ID: uuid.New(), Type: "test.step", Source: "bus-a", Time: time.Now(), Key: "k", Payload: step{Key: "k", Seq: 1}}
	rawPublish(first, first.ID.String())
	if err := eventbus.Publish(t.Context(), a, steps, first.Payload, eventbus.WithID(first.ID), eventbus.WithKey("k")); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return brA.Stats().ForwardDuplicates == 1 }, func() string {
		return fmt.Sprintf("forwarding stats %+v; want 1 duplicate", brA.Stats())
	})

	// 2. The same event stored twice under different message IDs.
	second := first
	second.ID, second.Payload.Seq = uuid.New(), 2
	rawPublish(second, "first-try")
	rawPublish(second, "second-try")

	eventually(t, 10*time.Second, func() bool { return brB.Stats().Received == 3 && brB.Stats().Handled == 3 }, func() string {
		return fmt.Sprintf("receiving stats %+v; want 3 deliveries handled (the first event once, the second twice)", brB.Stats())
	})
	if calls.Load() != 2 {
		t.Errorf("handler calls = %d; want 2: each event once", calls.Load())
	}
}
