package watermillbus_test

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ae30fb47/eventbus"
	watermillbus "github.com/ae30fb47/eventbus/bridge/watermill"
)

// TestNackRedeliversAtOnceWithoutLimit checks DefaultRetry: a message nacked a hundred
// times is redelivered each time, before the next message of its key, and never
// dead-lettered.
func TestNackRedeliversAtOnceWithoutLimit(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{})
	ch := subscribe(t, ps, "nack")
	msgs := publishN(t, ps, "nack", "m", 2)
	for i := range 100 {
		msg := receive(t, ch)
		if msg.UUID != msgs[0].UUID {
			t.Fatalf("delivery %d: got %q; want %q again", i+1, msg.Payload, msgs[0].Payload)
		}
		msg.Nack()
	}
	if got := receiveAck(t, ch, 2); got[0] != "m0" || got[1] != "m1" {
		t.Errorf("after the nacks received %v; want [m0 m1]", got)
	}
	if dls := ps.deadLetters.all(); len(dls) != 0 {
		t.Errorf("%d dead letters; want none", len(dls))
	}
}

// TestRetryPolicy checks a retry policy of one's own: a nacked message is redelivered after
// the policy's backoff, and dead-lettered once its attempts are spent, with what it was;
// then the next message of its key comes.
func TestRetryPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		dls := &deadLetters{}
		policy := eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Second, Multiplier: 2, Jitter: -1}
		ps := newPubSub(t, watermillbus.Config{Retry: &policy, DeadLetter: dls})
		ch := subscribe(t, ps, "orders")
		publish(t, ps, "orders", newMsg("poison", "k", "v"), newMsg("next"))

		start := time.Now()
		var seen []time.Duration
		for range 3 {
			msg := receive(t, ch)
			if string(msg.Payload) != "poison" {
				t.Fatalf("got %q; want the poison message again", msg.Payload)
			}
			seen = append(seen, time.Since(start))
			msg.Nack()
		}
		want := []time.Duration{0, time.Second, 3 * time.Second}
		for i := range want {
			if seen[i] != want[i] {
				t.Errorf("attempt %d came after %v; want %v (backoff 1s, then 2s)", i+1, seen[i], want[i])
			}
		}
		if got := receiveAck(t, ch, 1); got[0] != "next" {
			t.Errorf("after the dead letter received %q; want next", got[0])
		}
		all := dls.all()
		if len(all) != 1 {
			t.Fatalf("%d dead letters; want 1", len(all))
		}
		dl := all[0]
		if dl.Attempts != 3 || !errors.Is(dl.Err, watermillbus.ErrNacked) {
			t.Errorf("dead letter after %d attempts with %v; want 3 and ErrNacked", dl.Attempts, dl.Err)
		}
		msg, ok := watermillbus.MessageOf(dl)
		if !ok || string(msg.Payload) != "poison" || msg.Metadata.Get("k") != "v" {
			t.Errorf("MessageOf(dead letter) = %v, %v; want the poison message", msg, ok)
		}
	})
}

// TestPoisonTopic checks Config.PoisonTopic: a message given up on is published to the
// poison topic, with its UUID, payload and metadata, and why.
func TestPoisonTopic(t *testing.T) {
	policy := eventbus.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond}
	ps := newPubSub(t, watermillbus.Config{Retry: &policy, PoisonTopic: "poison"})
	poison := subscribe(t, ps, "poison")
	ch := subscribe(t, ps, "work")
	sent := newMsg("bad", "trace", "t1")
	publish(t, ps, "work", sent)
	receive(t, ch).Nack()
	receive(t, ch).Nack()

	got := receive(t, poison)
	got.Ack()
	if got.UUID != sent.UUID || string(got.Payload) != "bad" || got.Metadata.Get("trace") != "t1" {
		t.Errorf("poison message %q %q %v; want the message that failed", got.UUID, got.Payload, got.Metadata)
	}
	if reason := got.Metadata.Get(watermillbus.ReasonForPoisonedKey); !strings.Contains(reason, watermillbus.ErrNacked.Error()) {
		t.Errorf("%s = %q; want it to say the message was nacked", watermillbus.ReasonForPoisonedKey, reason)
	}
	if topic := got.Metadata.Get(watermillbus.PoisonedTopicKey); topic != "work" {
		t.Errorf("%s = %q; want work", watermillbus.PoisonedTopicKey, topic)
	}
	if sub := got.Metadata.Get(watermillbus.PoisonedSubscriberKey); sub == "" {
		t.Errorf("%s is empty; want the subscription's name", watermillbus.PoisonedSubscriberKey)
	}
}
