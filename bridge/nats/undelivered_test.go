package natsbridge_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// An event delivered more often than the retry policy allows, each time without an
// outcome (bridges that crashed while handling it, played here by a client of the Group's
// consumer that hands it back), is dead-lettered as undelivered, not handled again.
func TestUndeliveredDeadLetter(t *testing.T) {
	s := startServer(t)
	cfg := testConfig(s)
	connect(t, newBus(t, "bus-a"), cfg, natsbridge.Forward(steps)) // makes the stream
	key := keyInPartition(0, cfg.Partitions)
	e := eventbus.Event[step]{ID: uuid.New(), Type: steps.Name(), Source: "raw", Key: key, Payload: step{Key: key}}
	rawPublish(t, s, cloudEventMsg(t, e, s.subject(0, "test.step")))

	// The consumer of partition 0 as the bridge makes it (Connect updates it later).
	c, err := jsClient(t, s).CreateOrUpdateConsumer(t.Context(), s.stream, jetstream.ConsumerConfig{
		Durable: "eventbus-0", FilterSubject: s.subject(0, "test.step"), AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: cfg.AckWait, MaxAckPending: 1, MaxDeliver: -1, DeliverPolicy: jetstream.DeliverAllPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	for range cfg.Retry.MaxAttempts {
		msg, err := c.Next(jetstream.FetchMaxWait(10 * time.Second))
		if err != nil {
			t.Fatalf("Next() = %v", err)
		}
		if err := msg.Nak(); err != nil {
			t.Fatal(err)
		}
	}

	b := newBus(t, "bus-b")
	var calls atomic.Int32
	mustSubscribe(t, b, steps, "h", func(context.Context, eventbus.Event[step]) error { calls.Add(1); return nil })
	br := connect(t, b, cfg, natsbridge.Receive(steps))
	dls := watchDeadLetters(t, s)
	eventually(t, 10*time.Second, func() bool { return len(dls.all()) == 1 && br.Stats().DeadLettered == 1 }, func() string {
		return fmt.Sprintf("%d dead letters; want 1; stats %+v", len(dls.all()), br.Stats())
	})
	h := dls.all()[0].Headers()
	want := fmt.Sprint(cfg.Retry.MaxAttempts + 1)
	if h.Get(natsbridge.HeaderReason) != natsbridge.ReasonUndelivered || h.Get(natsbridge.HeaderAttempts) != want ||
		h.Get("ce-id") != e.ID.String() || !strings.Contains(h.Get(natsbridge.HeaderError), "without an outcome") {
		t.Errorf("dead letter headers %v; want reason undelivered after %s attempts", h, want)
	}
	if calls.Load() != 0 {
		t.Errorf("handler calls = %d; want 0: the event was past its attempts", calls.Load())
	}
	checkSettled(t, br.Stats())
}
