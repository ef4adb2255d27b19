// Package watermillbus makes an [eventbus.Bus] a Watermill Pub/Sub
// (github.com/ThreeDotsLabs/watermill): a message.Publisher and message.Subscriber that a
// Watermill Router, its middleware and CQRS components use unchanged, in place of
// Watermill's gochannel, with the bus's per-key order, bounded memory, retries and dead
// letters. It passes Watermill's own conformance suite, pubsub/tests.TestPubSub, with the
// features GuaranteedOrder, ExactlyOnceDelivery, ConsumerGroups and Persistent.
//
//	pubSub := gochannel.NewGoChannel(gochannel.Config{}, logger) // before
//	pubSub := watermillbus.New(bus, watermillbus.Config{})      // after
//
// # Messages and events
//
// A Watermill topic is the bus topic of the same name, carrying []byte payloads, so the
// bus's own publishers and subscribers of eventbus.NewTopic[[]byte](topic) exchange
// messages with Watermill's. A message maps onto an event this way:
//
//	message.Message        eventbus.Event[[]byte]
//	UUID                   ID, if the UUID is a canonical non-nil UUID (as watermill.NewUUID
//	                       makes); else a new ID, and the UUID in the metadata field
//	                       UUIDMetadata, removed again on delivery: the UUID arrives exactly
//	Payload                Payload, shared, not copied
//	Metadata               Metadata, copied at publish and again for each delivery
//	Config.Key(topic, msg) Key: the ordering key (by default the metadata field
//	                       "partitionkey", or else the topic)
//	Context()              not carried (as by the Pub/Subs that cross processes): a delivered
//	                       message's context has the values of the bus handler's context,
//	                       then those of the Subscribe context (see Handlers that publish)
//
// # Subscriptions and consumer groups
//
// With the default Config, each Subscribe call gets a subscription of its own on the bus:
// it receives every message published to the topic from then on, as with gochannel, and
// leaves the bus when its channel closes. Subscribe calls that name the same consumer group
// ([Config.ConsumerGroup], [PubSub.NewSubscriber]) share one subscription, each message
// going to one of them, as in a Kafka consumer group; the group outlives its consumers and
// collects messages for the next one, until the PubSub closes. A group's subscription on
// the bus is named [GroupSubscriptionPrefix] and the group (or keeps the name of the
// retention it took over), so it never takes the name of a subscriber of the bus's own. A
// group belongs to its PubSub: on one bus, another PubSub's Subscribe to a group of the
// same name on the same topic returns an error until the first PubSub closes, so make the
// Subscribers that must share a group from one PubSub.
//
// A subscription's channel carries one message at a time: the next comes only once the
// previous was acked or nacked. Ack completes the handling (the bus handler returns nil).
// Nack is a failed attempt under the subscription's retry policy ([Config.Retry]): the
// message is redelivered, by default at once and without limit, as Watermill's Pub/Subs
// do; with a policy of your own, it waits out the policy's backoff, and once its attempts
// run out it goes to the dead-letter hook ([Config.DeadLetter], [PoisonQueue]).
//
// # Ordering
//
// For each subscription, messages with the same key, published from one goroutine, are
// delivered in publish order, one at a time: the next only once the previous was acked
// (or dead-lettered), with a nacked message redelivered first. Messages without a key in
// their metadata take the topic as key (see [DefaultKey]), so by default a topic is one
// ordered stream, like a single-partition topic; keys let a consumer group's consumers work
// on different keys at once. A Config.Key that returns "" gives up ordering for a message.
//
// # Retention
//
// The bus delivers a message to the subscriptions that exist when it is published. With
// [Config.Retain], a topic that has no subscription of the PubSub keeps its messages, up to
// [Config.Buffer] of them, for its next Subscribe call; beyond that Publish waits. If a
// topic's last subscription of the PubSub is a single Subscribe call's, it stays on the bus
// as the retention when its channel closes, keeping what it holds for the next call, so
// that every message ends acked, dead-lettered or retained, however subscribers come and
// go.
//
// # Handlers that publish
//
// The bus keeps handlers that publish from deadlocking one another on full subscriptions,
// even in a cycle (X publishing to Y, Y to X), provided it recognizes their Publish calls
// as made by its handlers: see eventbus.Publish. A Watermill handler takes part if the
// messages it publishes carry the context of the message it handles, or one derived from
// it: CQRS handlers that publish with the context they are given do; a Router handler's
// produced messages do if the handler sets it (out.SetContext(msg.Context())) or the
// Router has the [PropagateContext] middleware, for the Router publishes them with the
// contexts they have, new ones by default. What remains:
//
//   - A cycle of handlers whose messages do not carry it blocks once its subscriptions are
//     full, each Publish waiting for room, until the messages' contexts end (for messages
//     made by NewMessage, until the PubSub closes). Watermill's gochannel does not block
//     there: it starts a goroutine per message and subscriber instead, without bound.
//   - The bus counts a subscription as stalled only when every worker of it that holds a
//     message is blocked in a Publish. A worker of a consumer group waiting for a free
//     consumer is not, so a group with fewer consumers than its [Config.Concurrency] can
//     still block in a cycle once messages of more keys than consumers wait. Give a group
//     in a cycle a Concurrency of at most its number of consumers. A single Subscribe
//     call's subscription has one worker, except with [Config.Retain].
//
// # Closing
//
// A subscription's channel closes when its Subscribe context ends or its Subscriber or
// PubSub closes. The messages then in flight have their contexts cancelled and
// [Config.CloseTimeout] to be acked or nacked. [PubSub.Close] then removes every
// subscription from the bus, dead-lettering what they still hold, and returns once no
// goroutine of the PubSub is left. Close the PubSub before the bus.
package watermillbus
