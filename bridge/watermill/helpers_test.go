package watermillbus_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ae30fb47/eventbus"
	watermillbus "github.com/ae30fb47/eventbus/bridge/watermill"
)

// waitFor bounds every wait of these tests for something that should happen promptly.
const waitFor = 10 * time.Second

// deadLetters is a dead-letter hook that keeps what it receives.
type deadLetters struct {
	mu  sync.Mutex
	dls []eventbus.DeadLetter
}

func (r *deadLetters) HandleDeadLetter(_ context.Context, dl eventbus.DeadLetter) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dls = append(r.dls, dl)
	return nil
}

func (r *deadLetters) all() []eventbus.DeadLetter {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]eventbus.DeadLetter(nil), r.dls...)
}

// testPubSub is a PubSub over a bus of its own, both closed when the test ends, with the
// dead letters of both recorded.
type testPubSub struct {
	*watermillbus.PubSub
	bus         *eventbus.Bus
	deadLetters *deadLetters
}

func newPubSub(t *testing.T, cfg watermillbus.Config) testPubSub {
	t.Helper()
	dls := &deadLetters{}
	bus := eventbus.New(eventbus.WithDeadLetter(dls))
	ps := watermillbus.New(bus, cfg)
	t.Cleanup(func() {
		ps.Close()
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if err := bus.Close(ctx); err != nil {
			t.Errorf("bus.Close() = %v; want nil", err)
		}
	})
	return testPubSub{ps, bus, dls}
}

// newMsg returns a message with a new UUID, the payload and the metadata given as key,
// value pairs.
func newMsg(payload string, md ...string) *message.Message {
	msg := message.NewMessage(watermill.NewUUID(), []byte(payload))
	for i := 0; i+1 < len(md); i += 2 {
		msg.Metadata.Set(md[i], md[i+1])
	}
	return msg
}

// publish publishes msgs to topic or fails the test.
func publish(t *testing.T, p message.Publisher, topic string, msgs ...*message.Message) {
	t.Helper()
	if err := p.Publish(topic, msgs...); err != nil {
		t.Fatalf("Publish(%q) = %v; want nil", topic, err)
	}
}

// publishN publishes n messages with payloads prefix0, prefix1, ... to topic, with the
// metadata given, and returns them.
func publishN(t *testing.T, p message.Publisher, topic, prefix string, n int, md ...string) []*message.Message {
	t.Helper()
	msgs := make([]*message.Message, n)
	for i := range msgs {
		msgs[i] = newMsg(prefix+strconv.Itoa(i), md...)
	}
	publish(t, p, topic, msgs...)
	return msgs
}

// subscribe subscribes s to topic with the test's context or fails the test.
func subscribe(t *testing.T, s message.Subscriber, topic string) <-chan *message.Message {
	t.Helper()
	ch, err := s.Subscribe(t.Context(), topic)
	if err != nil {
		t.Fatalf("Subscribe(%q) = %v; want nil", topic, err)
	}
	return ch
}

// receive returns the next message of ch, failing the test if none comes within waitFor
// or ch is closed.
func receive(t *testing.T, ch <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case msg, ok := <-ch:
		if !ok {
			t.Fatal("channel closed; want a message")
		}
		return msg
	case <-time.After(waitFor):
		t.Fatalf("no message within %v", waitFor)
		return nil
	}
}

// receiveAck receives n messages from ch, acking each, and returns their payloads in the
// order received.
func receiveAck(t *testing.T, ch <-chan *message.Message, n int) []string {
	t.Helper()
	got := make([]string, 0, n)
	for range n {
		msg := receive(t, ch)
		got = append(got, string(msg.Payload))
		msg.Ack()
	}
	return got
}

// expectNone fails the test if ch yields a message within d.
func expectNone(t *testing.T, ch <-chan *message.Message, d time.Duration) {
	t.Helper()
	select {
	case msg, ok := <-ch:
		if ok {
			t.Fatalf("got message %q; want none", msg.Payload)
		}
	case <-time.After(d):
	}
}

// expectClosed fails the test if ch is not closed within waitFor, or yields a message.
func expectClosed(t *testing.T, ch <-chan *message.Message) {
	t.Helper()
	select {
	case msg, ok := <-ch:
		if ok {
			t.Fatalf("got message %q; want the channel closed", msg.Payload)
		}
	case <-time.After(waitFor):
		t.Fatalf("channel not closed within %v", waitFor)
	}
}

// payloads returns the payloads of msgs.
func payloads(msgs []*message.Message) []string {
	ps := make([]string, len(msgs))
	for i, m := range msgs {
		ps[i] = string(m.Payload)
	}
	return ps
}
