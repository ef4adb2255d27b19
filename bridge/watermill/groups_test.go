package watermillbus_test

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ae30fb47/eventbus"
	watermillbus "github.com/ae30fb47/eventbus/bridge/watermill"
)

// TestEverySubscribeCallReceivesEverything checks the default, gochannel's behaviour: two
// Subscribe calls on one topic each receive every message.
func TestEverySubscribeCallReceivesEverything(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{})
	a, b := subscribe(t, ps, "fanout"), subscribe(t, ps, "fanout")
	want := payloads(publishN(t, ps, "fanout", "m", 20))
	for name, ch := range map[string]<-chan *message.Message{"first": a, "second": b} {
		if got := receiveAck(t, ch, 20); !slices.Equal(got, want) {
			t.Errorf("%s Subscribe call received %v; want %v", name, got, want)
		}
	}
}

// TestConsumerGroupSharesMessages checks that the consumers of one group receive each
// message once between them, that another group receives them all too, and that both
// consumers of the group take part when messages have different keys.
func TestConsumerGroupSharesMessages(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{Concurrency: 2})
	billing := ps.NewSubscriber("billing")
	c1, c2 := subscribe(t, billing, "orders"), subscribe(t, billing, "orders")
	audit := subscribe(t, ps.NewSubscriber("audit"), "orders")

	const n = 200
	var msgs []*message.Message
	for i := range n {
		key := string(rune('a' + i%26))
		msgs = append(msgs, newMsg(key+"-"+strconv.Itoa(i), watermillbus.KeyMetadata, key))
	}
	publish(t, ps, "orders", msgs...)

	c := consumeGroup(t, []<-chan *message.Message{c1, c2}, n, 0)
	expectNone(t, c1, 50*time.Millisecond)
	expectNone(t, c2, 50*time.Millisecond)
	if !samePerKeyOrder(c.acked, payloads(msgs)) {
		t.Errorf("group billing acked %v; want every message once, in order per key", c.acked)
	}
	if c.perChannel[0] == 0 || c.perChannel[1] == 0 {
		t.Errorf("consumers of billing received %v messages; want both to take part", c.perChannel)
	}
	if got := receiveAck(t, audit, n); !samePerKeyOrder(got, payloads(msgs)) {
		t.Errorf("group audit received %v; want every message, in order per key", got)
	}
}

// TestNamedGroupOutlivesItsConsumers checks that a named group keeps collecting messages
// while it has no consumer, and its next consumer, of another Subscriber, receives them.
func TestNamedGroupOutlivesItsConsumers(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{})
	first := ps.NewSubscriber("workers")
	ch := subscribe(t, first, "jobs")
	publishN(t, ps, "jobs", "early", 3)
	if got := receiveAck(t, ch, 1); got[0] != "early0" {
		t.Fatalf("received %q; want early0", got[0])
	}
	if err := first.Close(); err != nil {
		t.Fatalf("Close() = %v; want nil", err)
	}
	expectClosed(t, ch)
	publishN(t, ps, "jobs", "late", 2)

	next := subscribe(t, ps.NewSubscriber("workers"), "jobs")
	want := []string{"early1", "early2", "late0", "late1"}
	if got := receiveAck(t, next, 4); !slices.Equal(got, want) {
		t.Errorf("next consumer received %v; want %v", got, want)
	}
	if dls := ps.deadLetters.all(); len(dls) != 0 {
		t.Errorf("%d dead letters; want none", len(dls))
	}
}

// samePerKeyOrder reports whether got holds the payloads of want, each of the form
// "key-n", with those of each key in the same order.
func samePerKeyOrder(got, want []string) bool {
	byKey := func(ps []string) map[string][]string {
		m := map[string][]string{}
		for _, p := range ps {
			k, _, _ := strings.Cut(p, "-")
			m[k] = append(m[k], p)
		}
		return m
	}
	g, w := byKey(got), byKey(want)
	if len(got) != len(want) || len(g) != len(w) {
		return false
	}
	for k, ps := range w {
		if !slices.Equal(g[k], ps) {
			return false
		}
	}
	return true
}

// TestGroupNameIsNotTaken checks that a consumer group's subscription on the bus does not
// take the group's name, which a subscriber of the bus's own on the same topic may have:
// both receive every message, and the group's dead letters name its subscription
// "watermill:" and the group.
func TestGroupNameIsNotTaken(t *testing.T) {
	dls := &deadLetters{}
	ps := newPubSub(t, watermillbus.Config{Retry: &eventbus.RetryPolicy{MaxAttempts: 1}, DeadLetter: dls})
	native := make(chan string, 1)
	_, err := eventbus.Subscribe(ps.bus, eventbus.NewTopic[[]byte]("orders"), "billing",
		func(_ context.Context, ev eventbus.Event[[]byte]) error {
			native <- string(ev.Payload)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	group := subscribe(t, ps.NewSubscriber("billing"), "orders")
	publishN(t, ps, "orders", "m", 1)
	select {
	case got := <-native:
		if got != "m0" {
			t.Errorf("bus subscriber billing received %q; want m0", got)
		}
	case <-time.After(waitFor):
		t.Fatal("bus subscriber billing received nothing")
	}
	receive(t, group).Nack() // its only attempt: dead-lettered
	waitDeadLetters(t, dls, 1)
	if got, want := dls.all()[0].Subscriber, watermillbus.GroupSubscriptionPrefix+"billing"; got != want {
		t.Errorf("dead letter of group billing from %q; want %q", got, want)
	}
}

// TestGroupBelongsToItsPubSub checks the documented limit: a consumer group belongs to one
// PubSub, so another PubSub on the same bus cannot have a group of that name on the topic,
// whether the first made its group afresh or from a retention. Its Subscribe says so, the
// first PubSub's group is unharmed, and once that PubSub is closed the name is free.
func TestGroupBelongsToItsPubSub(t *testing.T) {
	for _, tt := range []struct {
		name   string
		retain bool
	}{
		{"fresh group", false},
		{"group that took over a retention", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := watermillbus.Config{ConsumerGroup: "billing", Retain: tt.retain}
			a := newPubSub(t, cfg)
			b := watermillbus.New(a.bus, cfg)
			defer b.Close()
			publishN(t, a, "orders", "early", 1) // retained, if cfg says so
			ch := subscribe(t, a, "orders")
			if _, err := b.Subscribe(t.Context(), "orders"); err == nil || !strings.Contains(err.Error(), `consumer group "billing"`) {
				t.Errorf("second PubSub's Subscribe to group billing = %v; want an error naming the group", err)
			}
			publishN(t, b, "orders", "m", 1)
			want := []string{"m0"}
			if tt.retain {
				want = []string{"early0", "m0"}
			}
			if got := receiveAck(t, ch, len(want)); !slices.Equal(got, want) {
				t.Errorf("first PubSub's group received %v; want %v", got, want)
			}
			a.Close()
			if _, err := b.Subscribe(t.Context(), "orders"); err != nil {
				t.Errorf("second PubSub's Subscribe once the first closed = %v; want nil", err)
			}
		})
	}
}
