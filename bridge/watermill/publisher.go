package watermillbus

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ae30fb47/eventbus"
)

// Publisher is a Watermill message.Publisher over a [PubSub]; see [PubSub.NewPublisher].
// It is safe for concurrent use.
type Publisher struct {
	h      *hub
	closed atomic.Bool
}

var _ message.Publisher = (*Publisher)(nil)

// Publish publishes msgs to topic, one after the other, and returns once every
// subscription of the topic on the bus has accepted each: the consumer groups and
// single-call subscriptions of the PubSub, its retention of the topic (see
// [Config.Retain]), and the bus's own subscribers of eventbus.NewTopic[[]byte](topic).
// With Config.Retain, each message reaches a subscription of the PubSub, if need be the
// retention that Publish makes, even as subscriptions come and go while it runs. One race
// is left: if the topic also has subscribers outside the PubSub (the bus's own, another
// PubSub's), a message published while the PubSub's subscriptions of the topic are
// replaced (those Publish found leave the bus, for one that came after it looked) may
// reach only those outside subscribers.
// With Config.BlockPublishUntilSubscriberAck it returns only once they acked each message
// or gave up on it.
//
// Each message becomes an event: its payload as is (not copied: do not change it once
// published), its metadata (copied), its UUID as the event's ID or in the [UUIDMetadata]
// field, and the key [Config.Key] gives it. Messages published by one goroutine keep their
// order per key.
//
// A full subscription makes Publish wait for room until the message's context ends (or,
// for a context that cannot end, until the PubSub closes); it then returns an error
// wrapping the context's error. On an error, the messages before the failing one were
// published and the rest were not. Publish returns [ErrClosed] once the Publisher or its
// PubSub is closed, or if the PubSub closed while it ran (the message may then have reached
// some of the PubSub's subscriptions, which dead-letter it unless a consumer acks it in
// time, or none), and an error for an empty topic, a topic that the bus carries with
// another payload type, or a message whose metadata has the [UUIDMetadata] field.
func (p *Publisher) Publish(topic string, msgs ...*message.Message) error {
	h := p.h
	if p.closed.Load() || h.ctx.Err() != nil {
		return ErrClosed
	}
	if topic == "" {
		return errEmptyTopic
	}
	for _, msg := range msgs {
		if err := p.publish(topic, msg); err != nil {
			return err
		}
	}
	return nil
}

func (p *Publisher) publish(topic string, msg *message.Message) error {
	h := p.h
	env, err := toEnvelope(msg)
	if err != nil {
		return err
	}
	// A message whose context cannot end still stops waiting when the PubSub closes.
	ctx := msg.Context()
	if ctx == context.Background() {
		ctx = h.ctx // what untilClosed would give (Background has no values), without allocating one
	} else if ctx.Done() == nil {
		ctx = untilClosed{h.ctx, ctx}
	}
	opts := [5]eventbus.PublishOption{
		eventbus.WithKey(h.cfg.Key(topic, msg)),
		eventbus.WithID(env.id),
		eventbus.WithMetadata(env.md),
	}
	n := 3
	if h.cfg.BlockPublishUntilSubscriberAck {
		opts[n] = eventbus.WithWait()
		n++
	}
	if h.cfg.Retain {
		opts[n] = eventbus.WithSubscriberRequired()
		n++
	}
	for {
		var t eventbus.Topic[[]byte]
		if t, err = h.publishTopic(topic); err != nil {
			return fmt.Errorf("watermillbus: retaining messages of topic %q: %w", topic, err)
		}
		err = eventbus.Publish(ctx, h.bus, t, []byte(msg.Payload), opts[:n]...)
		if h.ctx.Err() != nil {
			// The PubSub closed while the message was being published: it may have reached
			// subscriptions that are leaving the bus, or missed them as they left.
			return ErrClosed
		}
		if !errors.Is(err, eventbus.ErrNoSubscribers) {
			break
		}
		// Every subscription that Publish found had left the bus before it took the
		// message. While the PubSub is open, only a single Subscribe call's subscription
		// leaves, and only if another subscription of the PubSub is on the topic (see
		// hub.leave): publish again, to that one.
	}
	if err != nil {
		return fmt.Errorf("watermillbus: publishing message %q to %q: %w", msg.UUID, topic, err)
	}
	return nil
}

// Close makes the Publisher's later Publish calls return [ErrClosed]; the PubSub and its
// other Publishers go on. Publish is synchronous, so there is nothing to flush. Close is
// idempotent and returns nil.
func (p *Publisher) Close() error {
	p.closed.Store(true)
	return nil
}

// untilClosed is the context that Publish waits with for a message whose context cannot
// end: it ends when the PubSub closes, and has the values of the message's context, so
// that the bus recognizes a message published from one of its handlers or dead-letter
// hooks (see eventbus.Publish).
type untilClosed struct {
	context.Context // the hub's
	values          context.Context
}

func (c untilClosed) Value(key any) any { return c.values.Value(key) }
