// Package eventbus is an in-process event bus: publishers send typed events to topics, and
// every subscriber of a topic handles each event on its own goroutines, in order per key,
// with retries and a dead-letter hook. Nothing accepted is lost silently.
//
//	var orderCreated = eventbus.NewTopic[Order]("order.created")
//
//	bus := eventbus.New()
//	defer bus.Close(ctx)
//
//	eventbus.Subscribe(bus, orderCreated, "inventory", func(ctx context.Context, ev eventbus.Event[Order]) error {
//		return reserveStock(ctx, ev.Payload)
//	})
//	err := eventbus.Publish(ctx, bus, orderCreated, order, eventbus.WithKey(order.ID))
//
// A [Topic] carries the payload type, so publishers and subscribers agree on it at compile
// time, and the bus moves payloads without reflection or boxing. Each handler receives an
// [Event] envelope: an ID (a time-ordered UUIDv7), the topic as Type, the bus's Source, the
// Time of publishing, the ordering Key, the Payload and string Metadata.
//
// # Delivery
//
// [Publish] returns once every subscriber of the topic has accepted the event. From then on,
// for each subscriber, the event ends in exactly one of two ways: its handler returns nil
// (handled), or the subscriber gives up and passes it to the dead-letter hook
// (dead-lettered). It is never dropped silently and never handled twice after a success.
// A handler that returns an error is retried, so it may see an event more than once.
//
// Subscribers are isolated from each other: each has its own buffer and workers, and a slow
// or failing subscriber does not delay another while its own buffer has room.
//
// # Ordering
//
// For each subscriber, events with the same non-empty key (see [WithKey]) published from
// one goroutine are handled in publish order, one at a time, retries included: the next
// event of a key starts only once the previous one was handled or dead-lettered. Events with
// different keys run in parallel, up to the subscriber's concurrency ([WithConcurrency],
// default GOMAXPROCS). Events without a key carry no ordering promise. Events published from
// different goroutines are ordered as they reach each subscriber.
//
// A subscriber's workers are woken as work needs them: a publisher wakes one when all are
// idle, and an idle worker joins busy ones when they have not come back for more events
// within a tick of the bus clock (100µs), that is, when their handlers are slow. A worker
// with fast handlers drains a backlog alone, faster than two would contending for it.
//
// A key waiting for a retry holds up only its own later events: workers take any other
// ready event meanwhile, even with a concurrency of 1. This is the model of Confluent's
// parallel consumer, and unlike a partition, it stops one poison event from stalling
// unrelated keys.
//
// # Retries and dead letters
//
// A handler attempt fails if it returns an error or panics; a panic is recovered into a
// [*PanicError] with the stack, and the worker survives. A failed event waits out a backoff
// from its [RetryPolicy] ([WithRetry]; the zero policy makes 3 attempts, 100ms and 200ms
// apart, with jitter), off the worker, and is tried again. When attempts run out, when the
// handler returns a [Permanent] error, or when the bus stops before the event could be
// handled, the event goes to the subscription's [DeadLetterHandler] ([WithDeadLetter]), or
// the bus default, which logs it with log/slog at level Error. [DeadLetter] tells which
// subscriber gave up, after how many attempts, and why.
//
// # Protections
//
// Options guard a subscription against handlers that misbehave: [WithDeduplication] skips
// repeated event IDs within a window, with bounded memory; [WithHandlerTimeout] cancels an
// attempt that runs too long and counts it as failed; [WithCircuitBreaker] pauses a
// subscription whose handler keeps failing, then probes (see [Subscription.Circuit]); and
// [WithMiddleware] wraps every attempt in the user's own [Middleware], which sees a
// [Delivery]. They apply in that order, outermost first, around panic recovery, the
// middleware and the handler.
//
// # Backpressure
//
// Each subscriber holds at most its buffer's worth of accepted, unfinished events
// ([WithBuffer], default [DefaultBuffer]): queued, waiting to retry or being handled. When a
// buffer is full, Publish blocks until there is room or its ctx ends, and then returns
// ctx.Err(). So memory stays bounded however fast publishers go. A fan-out is all or
// nothing: when Publish returns an error, no subscriber received the event.
//
// A publisher never holds room in one subscriber while it waits for another: it takes room
// in all of them at once, or, while one is full, in none. Handlers may publish, and should
// do so with the ctx they were given: a chain of topics under full buffers then simply
// waits down the chain, and a cycle (A's handler publishes to B while B's publishes to A)
// does not deadlock, because a subscriber whose every busy worker is itself blocked
// publishing (or waiting with WithWait), and that no idle worker can make progress in,
// takes handlers' events over its buffer.
//
// [WithWait] makes Publish wait: it returns once every subscriber has handled or
// dead-lettered the event, with their errors joined. For a command with an answer, a
// [RequestTopic] has one handler ([Handle]) whose result [Request] returns, with the
// caller's deadline and cancellation on the handler's ctx, and the subscription's retries
// and dead letters as for any subscriber.
//
// # Errors
//
// One rule for bad arguments, in this package and its modules: a function that returns an
// error reports them with it, as [Subscribe] does for every option given to it (a nil
// handler, WithConcurrency(0), WithDeadLetter(nil)), Subscribe, [Publish], [Handle] and
// [Request] for a nil bus, and natsbridge.Connect for a nil bus too;
// one that returns none panics at once with a message that starts with its package's
// name: [New] for a nil or invalid option, [NewTopic] for an empty name, [HTTPHandler]
// for a nil bus, watermillbus.New for a nil bus. Those are programmer errors, caught at
// start-up. Nothing panics later, on an event.
//
// # Correlation
//
// A handler that publishes with the ctx it was given publishes a consequence of the event it
// handles: the new event's Metadata gets [CorrelationIDKey] ("correlationid"), the
// correlation ID of the handled event or, if it had none, that event's ID, and
// [CausationIDKey] ("causationid"), the handled event's ID, unless the publisher set them
// itself; so do a dead-letter hook's publishes. Every event of a chain thus names the one
// that began it and its parent, across buses and, both being CloudEvents extension names,
// across every bridge; the otel module puts them on spans. The handler's goroutines may
// publish with its ctx while it runs. As with an http.Request's ctx, do not use it once
// the handler has returned: the worker then reuses it for another event, which a late
// Publish would name as its parent (and -race reports the race); a goroutine that outlives
// its handler takes ev.ID and ev.Metadata with it, and publishes with a ctx of its own and
// the two keys in [WithMetadata].
// The cost is the Metadata map of the new event (2 allocations; see docs/PERFORMANCE.md).
//
// # Shutdown
//
// [Bus.Close] works like http.Server.Shutdown. Publish and Subscribe return [ErrClosed]
// from then on (handlers may still publish, so that chains finish); accepted events are
// still handled, with their retries; then the workers exit and Close returns nil. If Close's
// ctx ends first, handlers' contexts are cancelled, retry waits end, and every event not yet
// handled is dead-lettered with an error wrapping ErrClosed; Close returns ctx.Err() once
// the running handlers have returned. No goroutine of the bus outlives Close.
// [Subscription.Close] removes and drains one subscriber the same way.
//
// # Observability
//
// [Bus.Stats] and [Subscription.Stats] return counters that are always kept: events
// published per topic; per subscription, events delivered, handled, duplicates skipped,
// failed attempts, retries, dead letters, events in flight and queued against the buffer's
// capacity, the circuit's state, and p50/p95/p99 of handler latency (timed on one attempt in
// 64, over the last minute or two). [Bus.Health] judges each subscription by a
// [HealthPolicy] (a buffer that stays nearly full, an open circuit, too many dead letters),
// and [Bus.Ready] gives its verdict as an error, for a readiness probe. Stats and Health
// marshal to readable JSON, and [HTTPHandler] serves them, with a readiness endpoint, in
// the manner of expvar.
//
// The bus logs through log/slog ([WithLogger]): dead letters and failing hooks at Error, a
// Close cut short at Warn, circuit changes at Warn and Info, and subscriptions, retries and
// a clean Close at Debug; never anything per handled event. Tracing and metrics plug in
// through middleware: [WithMiddleware] given to [New] wraps every handler attempt, and
// [WithPublishMiddleware] every Publish, with a [Publication] whose Metadata carries trace
// context to the handlers (see the otel module).
//
// # Performance
//
// Publishers hand events to each subscriber through a lock-free ring: reserving room,
// claiming a cell and publishing it are three atomic operations (a fourth counts the event
// for Stats on the same cache line), and the lock is taken only to wait for room or to
// wake a sleeping worker. Workers take events in batches sized by the backlog (one at a time when there is none, so a slow handler holds up no other event; up
// to 16 under a backlog, where the events after a slow one in its batch wait for it while
// the other workers take the rest) and take the subscription's lock once per batch. A
// publisher wakes a worker only when all of them sleep; when events wait behind busy
// workers, the bus clock wakes an idle one on its next tick if none has taken an event
// since, so idle workers join slow handlers within about 100µs and stay asleep behind fast
// ones. A steady stream allocates nothing per event: no boxing, options passed by value,
// metadata copied only when given.
//
// Reading the system clock for every event cost a third of the end-to-end time on a KVM
// guest, so while a bus publishes, a ticker goroutine reads the clock every 100µs and events
// take the time of the last tick: Event.Time is accurate to about 100µs, and IDs made within
// one tick are ordered by their random bits, which come from the runtime's per-thread
// generator (no lock, no system call). The ticker stops when the bus has been idle for 100ms
// and at Close.
//
// The README has the measured cost of one event, from Publish to the end of its handler,
// side by side with other Go buses and with the machine it was measured on, and
// docs/PERFORMANCE.md explains where the time goes. Run the in-package benchmarks with
//
//	go test -run '^$' -bench . -benchmem
package eventbus
