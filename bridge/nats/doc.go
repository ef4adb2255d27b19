// Package natsbridge connects an eventbus.Bus to NATS JetStream, so that events published in
// one process are handled, typed and in order per key, by the buses of others.
//
//	import natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
//
//	// The shop forwards its orders ...
//	shop, err := natsbridge.Connect(ctx, shopBus, natsbridge.Config{URL: url},
//		natsbridge.Forward(orderPlaced))
//	// ... and every warehouse process receives them: subscribe first, then connect.
//	eventbus.Subscribe(warehouseBus, orderPlaced, "picking", pick)
//	wh, err := natsbridge.Connect(ctx, warehouseBus, natsbridge.Config{URL: url},
//		natsbridge.Receive(orderPlaced))
//	defer wh.Close(ctx)
//
// Events travel as CloudEvents 1.0 in binary mode (package
// github.com/ae30fb47/eventbus/cloudevents): attributes in "ce-" headers, the payload as
// JSON (or as is, for a []byte payload) in the body. An event of topic T with key k is
// published to the subject "<prefix>.<p>.T" of partition p = [Partition](k, N).
//
// # Forwarding
//
// [Forward] subscribes to a topic on the local bus. Its handler publishes each event with
// Nats-Msg-Id set to the event ID and returns once JetStream acknowledged it (the event is
// then stored in the stream). A failed publish (server down, no ack within
// Config.PublishTimeout) is an ordinary failed attempt: the subscription retries it with
// Config.PublishRetry, and the stream stores it once thanks to Nats-Msg-Id if the retries
// end within the stream's Duplicates window. When the retries run out, the event goes to
// the dead-letter hook (Config.DeadLetter or the bus's), never silently away. Events
// that cannot be encoded (a Metadata value that is not valid UTF-8, for instance) or that
// exceed the server's max_payload are dead-lettered at once. Each outbound dead letter
// counts in Stats.ForwardDeadLetters by reason and is logged (see [Forward]).
//
// The bridge's connection keeps no reconnect buffer, so a publish while it is down fails
// at once: the default PublishRetry rides out 57 to 71 seconds of outage (the sum of its
// waits), and a dead-lettered event is not sent later, when the connection comes back. It
// may still be in the stream only if one of its publishes reached the server and the
// acknowledgement was lost (a timeout): a dead letter on the way out means "not
// acknowledged", which at-least-once cannot turn into "surely not stored".
//
// An event accepted by the local bus but not yet forwarded lives in the process's memory:
// [Bridge.Close] forwards it first, but a crash loses it.
//
// # Receiving
//
// [Receive] feeds the bus with a topic's events from the stream, through one durable pull
// consumer per partition ("<Group>-<p>"), shared by every bridge of the same Group, with
// MaxAckPending 1. Each event is published on the local bus with its ID, time, key,
// metadata and source, [eventbus.WithWait] and [eventbus.WithSubscriberRequired]; the
// bridge then settles the delivery:
//
//   - every local subscriber handled it: ack;
//   - the topic has no local subscriber (none yet, or the last one just left): not acked,
//     but NakWithDelay(Config.Retry.Backoff(count)) while the delivery count is below
//     Config.Retry.MaxAttempts, and on the last attempt dead-lettered as
//     [ReasonNoSubscribers]. So subscribe before Connect: a bridge connected first
//     receives the stream's backlog at once, and each event it finds without a
//     subscriber spends an attempt;
//   - a subscriber dead-lettered it locally (its own retries ran out), and the delivery
//     count is below Config.Retry.MaxAttempts: NakWithDelay(Config.Retry.Backoff(count)),
//     so the server redelivers it after that delay;
//   - the same on the last attempt ([ReasonFailed]), or a subscriber returned an
//     [eventbus.Permanent] error on any attempt ([ReasonPermanent]): the event is published
//     to the dead-letter subject "<prefix>.deadletter.<p>.T" with the original headers and
//     body plus [HeaderReason], [HeaderError], [HeaderAttempts], [HeaderSubject] and
//     [HeaderSequence], then terminated;
//   - it does not decode (not a CloudEvent, malformed JSON, a missing id, a specversion other
//     than 1.0, over Config.MaxEventBytes, data that does not fit the payload type):
//     dead-lettered at once as [ReasonInvalid]; no handler sees it;
//   - its type is not one this bridge receives: NakWithDelay like a failure while
//     attempts remain, so that another bridge of the Group that receives it takes it (see
//     Rolling deploys), then dead-lettered as [ReasonInvalid];
//   - it was delivered more often than Config.Retry.MaxAttempts, each time without an
//     outcome (a bridge crashed while handling it): dead-lettered as [ReasonUndelivered];
//   - the bridge or the bus is closing: Nak without delay, so another bridge takes it.
//     Once the bus is closed, the bridge stops fetching.
//
// A dead letter carries the original headers and body. One that would be over the
// server's max_payload (the original within it, plus the bridge's headers) leaves out the
// body, and if need be the original headers too, and says so in [HeaderOmitted]; the
// original stays in the stream at [HeaderSequence] (under the default limits retention).
// A dead-letter publish that fails (the server down, the stream full, no permission to
// publish on the dead-letter subjects) is retried with Config.PublishRetry's waits while
// the server is told that the event is still in progress. When those attempts are spent,
// the event is terminated without a dead letter, counted in [Stats].Dropped and logged at
// Error with its stream and sequence, where it can still be read: its partition must not
// wait for ever. That is the only way a received event ends without a handler's success
// or a dead letter. If an ack is lost, the server redelivers the event after AckWait.
//
// JetStream counts deliveries, not failures: a delivery handed back by a closing bridge,
// or one whose ack was lost, counts as an attempt too. Leave Config.Retry.MaxAttempts some
// room over the failures you mean to tolerate if bridges restart often.
//
// # Rolling deploys
//
// The bridges of a Group share its consumers, and the consumers filter on the topics that
// the last bridge to connect receives. When a new version adds a Receive route, its first
// bridge widens the filter, and the bridges of the old version then fetch events of the
// new topic too: they hand them back with the retry policy's delays, until a new bridge
// takes them. Give Config.Retry room for that: with k bridges sharing the Group, one of
// them new, each delivery reaches an old one with a chance of about (k-1)/k.
//
// The reverse loses events: a bridge that connects with fewer received topics than its
// Group had narrows the filter, and the consumers then skip, for good, the events of the
// dropped topics that reach the stream until a bridge widens it again. Do not start a
// bridge of the old version (a rollback, a restart) while the new one runs; to stop
// receiving a topic, remove its route from every bridge of the Group.
//
// # Two levels of retry
//
// A subscriber's own [eventbus.RetryPolicy] retries inside one delivery, in process; the
// bridge's Config.Retry redelivers through the broker, which survives crashes and may pick
// another process. A handler that keeps failing is therefore called up to (its
// MaxAttempts) × (Config.Retry.MaxAttempts) times, and its local dead-letter hook is
// called once per failed delivery, with DeadLetter.Attempts counting the local attempts
// only: the final word is the dead letter on the dead-letter subject. Subscribers of
// received topics usually want few local attempts, a quiet local hook
// (eventbus.DiscardDeadLetters or a log), and the broker's retries.
//
// A redelivery goes to every local subscriber of the topic, also to those that had
// already handled the event. Give them [eventbus.WithDeduplication] with a window longer
// than the whole retry schedule: a repeat is then skipped, while a subscriber that had
// dead-lettered it (whose ID de-duplication forgets) handles it again. De-duplication is
// per process: a redelivery that lands on another process is handled there. Delivery is
// at least once, end to end.
//
// # Ordering
//
// For each Group, the events of one key are delivered in the order of the stream, one at
// a time, across every bridge of the Group, retries and redeliveries included: a
// partition has at most one event in flight, and its next event is delivered only once
// the previous one was acked, dead-lettered or dropped. So they are also handled one at a
// time and in that order, except when a bridge gives up an event that its local handler
// may still be running:
//
//   - [Bridge.Close] whose ctx ends hands back the events still being handled, for
//     redelivery a second later;
//   - a bridge cut off from the server for longer than AckWait while a handler runs
//     cannot report progress, so the server redelivers the event after AckWait.
//
// In both cases another bridge (or the same one, later) receives the event and then the
// next events of its partition while the first handler may not have returned: the event
// is handled twice, the two handlings may overlap, and a later event of its key may be
// handled before the first handling ends. A handler merely slower than AckWait, on a live
// connection, causes none of this: the progress reports keep its delivery. A lost ack is
// harmless to order too: the event stays pending until AckWait and is redelivered before
// anything after it.
//
// The stream holds a key's events in the order the forwarding bus handed them to its
// forwarding subscription (for events published from one goroutine, the publish order),
// since that subscription publishes a key's events one at a time and waits for each ack.
// A forwarded event that is dead-lettered on the way out leaves a gap, not a reordering.
// Events of one key published on different buses have no order between them, and events
// without a key are spread over the partitions by ID with no order promise.
//
// The price is head-of-line blocking: while an event waits for its redelivery delay, its
// whole partition waits (the in-process bus holds only the key). Config.Partitions bounds
// the parallelism of a Group: at most N events are handled at once, whatever the number of
// bridges.
//
// After a consumer restart the durable consumer resumes where its Group left off: nothing
// acked is delivered again. [Bridge.Close] hands back what its last pulls bring, for
// immediate redelivery, each with one delivery more on its count; a bridge that crashed leaves its in-flight event
// pending until AckWait passes, and that event is then redelivered before any later event
// of its partition, so order still holds, but it may have been handled already.
//
// # Durability
//
// JetStream acknowledges a publish once the event is stored, in a file by default. A
// single server writes it to the file at once but makes the operating system flush it to
// disk only every sync_interval (2 minutes by default): a crash of the server's host (not
// of the server process) can lose events acknowledged in that interval. For durability on
// one server, set "sync_interval: always" in the server's jetstream configuration, at a
// cost in throughput; a cluster with Replicas 3 acknowledges once a majority stored the
// event.
//
// # Requirements
//
// NATS server 2.9 or later; 2.10 or later when a bridge receives more than one topic (its
// consumers filter on several subjects): on 2.9, Connect refuses several received topics,
// naming the version. Before 2.10.4 the bridge terminates a dead-lettered event without a
// reason (those servers ignore a term that carries one). CI runs the bridge's suite against
// the embedded server of go.mod and against nats-server 2.9.10.
package natsbridge
