package eventbus

import (
	"context"
	"fmt"
	"testing"

	"github.com/google/uuid"
)

var (
	steps1 = NewTopic[int]("chain.first")
	steps2 = NewTopic[int]("chain.second")
	steps3 = NewTopic[int]("chain.third")
)

// A chain of events published by handlers with their ctx: each carries the correlation ID
// of the first (its ID, as it had none) and the ID of its parent as causation.
func TestHandlersPublishingCarryCorrelationAndCausation(t *testing.T) {
	b := New()
	got := make(chan Event[int], 3)
	record := func(next *Topic[int]) func(context.Context, Event[int]) error {
		return func(ctx context.Context, ev Event[int]) error {
			got <- ev
			if next != nil {
				return Publish(ctx, b, *next, ev.Payload+1, WithWait())
			}
			return nil
		}
	}
	mustSubscribe(t, b, steps1, "s", record(&steps2))
	mustSubscribe(t, b, steps2, "s", record(&steps3))
	mustSubscribe(t, b, steps3, "s", record(nil))
	mustPublish(t, b, steps1, 1, WithWait())
	closeBus(t, b)
	first, second, third := <-got, <-got, <-got
	if _, ok := first.Metadata[CorrelationIDKey]; ok || first.Metadata != nil {
		t.Errorf("the first event, published outside a handler: Metadata %v; want none", first.Metadata)
	}
	for _, tt := range []struct {
		name      string
		ev        Event[int]
		corr, cau uuid.UUID
	}{{"second", second, first.ID, first.ID}, {"third", third, first.ID, second.ID}} {
		if c := tt.ev.Metadata[CorrelationIDKey]; c != tt.corr.String() {
			t.Errorf("%s event: correlation %q; want the first event's ID %s", tt.name, c, tt.corr)
		}
		if c := tt.ev.Metadata[CausationIDKey]; c != tt.cau.String() {
			t.Errorf("%s event: causation %q; want its parent's ID %s", tt.name, c, tt.cau)
		}
	}
}

// A publisher's own correlation and causation IDs stand; a handler's publish to another
// bus is correlated too; so is a dead-letter hook's publish, caused by the dead event; and
// the handler's other Metadata is not copied, nor the publisher's map changed.
func TestCorrelationRules(t *testing.T) {
	other := New()
	defer closeBus(t, other)
	got := make(chan Event[int], 10)
	mustSubscribe(t, other, steps2, "s", func(_ context.Context, ev Event[int]) error { got <- ev; return nil })

	b := New(WithDeadLetter(DeadLetterFunc(func(ctx context.Context, dl DeadLetter) error {
		return Publish(ctx, other, steps2, 3)
	})))
	mine := Metadata{CorrelationIDKey: "order-7", "tenant": "acme"}
	mustSubscribe(t, b, steps1, "s", func(ctx context.Context, ev Event[int]) error {
		switch ev.Payload {
		case 1:
			return Publish(ctx, other, steps2, 1, WithMetadata(mine))
		case 2:
			return Publish(ctx, other, steps2, 2)
		}
		return Permanent(fmt.Errorf("payload %d", ev.Payload))
	})
	var ids []uuid.UUID
	for i := 1; i <= 3; i++ {
		id := uuid.New()
		ids = append(ids, id)
		mustPublish(t, b, steps1, i, WithID(id), WithKey("k"), WithMetadata(Metadata{"tenant": "globex"}))
	}
	closeBus(t, b)
	want := map[int]Metadata{
		1: {CorrelationIDKey: "order-7", CausationIDKey: ids[0].String(), "tenant": "acme"},
		2: {CorrelationIDKey: ids[1].String(), CausationIDKey: ids[1].String()},
		3: {CorrelationIDKey: ids[2].String(), CausationIDKey: ids[2].String()},
	}
	for range 3 {
		ev := <-got
		if w := want[ev.Payload]; fmt.Sprint(ev.Metadata) != fmt.Sprint(w) {
			t.Errorf("event %d on the other bus: Metadata %v; want %v", ev.Payload, ev.Metadata, w)
		}
	}
	if len(mine) != 2 {
		t.Errorf("the publisher's Metadata became %v; want it unchanged", mine)
	}
}

// BenchmarkRelay: a handler that publishes each event it handles to another topic with its
// ctx, as relays and process managers do; ns/op is per relayed event, end to end. It
// measures the correlation a handler's publish adds (a Metadata map of two entries).
func BenchmarkRelay(b *testing.B) {
	bus := New()
	defer bus.Close(context.Background())
	done := make(chan struct{})
	mustSubscribe(b, bus, steps1, "relay", func(ctx context.Context, ev Event[int]) error {
		return Publish(ctx, bus, steps2, ev.Payload)
	}, WithConcurrency(1))
	mustSubscribe(b, bus, steps2, "sink", func(_ context.Context, ev Event[int]) error {
		if ev.Payload < 0 { // the last, after every event of the loop (one worker each: in order)
			close(done)
		}
		return nil
	}, WithConcurrency(1))
	b.ReportAllocs()
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		if err := Publish(ctx, bus, steps1, i); err != nil {
			b.Fatal(err)
		}
	}
	if err := Publish(ctx, bus, steps1, -1); err != nil {
		b.Fatal(err)
	}
	<-done
}
