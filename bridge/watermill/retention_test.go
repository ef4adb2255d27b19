package watermillbus_test

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ae30fb47/eventbus"
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

// TestRetainUnderSubscriberChurn checks that with Retain every message Publish accepted
// ends in exactly one way, acked once or dead-lettered, never nowhere nor twice, while the
// topic's only subscribers, single Subscribe calls, come and go as it is published. What no
// subscriber took is retained for the last one.
func TestRetainUnderSubscriberChurn(t *testing.T) {
	const n = 5000
	var (
		mu    sync.Mutex
		fates = make(map[string][]string, n) // payload -> "acked", "dead-lettered"
	)
	record := func(payload, fate string) {
		mu.Lock()
		fates[payload] = append(fates[payload], fate)
		mu.Unlock()
	}
	ended := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(fates)
	}
	ack := func(msg *message.Message) {
		record(string(msg.Payload), "acked")
		msg.Ack()
	}
	ps := newPubSub(t, watermillbus.Config{
		Retain: true,
		Key:    func(string, *message.Message) string { return "" },
		DeadLetter: eventbus.DeadLetterFunc(func(_ context.Context, dl eventbus.DeadLetter) error {
			record(string(dl.Event.Payload.([]byte)), "dead-lettered")
			return nil
		}),
	})

	stop := make(chan struct{})
	var churn sync.WaitGroup
	churn.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := context.WithCancel(t.Context())
			ch, err := ps.Subscribe(ctx, "t")
			if err != nil {
				cancel()
				t.Errorf("Subscribe() = %v; want nil", err)
				return
			}
			for range 3 { // take a few messages, if any come soon, then leave
				select {
				case msg := <-ch:
					ack(msg)
				case <-time.After(time.Millisecond):
				}
			}
			cancel()
			for msg := range ch { // it closes at once, but a message may be on its way
				ack(msg)
			}
		}
	})
	publishN(t, ps, "t", "m", n)
	close(stop)
	churn.Wait()

	last := subscribe(t, ps, "t")
	for deadline := time.Now().Add(waitFor); ended() < n && time.Now().Before(deadline); {
		select {
		case msg := <-last:
			ack(msg)
		case <-time.After(10 * time.Millisecond):
		}
	}
	mu.Lock()
	defer mu.Unlock()
	var lost, twice []string
	for i := range n {
		p := "m" + strconv.Itoa(i)
		switch f := fates[p]; {
		case len(f) == 0:
			lost = append(lost, p)
		case len(f) > 1:
			twice = append(twice, p+" "+strings.Join(f, ", "))
		}
	}
	if len(lost) != 0 || len(twice) != 0 {
		t.Errorf("of %d messages, %d ended nowhere (%q...) and %d more than once (%q...); want each acked once or dead-lettered",
			n, len(lost), lost[:min(len(lost), 5)], len(twice), twice[:min(len(twice), 5)])
	}
}

// TestLastSubscriptionBecomesTheRetention checks that with Retain the subscription of a
// topic's last Subscribe call does not leave when its channel closes: it keeps what it
// holds, and what is published from then on, for the next Subscribe call, even while the
// message in flight awaits its ack. That message counts if it is acked within
// CloseTimeout, and is redelivered to the next Subscribe call if not.
func TestLastSubscriptionBecomesTheRetention(t *testing.T) {
	for _, tt := range []struct {
		name string
		ack  bool
		want []string
	}{
		{"acked in time", true, []string{"m1", "late0"}},
		{"not acked in time", false, []string{"m0", "m1", "late0"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			closeTimeout := waitFor
			if !tt.ack {
				closeTimeout = time.Millisecond
			}
			ps := newPubSub(t, watermillbus.Config{Retain: true, CloseTimeout: closeTimeout})
			ctx, cancel := context.WithCancel(t.Context())
			ch, err := ps.Subscribe(ctx, "t")
			if err != nil {
				t.Fatal(err)
			}
			publishN(t, ps, "t", "m", 2)
			inFlight := receive(t, ch)
			cancel()
			expectClosed(t, ch)
			publishN(t, ps, "t", "late", 1)
			if tt.ack {
				inFlight.Ack()
			}
			if got := receiveAck(t, subscribe(t, ps, "t"), len(tt.want)); !slices.Equal(got, tt.want) {
				t.Errorf("next Subscribe call received %v; want %v", got, tt.want)
			}
			if dls := ps.deadLetters.all(); len(dls) != 0 {
				t.Errorf("%d dead letters; want none", len(dls))
			}
		})
	}
}
