package eventbus

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/uuid"
)

// An Option configures a [Bus] in [New].
type Option interface{ applyBus(*busConfig) }

// A SubscribeOption configures one subscription in [Subscribe].
type SubscribeOption interface{ applySubscribe(*subscribeConfig) }

type busConfig struct {
	source     string
	logger     *slog.Logger
	deadLetter DeadLetterHandler
	middleware []Middleware
	publishMW  []PublishMiddleware
	health     HealthPolicy
}

func defaultBusConfig() busConfig {
	health, _ := HealthPolicy{}.withDefaults()
	return busConfig{source: programName(), logger: slog.Default(), health: health}
}

// programName is the default Source: the base name of the running program.
func programName() string {
	if len(os.Args) > 0 && os.Args[0] != "" {
		return filepath.Base(os.Args[0])
	}
	return "eventbus"
}

type busOption func(*busConfig)

func (f busOption) applyBus(c *busConfig) { f(c) }

// WithSource sets the Source of every event the bus publishes; the default is the program's
// name. It panics if source is empty.
func WithSource(source string) Option {
	if source == "" {
		panic("eventbus: WithSource: source must not be empty")
	}
	return busOption(func(c *busConfig) { c.source = source })
}

// WithLogger sets the logger the bus reports to: dead letters (by the default hook) and
// failures of dead-letter hooks at level Error. The default is slog.Default(). Nothing is
// logged per event below level Error. It panics if l is nil.
func WithLogger(l *slog.Logger) Option {
	if l == nil {
		panic("eventbus: WithLogger: logger must not be nil")
	}
	return busOption(func(c *busConfig) { c.logger = l })
}

// DeadLetterOption is both an [Option] and a [SubscribeOption]; see [WithDeadLetter].
type DeadLetterOption struct{ h DeadLetterHandler }

func (o DeadLetterOption) applyBus(c *busConfig)             { c.deadLetter = o.h }
func (o DeadLetterOption) applySubscribe(c *subscribeConfig) { c.deadLetter = o.h }

// WithDeadLetter sets the hook that receives the events a subscriber gives up on. Given to
// [Subscribe] it applies to that subscription; given to [New] it is the default of every
// subscription that sets none. Without either, dead letters are logged. It panics if h is
// nil; use [DiscardDeadLetters] to drop them.
func WithDeadLetter(h DeadLetterHandler) DeadLetterOption {
	if h == nil {
		panic("eventbus: WithDeadLetter: handler must not be nil")
	}
	return DeadLetterOption{h}
}

type subscribeConfig struct {
	concurrency int
	buffer      int
	retry       RetryPolicy
	deadLetter  DeadLetterHandler
	middleware  []Middleware
	timeout     time.Duration
	dedupWindow time.Duration
	dedupMax    int

	breakerFailures int
	breakerCoolDown time.Duration

	err error // the first invalid option
}

// DefaultBuffer is the buffer capacity of a subscription that sets none with [WithBuffer].
const DefaultBuffer = 1024

func defaultSubscribeConfig() subscribeConfig {
	return subscribeConfig{concurrency: runtime.GOMAXPROCS(0), buffer: DefaultBuffer}
}

func (c *subscribeConfig) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

type subscribeOption func(*subscribeConfig)

func (f subscribeOption) applySubscribe(c *subscribeConfig) { f(c) }

// WithConcurrency sets how many events the subscription handles at once, each on its own
// worker goroutine; the default is runtime.GOMAXPROCS(0). Events with the same key are still
// handled one at a time. [Subscribe] returns an error if n < 1.
func WithConcurrency(n int) SubscribeOption {
	return subscribeOption(func(c *subscribeConfig) {
		if n < 1 {
			c.fail(fmt.Errorf("eventbus: WithConcurrency: n must be > 0, got %d", n))
		}
		c.concurrency = n
	})
}

// WithBuffer sets how many accepted events the subscription holds before [Publish] blocks:
// queued, waiting to retry, or being handled. The default is [DefaultBuffer]. [Subscribe]
// returns an error if n < 1.
func WithBuffer(n int) SubscribeOption {
	return subscribeOption(func(c *subscribeConfig) {
		if n < 1 {
			c.fail(fmt.Errorf("eventbus: WithBuffer: n must be > 0, got %d", n))
		}
		c.buffer = n
	})
}

// WithRetry sets the subscription's retry policy; without it the zero [RetryPolicy] (the
// default policy) applies. [Subscribe] returns an error for an invalid policy.
func WithRetry(p RetryPolicy) SubscribeOption {
	return subscribeOption(func(c *subscribeConfig) { c.retry = p })
}

// A PublishOption configures one [Publish] call. It is a small value, so passing options
// costs no allocation; make them with [WithKey], [WithMetadata], [WithWait], [WithID],
// [WithTime] and [WithEventSource]. When an option is given twice, the last one wins.
type PublishOption struct {
	set  publishField
	key  string // the key, or the source for fieldSource
	md   Metadata
	id   uuid.UUID
	time time.Time
}

type publishField uint8

const (
	fieldKey publishField = 1 << iota
	fieldMetadata
	fieldWait
	fieldID
	fieldTime
	fieldSource
	fieldRequired
)

// WithKey sets the event's ordering key. For each subscriber, events with the same
// non-empty key published from one goroutine are handled one at a time, in publish order,
// retries included. Events with different keys, or without a key, run in parallel.
func WithKey(key string) PublishOption { return PublishOption{set: fieldKey, key: key} }

// WithMetadata sets the event's Metadata to a copy of md, so the caller may change md once
// Publish has returned. An empty md leaves Metadata nil.
func WithMetadata(md Metadata) PublishOption { return PublishOption{set: fieldMetadata, md: md} }

// WithWait makes [Publish] return only when every subscriber has handled the event or
// dead-lettered it, with their final errors (each a [*DeliveryError]) joined. If the
// Publish ctx ends first, Publish returns an error wrapping ctx.Err(); the event was
// accepted all the same and is still delivered.
//
// A handler that publishes WithWait waits on its own worker: it must not wait for an event
// that its own subscription has to handle (with concurrency 1 it never would be), nor one
// with its own key.
func WithWait() PublishOption { return PublishOption{set: fieldWait} }

// WithID sets the event's ID instead of a new UUIDv7, as when re-publishing an event that
// came from a broker. uuid.Nil means "make one".
func WithID(id uuid.UUID) PublishOption { return PublishOption{set: fieldID, id: id} }

// WithTime sets the event's Time instead of the time of the Publish call. The zero time
// means "now".
func WithTime(t time.Time) PublishOption { return PublishOption{set: fieldTime, time: t} }

// WithSubscriberRequired makes [Publish] return [ErrNoSubscribers] when the topic has no
// subscriber to accept the event (none subscribed, or every one was removed while Publish
// ran), instead of dropping it and returning nil: for bridges and other publishers that
// must not consider an event delivered that went nowhere, like a message published as
// mandatory in AMQP.
func WithSubscriberRequired() PublishOption { return PublishOption{set: fieldRequired} }

// WithEventSource sets the event's Source instead of the bus's (see [WithSource]), as when
// re-publishing an event that came from a broker. The empty string means "the bus's".
func WithEventSource(source string) PublishOption {
	return PublishOption{set: fieldSource, key: source}
}

// publishConfig is the merged result of a Publish call's options.
type publishConfig struct {
	key      string
	source   string
	md       Metadata
	id       uuid.UUID
	time     time.Time
	wait     bool
	required bool // see WithSubscriberRequired

	// Set by publish middleware (see publishThrough): the envelope's time and random bits
	// were drawn already, and md is a copy the publish owns.
	stamped bool
	ownMD   bool
	nanos   int64
	rnd     uint64
}

// noSubscribers is Publish's result for an event that no subscriber accepted.
func (c *publishConfig) noSubscribers() error {
	if c.required {
		return ErrNoSubscribers
	}
	return nil
}

// stamp returns the time and random bits of the event's envelope: those drawn for publish
// middleware, or new ones.
func (c *publishConfig) stamp(b *Bus) (nanos int64, rnd uint64) {
	if c.stamped {
		return c.nanos, c.rnd
	}
	return b.stamp()
}

// metadata returns the event's Metadata: a copy of the caller's, or nil if empty.
func (c *publishConfig) metadata() Metadata {
	if c.ownMD {
		return c.md
	}
	return c.md.clone()
}

// compact reports whether an intake record can carry the event: no supplied ID, time or
// source, and no waiter.
func (c *publishConfig) compact() bool {
	return c.id == uuid.Nil && c.time.IsZero() && c.source == "" && !c.wait
}

func (c *publishConfig) apply(opts []PublishOption) {
	for i := range opts {
		o := &opts[i]
		switch o.set {
		case fieldKey:
			c.key = o.key
		case fieldMetadata:
			c.md = o.md
		case fieldWait:
			c.wait = true
		case fieldID:
			c.id = o.id
		case fieldTime:
			c.time = o.time
		case fieldSource:
			c.source = o.key
		case fieldRequired:
			c.required = true
		}
	}
}
