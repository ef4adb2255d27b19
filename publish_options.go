package eventbus

import (
	"time"

	"github.com/google/uuid"
)

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
// A handler that publishes WithWait waits on its own worker, and counts meanwhile as
// blocked in a Publish: the handlers that its outcome depends on may publish back into its
// subscription even when it is full (see [Publish]). But the wait must not depend on a
// free worker of its own subscription: on an event that its own subscription has to
// handle (with concurrency 1 it never would be), nor one with its own key.
func WithWait() PublishOption { return PublishOption{set: fieldWait} }

// WithID sets the event's ID instead of a new UUIDv7, as when re-publishing an event that
// came from a broker. uuid.Nil means "make one".
func WithID(id uuid.UUID) PublishOption { return PublishOption{set: fieldID, id: id} }

// WithTime sets the event's Time instead of the time of the Publish call: t as it is, the
// zero Time included, as an event received from a broker may carry 0001-01-01T00:00:00Z.
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
	timeSet  bool // WithTime was given: time is the Time, even if zero
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
	return c.id == uuid.Nil && !c.timeSet && c.source == "" && !c.wait
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
			c.time, c.timeSet = o.time, true
		case fieldSource:
			c.source = o.key
		case fieldRequired:
			c.required = true
		}
	}
}
