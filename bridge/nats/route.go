package natsbridge

import (
	"context"
	"errors"
	"fmt"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/cloudevents"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Route says what a [Bridge] does with one topic: forward its events to JetStream
// ([Forward]) or feed the bus with them ([Receive]). The zero Route is invalid.
type Route struct {
	topic   string
	forward func(br *Bridge) (*eventbus.Subscription, error)
	receive func(reg *cloudevents.Registry) error
}

// Forward routes the events of topic t from the local bus to JetStream. The bridge
// subscribes to t (as Config.Subscriber, with Config.PublishRetry and
// Config.PublishConcurrency) and publishes each event in binary mode, with the
// "ce-" headers of cloudevents.NATS and Nats-Msg-Id set to the event ID, to the subject
// of its key's partition; the event counts as forwarded once JetStream acknowledged it.
// Every Metadata entry crosses (see package cloudevents for the mapping).
//
// Events of one key are published one at a time, in the order the bus handles them, so
// they are stored in that order. A publish that fails (broker down, no ack within
// Config.PublishTimeout) is retried by the subscription's policy with the same
// Nats-Msg-Id, so the stream stores it once if the retries end within its Duplicates
// window. An event that is not forwarded is dead-lettered on the bus, never dropped: when
// the retries run out, at once if it cannot be a CloudEvent (a Metadata value that is not
// valid UTF-8, say) or is larger than the server's max_payload, and at Close for what is
// left. Each such dead letter counts in [Stats].ForwardDeadLetters by reason, is logged at
// Warn (the first of each reason, then at most one per reason a minute, with the number
// left unlogged), and goes to Config.DeadLetter, or the bus's hook without one. A
// publisher that must know passes eventbus.WithWait: its Publish then returns the
// forward's final error, an *eventbus.DeliveryError of the subscriber Config.Subscriber.
func Forward[T any](t eventbus.Topic[T]) Route {
	return Route{topic: t.Name(), forward: func(br *Bridge) (*eventbus.Subscription, error) {
		opts := []eventbus.SubscribeOption{
			eventbus.WithRetry(br.cfg.PublishRetry),
			eventbus.WithConcurrency(br.cfg.PublishConcurrency),
			eventbus.WithDeadLetter(br.outbound),
		}
		return eventbus.Subscribe(br.bus, t, br.cfg.Subscriber, func(ctx context.Context, ev eventbus.Event[T]) error {
			e, err := cloudevents.FromEvent(ev)
			if err != nil {
				return eventbus.Permanent(err)
			}
			return br.publish(ctx, &e, ev.Key)
		}, opts...)
	}}
}

// Receive routes the events of topic t from JetStream to the local bus: the bridge's
// consumers receive them, decode them into a T, and publish them on the bus with their
// envelope (ID, Time, Key, Metadata, Source) intact. See the package doc for when a
// received event is acknowledged, redelivered or dead-lettered.
func Receive[T any](t eventbus.Topic[T]) Route {
	return Route{topic: t.Name(), receive: func(reg *cloudevents.Registry) error {
		return cloudevents.Register(reg, t)
	}}
}

// publish sends e to the subject of its partition and waits for JetStream's ack.
func (br *Bridge) publish(ctx context.Context, e *cloudevents.Event, key string) error {
	p := Partition(key, br.cfg.Partitions)
	if key == "" {
		p = Partition(e.ID, br.cfg.Partitions)
	}
	msg := nats.NewMsg(br.subject(p, e.Type))
	body, err := e.WriteBinary(cloudevents.NATS, msg.Header.Set)
	if err != nil {
		return eventbus.Permanent(err)
	}
	msg.Data = body
	ctx, cancel := context.WithTimeout(ctx, br.cfg.PublishTimeout)
	defer cancel()
	ack, err := br.js.PublishMsg(ctx, msg, jetstream.WithMsgID(e.ID), jetstream.WithExpectStream(br.cfg.Stream))
	if err != nil {
		br.stats.forwardFailures.Add(1)
		if errors.Is(err, nats.ErrMaxPayload) {
			return eventbus.Permanent(fmt.Errorf("natsbridge: publish to %s: %w", msg.Subject, err))
		}
		return fmt.Errorf("natsbridge: publish to %s: %w", msg.Subject, err)
	}
	br.stats.forwarded.Add(1)
	if ack.Duplicate {
		br.stats.forwardDuplicates.Add(1)
	}
	return nil
}
