package natsbridge_test

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/google/uuid"
)

type order struct {
	ID    string  `json:"id"`
	Total float64 `json:"total"`
}

var (
	orderCreated = eventbus.NewTopic[order]("order.created")
	blobStored   = eventbus.NewTopic[[]byte]("blob.stored")
)

// Typed events published on bus A arrive typed on bus B, their envelope intact.
func TestRoundTrip(t *testing.T) {
	s := startServer(t)
	a := newBus(t, "/shop/bus-a")
	b := newBus(t, "/warehouse/bus-b")
	connect(t, a, testConfig(s), natsbridge.Forward(orderCreated), natsbridge.Forward(blobStored))
	var handled func() uint64
	var stats func() string
	if before210(serverVersion(t, s)) { // one bridge per received topic, each of its own Group
		cfg := testConfig(s)
		cfg.Group = "blobs"
		b1, b2 := connect(t, b, testConfig(s), natsbridge.Receive(orderCreated)), connect(t, b, cfg, natsbridge.Receive(blobStored))
		handled = func() uint64 { return b1.Stats().Handled + b2.Stats().Handled }
		stats = func() string { return fmt.Sprintf("%+v and %+v", b1.Stats(), b2.Stats()) }
	} else {
		brB := connect(t, b, testConfig(s), natsbridge.Receive(orderCreated), natsbridge.Receive(blobStored))
		handled = func() uint64 { return brB.Stats().Handled }
		stats = func() string { return fmt.Sprintf("%+v", brB.Stats()) }
	}

	orders := make(chan eventbus.Event[order], 10)
	blobs := make(chan eventbus.Event[[]byte], 10)
	mustSubscribe(t, b, orderCreated, "inventory", func(_ context.Context, ev eventbus.Event[order]) error {
		orders <- ev
		return nil
	})
	mustSubscribe(t, b, blobStored, "archive", func(_ context.Context, ev eventbus.Event[[]byte]) error {
		blobs <- ev
		return nil
	})

	id := uuid.New()
	at := time.Date(2026, 11, 23, 16, 30, 0, 123456789, time.UTC)
	md := eventbus.Metadata{"tenant": "acme", "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "note": "50% off, für alle"}
	if err := eventbus.Publish(t.Context(), a, orderCreated, order{ID: "o-1", Total: 9.5},
		eventbus.WithID(id), eventbus.WithTime(at), eventbus.WithKey("o-1"), eventbus.WithMetadata(md)); err != nil {
		t.Fatalf("Publish() = %v", err)
	}
	if err := eventbus.Publish(t.Context(), a, blobStored, []byte{0, 1, 0xff}); err != nil {
		t.Fatalf("Publish() = %v", err)
	}

	select {
	case ev := <-orders:
		if ev.ID != id || ev.Type != "order.created" || ev.Source != "/shop/bus-a" || !ev.Time.Equal(at) ||
			ev.Key != "o-1" || !maps.Equal(ev.Metadata, md) || ev.Payload != (order{ID: "o-1", Total: 9.5}) {
			t.Errorf("bus B got %+v; want ID %v, source /shop/bus-a, time %v, key o-1, metadata %v, the payload", ev, id, at, md)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no order on bus B within 10s; stats %s", stats())
	}
	select {
	case ev := <-blobs:
		if string(ev.Payload) != "\x00\x01\xff" || ev.Source != "/shop/bus-a" {
			t.Errorf("bus B got %+v; want payload [0 1 255] from /shop/bus-a", ev)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no blob on bus B within 10s; stats %s", stats())
	}
	eventually(t, 5*time.Second, func() bool { return handled() == 2 },
		func() string { return "bus B's bridge did not ack both events" })
}

func mustSubscribe[T any](t testing.TB, b *eventbus.Bus, topic eventbus.Topic[T], name string, h func(context.Context, eventbus.Event[T]) error, opts ...eventbus.SubscribeOption) *eventbus.Subscription {
	t.Helper()
	s, err := eventbus.Subscribe(b, topic, name, h, opts...)
	if err != nil {
		t.Fatalf("Subscribe(%s) = %v", name, err)
	}
	return s
}
