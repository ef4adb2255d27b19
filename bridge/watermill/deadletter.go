package watermillbus

import (
	"context"
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ae30fb47/eventbus"
)

// The metadata fields that [PoisonQueue] adds to a message, named as those of Watermill's
// PoisonQueue middleware (message/router/middleware), so that tools reading a poison
// queue read both.
const (
	ReasonForPoisonedKey  = "reason_poisoned"     // the dead letter's error
	PoisonedTopicKey      = "topic_poisoned"      // the topic the message was published to
	PoisonedSubscriberKey = "subscriber_poisoned" // the bus subscription that gave up on it
)

// PoisonQueue returns a dead-letter hook that publishes each message a subscription gave
// up on to topic through pub, with the metadata fields [ReasonForPoisonedKey],
// [PoisonedTopicKey] and [PoisonedSubscriberKey] added: the bus's counterpart of
// Watermill's PoisonQueue middleware, for [Config.DeadLetter] (or, to publish through the
// PubSub itself, set [Config.PoisonTopic]). Dead letters that are not messages of a PubSub
// and messages that pub fails to publish are returned as errors, which the bus logs.
func PoisonQueue(pub message.Publisher, topic string) eventbus.DeadLetterHandler {
	if pub == nil || topic == "" {
		panic("watermillbus: PoisonQueue: publisher and topic must be set")
	}
	return eventbus.DeadLetterFunc(func(ctx context.Context, dl eventbus.DeadLetter) error {
		msg, ok := MessageOf(dl)
		if !ok {
			return errors.New("watermillbus: PoisonQueue: dead letter is not a Watermill message")
		}
		msg.Metadata.Set(ReasonForPoisonedKey, dl.Err.Error())
		msg.Metadata.Set(PoisonedTopicKey, dl.Event.Type)
		msg.Metadata.Set(PoisonedSubscriberKey, dl.Subscriber)
		msg.SetContext(ctx)
		return pub.Publish(topic, msg)
	})
}
