package watermillbus_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

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
