package watermillbus

import (
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ae30fb47/eventbus"
)

// Config configures a [PubSub]. The zero Config is usable: every zero field takes the
// default its comment gives.
type Config struct {
	// ConsumerGroup is the consumer group of the PubSub's own Subscribe calls (see
	// [PubSub.NewSubscriber] for others). The default, "", gives each Subscribe call a
	// subscription of its own that receives every message published to the topic from
	// then on, as Watermill's gochannel does. Subscribe calls with the same non-empty group
	// share one subscription: each message goes to one of them, and the group keeps
	// collecting messages while it has no consumer, until the PubSub is closed. A group
	// belongs to its PubSub: on one bus, another PubSub's Subscribe to a group of the same
	// name on the same topic returns an error until this PubSub closes.
	ConsumerGroup string

	// Key returns a message's ordering key. A group receives the messages of one key one
	// at a time, in publish order: the next is delivered only once the previous one was
	// acked (or dead-lettered), and a nacked message is redelivered before it. Messages
	// with different keys may be in flight at once, to different consumers of a group.
	// The empty key means no ordering promise. The default is [DefaultKey].
	Key func(topic string, msg *message.Message) string

	// Retain keeps the messages published to a topic while it has no subscriber of this
	// PubSub, up to Buffer of them, for the next Subscribe call on that topic (of any
	// consumer group), which receives them first, in order. A subscription of the PubSub
	// on the bus, the topic's retention, holds them: Publish makes one for a topic without
	// a subscription of the PubSub, and when the topic's last subscription is that of a
	// single Subscribe call (consumer group ""), that subscription becomes the retention
	// as its channel closes, keeping what it holds. Its message in flight, if not acked
	// within CloseTimeout, is then redelivered to the next Subscribe call. So every
	// message that Publish accepts ends acked, dead-lettered or retained (but see
	// [Publisher.Publish] for a topic that also has subscribers outside the PubSub).
	// Once Buffer messages wait, Publish waits for room as it does for a full
	// subscription. A topic that has had a subscription of the PubSub keeps one (its
	// retention, if nothing else), with Concurrency goroutines, until the PubSub closes:
	// Retain is meant for a known set of topics, not for names made on the fly. Without
	// Retain, messages published to a topic without a subscription of the PubSub reach
	// only its other subscribers on the bus, if any, as with gochannel, and a single
	// Subscribe call's subscription leaves the bus when its channel closes,
	// dead-lettering what it holds.
	Retain bool

	// Buffer is how many unacknowledged messages a subscription (or the retention of a
	// topic) holds: queued, in flight or waiting to be redelivered. When it is full,
	// Publish waits until there is room or the message's context ends. The default is
	// eventbus.DefaultBuffer.
	Buffer int

	// Concurrency is how many messages a consumer group may have in flight at once, each
	// with one of its consumers (each consumer holds one message until it acks or nacks
	// it). The default is runtime.GOMAXPROCS(0). A subscription of its own (ConsumerGroup
	// "") has a single consumer, so it uses 1, unless Retain is set: then it may become a
	// retention, which a consumer group may take over, so it uses Concurrency too. A group
	// whose handlers publish in a cycle needs a Concurrency of at most its number of
	// consumers for the bus to keep the cycle from deadlocking: see the package
	// documentation, Handlers that publish.
	Concurrency int

	// Retry says when a nacked message is redelivered and how often before it is given up
	// and dead-lettered. The default, nil, is [DefaultRetry]: at once and without limit,
	// as Watermill's gochannel does.
	Retry *eventbus.RetryPolicy

	// DeadLetter receives the messages a subscription gives up on: its retry attempts ran
	// out, or the PubSub (or the subscription of a single Subscribe call) closed before the
	// message was acked. [MessageOf] turns one back into a Watermill message, and
	// [PoisonQueue] publishes them to a topic. The default, nil, is the bus's hook.
	DeadLetter eventbus.DeadLetterHandler

	// PoisonTopic, if set, is the topic of this PubSub that the messages a subscription
	// gives up on are published to, with the metadata that says why (see [PoisonQueue]),
	// as Watermill's PoisonQueue middleware does. It replaces DeadLetter; setting both is
	// an error.
	PoisonTopic string

	// CloseTimeout is how long closing a subscriber waits for the messages in flight to be
	// acked or nacked once their contexts are cancelled: a message acked in time counts as
	// handled; one that is not is redelivered (or dead-lettered if its subscription ends).
	// The default is 30s, the Watermill Router's default CloseTimeout.
	CloseTimeout time.Duration

	// BlockPublishUntilSubscriberAck makes Publish return only once every subscription of
	// the topic has acked the message or given up on it, as with gochannel's option of that
	// name; the errors of those that gave up are returned, joined.
	BlockPublishUntilSubscriberAck bool
}

// KeyMetadata is the metadata field [DefaultKey] takes a message's ordering key from: the
// name of CloudEvents' partitioning extension, the attribute that carries an event's key
// across brokers.
const KeyMetadata = "partitionkey"

// DefaultKey is the default [Config.Key]: the metadata field [KeyMetadata] if the message
// has it, or else the topic. So messages without a key are delivered in publish order,
// one at a time, like those of a single-partition topic; give them keys to let a consumer
// group work on several at once.
func DefaultKey(topic string, msg *message.Message) string {
	if k := msg.Metadata.Get(KeyMetadata); k != "" {
		return k
	}
	return topic
}

// DefaultRetry is the default [Config.Retry]: a nacked message is redelivered at once (the
// bus's shortest backoff, 1ns) and without limit, so it is never dead-lettered for its
// nacks. Watermill's gochannel, Kafka and AMQP Pub/Subs redeliver this way; Router
// middleware such as Retry and PoisonQueue then decide when to stop. Set a policy of your own to have the bus wait
// between redeliveries and dead-letter a message after its attempts: see the README.
var DefaultRetry = eventbus.RetryPolicy{
	MaxAttempts:    math.MaxInt,
	InitialBackoff: time.Nanosecond,
	MaxBackoff:     time.Nanosecond,
	Jitter:         -1,
}

const defaultCloseTimeout = 30 * time.Second

// withDefaults returns c with its zero fields set to their defaults. It panics, naming the
// field, if a field is invalid: a programmer error caught when the PubSub is made.
func (c Config) withDefaults() Config {
	switch {
	case c.Buffer < 0:
		panic(fmt.Sprintf("watermillbus: Config.Buffer must be >= 0, got %d", c.Buffer))
	case c.Concurrency < 0:
		panic(fmt.Sprintf("watermillbus: Config.Concurrency must be >= 0, got %d", c.Concurrency))
	case c.CloseTimeout < 0:
		panic(fmt.Sprintf("watermillbus: Config.CloseTimeout must be >= 0, got %v", c.CloseTimeout))
	case c.PoisonTopic != "" && c.DeadLetter != nil:
		panic("watermillbus: Config.PoisonTopic and Config.DeadLetter are both set")
	}
	if c.Key == nil {
		c.Key = DefaultKey
	}
	if c.Buffer == 0 {
		c.Buffer = eventbus.DefaultBuffer
	}
	if c.Concurrency == 0 {
		c.Concurrency = runtime.GOMAXPROCS(0)
	}
	if c.Retry == nil {
		c.Retry = &DefaultRetry
	} else if err := c.Retry.Validate(); err != nil {
		panic("watermillbus: Config.Retry: " + err.Error())
	}
	retry := *c.Retry // a copy, so that a caller changing its policy later changes nothing here
	c.Retry = &retry
	if c.CloseTimeout == 0 {
		c.CloseTimeout = defaultCloseTimeout
	}
	return c
}
