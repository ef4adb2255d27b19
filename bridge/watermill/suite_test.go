package watermillbus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/ae30fb47/eventbus"
	watermillbus "github.com/ae30fb47/eventbus/bridge/watermill"
)

// suiteConfig is the PubSub configuration the conformance suite runs with. The suite
// publishes up to 10,000 messages to a topic before it subscribes, so the retention must
// hold that many; CloseTimeout is short because one test closes the PubSub with a message
// it never acks, and waits for nothing else.
var suiteConfig = watermillbus.Config{Retain: true, Buffer: 10_000, CloseTimeout: 500 * time.Millisecond}

// suiteFeatures are the strongest features the PubSub claims; see the README for why each
// holds.
var suiteFeatures = tests.Features{
	ConsumerGroups:      true,
	ExactlyOnceDelivery: true,
	GuaranteedOrder:     true,
	Persistent:          true,
}

// newSuitePubSub returns a bus and a PubSub over it that the suite's constructors make
// Publishers and Subscribers of, like clients of one broker, and closes both when t ends.
// It fails t if anything was dead-lettered before the PubSub closed.
func newSuitePubSub(t *testing.T) *watermillbus.PubSub {
	var deadLetters atomic.Int64
	bus := eventbus.New(eventbus.WithDeadLetter(eventbus.DeadLetterFunc(func(context.Context, eventbus.DeadLetter) error {
		deadLetters.Add(1)
		return nil
	})))
	ps := watermillbus.New(bus, suiteConfig)
	t.Cleanup(func() {
		if n := deadLetters.Load(); n != 0 {
			t.Errorf("%d messages dead-lettered while the suite ran; want 0", n)
		}
		ps.Close()
		t.Logf("messages dead-lettered by Close: %d", deadLetters.Load())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := bus.Close(ctx); err != nil {
			t.Errorf("bus.Close() = %v; want nil", err)
		}
	})
	return ps
}

// constructors returns the suite's two constructors over ps: Publishers and Subscribers
// of ps, like clients of one broker. The first makes Subscribers of consumer group group
// ("" for a subscription per Subscribe call); the second, of the group the test asks for.
// Every Publisher and Subscriber they make is closed when the test that made it ends (the
// suite leaves some open).
func constructors(ps *watermillbus.PubSub, group string) (tests.PubSubConstructor, tests.ConsumerGroupPubSubConstructor) {
	withGroup := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		pub, sub := ps.NewPublisher(), ps.NewSubscriber(group)
		t.Cleanup(func() {
			pub.Close()
			sub.Close()
		})
		return pub, sub
	}
	return func(t *testing.T) (message.Publisher, message.Subscriber) {
		return withGroup(t, group)
	}, withGroup
}

// suiteGroups are the consumer groups that the suite's Subscribers join: a named one, and
// "", a subscription per Subscribe call, as with the zero Config.
var suiteGroups = map[string]string{"named group": "suite", "own subscriptions": ""}

func TestPubSub(t *testing.T) {
	for name, group := range suiteGroups {
		t.Run(name, func(t *testing.T) {
			pubSub, withGroup := constructors(newSuitePubSub(t), group)
			tests.TestPubSub(t, suiteFeatures, pubSub, withGroup)
		})
	}
}

// TestPubSubAtLeastOnce runs the two tests of the suite that it skips for a Pub/Sub
// claiming ExactlyOnceDelivery ("not supported yet"), claiming the rest.
func TestPubSubAtLeastOnce(t *testing.T) {
	for name, group := range suiteGroups {
		t.Run(name, func(t *testing.T) {
			pubSub, _ := constructors(newSuitePubSub(t), group)
			features := suiteFeatures
			features.ExactlyOnceDelivery = false
			for name, test := range map[string]func(*testing.T, tests.TestContext, tests.PubSubConstructor){
				"TestConcurrentClose":             tests.TestConcurrentClose,
				"TestContinueAfterSubscribeClose": tests.TestContinueAfterSubscribeClose,
			} {
				t.Run(name, func(t *testing.T) {
					t.Parallel()
					test(t, tests.TestContext{TestID: tests.NewTestID(), Features: features}, pubSub)
				})
			}
		})
	}
}
