package watermillbus_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	watermillbus "github.com/ae30fb47/eventbus/bridge/watermill"
)

// TestWithoutRetain checks the default: a message published to a topic no one subscribes
// to is not kept, as with gochannel.
func TestWithoutRetain(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{})
	publishN(t, ps, "t", "early", 1)
	ch := subscribe(t, ps, "t")
	expectNone(t, ch, 50*time.Millisecond)
	publishN(t, ps, "t", "late", 1)
	if got := receiveAck(t, ch, 1); got[0] != "late0" {
		t.Errorf("received %q; want late0 only", got[0])
	}
}

// TestRetainKeepsMessagesForTheFirstSubscriber checks Config.Retain: the first Subscribe
// call on a topic receives what was published before, in order; a later one receives only
// what is published from then on.
func TestRetainKeepsMessagesForTheFirstSubscriber(t *testing.T) {
	for name, group := range map[string]string{"own subscription": "", "named group": "named"} {
		t.Run(name, func(t *testing.T) {
			ps := newPubSub(t, watermillbus.Config{Retain: true})
			early := payloads(publishN(t, ps, "t", "early", 5))
			first := subscribe(t, ps.NewSubscriber(group), "t")
			if got := receiveAck(t, first, 5); !slices.Equal(got, early) {
				t.Errorf("first subscriber received %v; want %v", got, early)
			}
			second := subscribe(t, ps.NewSubscriber("other"), "t")
			publishN(t, ps, "t", "late", 1)
			for name, ch := range map[string]<-chan *message.Message{"first": first, "second": second} {
				if got := receiveAck(t, ch, 1); got[0] != "late0" {
					t.Errorf("%s subscriber received %q; want late0", name, got[0])
				}
			}
		})
	}
}

// TestRetentionIsBounded checks that a retention holds at most Buffer messages: one more
// makes Publish wait, until the message's context ends.
func TestRetentionIsBounded(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{Retain: true, Buffer: 3})
	kept := payloads(publishN(t, ps, "t", "m", 3))
	msg := newMsg("one too many")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	msg.SetContext(ctx)
	if err := ps.Publish("t", msg); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Publish beyond the retention = %v; want context.DeadlineExceeded", err)
	}
	ch := subscribe(t, ps, "t")
	if got := receiveAck(t, ch, 3); !slices.Equal(got, kept) {
		t.Errorf("received %v; want %v", got, kept)
	}
	expectNone(t, ch, 50*time.Millisecond)
}

// TestRetentionResumesWhenTheLastSubscriberLeaves checks that once the last subscription
// of a topic is gone, the topic retains again.
func TestRetentionResumesWhenTheLastSubscriberLeaves(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{Retain: true})
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := ps.Subscribe(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	expectClosed(t, ch)
	want := payloads(publishN(t, ps, "t", "m", 2))
	if got := receiveAck(t, subscribe(t, ps, "t"), 2); !slices.Equal(got, want) {
		t.Errorf("received %v; want %v", got, want)
	}
}
