// Package eventbusotel traces and measures an [eventbus.Bus] with OpenTelemetry, through
// the bus's middleware points and its Stats, using only the OpenTelemetry API: the
// application chooses and configures the SDK and exporters.
//
//	import eventbusotel "github.com/ae30fb47/eventbus/otel"
//
//	tracing := eventbusotel.NewTracing()      // the global tracer provider
//	metrics, err := eventbusotel.NewMetrics() // the global meter provider
//	bus := eventbus.New(
//		eventbus.WithPublishMiddleware(tracing.PublishMiddleware()),
//		eventbus.WithMiddleware(tracing.Middleware(), metrics.Middleware()),
//	)
//	reg, err := metrics.Observe(bus)
//
// The names and attributes follow the OpenTelemetry semantic conventions for messaging,
// version 1.43.0 (see [SchemaURL]), where they define one, with messaging.system
// "eventbus".
//
// # Spans
//
// [Tracing.PublishMiddleware] makes a producer span (kind PRODUCER, named
// "publish <topic>") around every Publish, a child of the span in the publisher's ctx, and
// writes its context into the event's Metadata through a TextMapPropagator (W3C Trace
// Context by default: the traceparent and tracestate entries). Metadata travels with the
// event, across a broker too (the cloudevents package maps it to extensions), so the
// consumers of the event connect to the producer span wherever they run.
//
// [Tracing.Middleware] makes a consumer span (kind CONSUMER, named "process <topic>")
// around every handling attempt, retries included. It links to the producer span, as the
// conventions ask of a "process" span, and by default is also its child
// ([ConsumerChildOfProducer]): a request, its publishes and every handler they set off form
// one trace, the view most wanted from an in-process bus, whose handlers usually do part of
// the request's work. With [ConsumerNewTrace], every consumer span is the root of a new
// trace and the link alone leads back: for long-lived or fan-out-heavy flows where one
// trace would grow without bound.
//
// The handler's ctx carries its consumer span, so a publish from a handler makes a producer
// span that is the consumer span's child, and so on down a chain of events:
//
//	POST /orders                           (the application's span)
//	└─ publish order.placed                PRODUCER
//	   ├─ process order.placed  billing    CONSUMER, attempt 1, linked to the publish
//	   └─ process order.placed  inventory  CONSUMER, attempt 1, linked to the publish
//	      └─ publish stock.reserved        PRODUCER
//	         └─ process stock.reserved  notification
//
// A failed attempt ends its span with status Error and an error.type attribute; a panic is
// also recorded as an "exception" event with the panic value and the stack, and then passed
// on to the bus, which recovers it as usual. A Publish that fails ends its producer span
// the same way.
//
// # Span attributes
//
// Producer and consumer spans: messaging.system ("eventbus"), messaging.destination.name
// (the topic), messaging.operation.type ("send" or "process"), messaging.operation.name
// ("publish" or "process"), messaging.message.id (the event's ID) and
// messaging.eventbus.message.key (the ordering key, if any). Consumer spans add
// messaging.consumer.group.name (the subscriber's name) and
// messaging.eventbus.message.delivery_attempt (1 for the first attempt). Failures add
// error.type: "panic", "timeout" (the handler timeout), "permanent" (an error made by
// eventbus.Permanent), "closed" (eventbus.ErrClosed), "canceled", "deadline_exceeded", or
// else the Go type of the error, as "*errors.errorString".
//
// # Metrics
//
// [Metrics.Observe] reports a bus's Stats through observable instruments, read once per
// collection, at no cost to publishing or handling. [Metrics.Middleware] times every
// handling attempt into the messaging.process.duration histogram, which Stats cannot give
// (it keeps sampled quantiles, not a histogram), at the cost of two clock reads and a
// histogram record per attempt. Every metric has the attributes messaging.system and
// messaging.destination.name; those of subscriptions also messaging.consumer.group.name.
//
//	name                                   instrument     unit       from
//	messaging.client.sent.messages         counter        {message}  TopicStats.Published
//	messaging.client.consumed.messages     counter        {message}  Delivered
//	messaging.process.duration             histogram      s          every attempt (middleware)
//	eventbus.subscription.handled          counter        {message}  Handled
//	eventbus.subscription.duplicates       counter        {message}  Duplicates
//	eventbus.subscription.dead_lettered    counter        {message}  DeadLettered
//	eventbus.subscription.failed_attempts  counter        {attempt}  FailedAttempts
//	eventbus.subscription.retries          counter        {attempt}  Retries
//	eventbus.subscription.in_flight        updowncounter  {message}  InFlight
//	eventbus.subscription.queued           updowncounter  {message}  Queued
//	eventbus.subscription.capacity         updowncounter  {message}  Capacity
//	eventbus.subscription.circuit          gauge          1          Circuit, per state
//	eventbus.subscription.latency          gauge          s          Latency, per quantile
//
// messaging.operation.name is "publish" on sent messages and "process" on consumed
// messages and durations; a failed attempt's duration has error.type. The circuit gauge is
// 1 for the current state and 0 for the others, by [CircuitStateKey]; the latency gauge
// reports P50, P95 and P99 by [QuantileKey].
//
// # Costs
//
// Observing Stats costs publishing and handling nothing. The duration middleware costs a
// few hundred nanoseconds per attempt and no allocation; tracing costs what the SDK's spans
// cost, a few microseconds per event when every span is sampled. The README has the
// measured figures.
package eventbusotel
