package eventbus

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"
)

// Publication is an event on its way through [Publish], as publish middleware sees it: its
// envelope, complete but for the payload, which [Publication.Payload] returns.
//
// Middleware may change Metadata, a copy of the publisher's that this Publish owns (never
// nil): what it holds when the innermost [PublishFunc] runs is the event's Metadata. That
// is how a tracer carries its context to the handlers. The other fields are read-only. A
// Publication must not be kept once the middleware has returned.
type Publication struct {
	ID       uuid.UUID
	Type     string // the topic
	Source   string
	Time     time.Time
	Key      string
	Metadata Metadata
	Wait     bool // the publisher passed WithWait

	send publicationSender
}

// Payload returns the event's payload; the conversion to any allocates for most payload
// types, so call it only when needed.
func (p *Publication) Payload() any { return p.send.payloadAny() }

// PublishFunc publishes a [Publication]: the rest of [Publish], once middleware calls it.
// It returns Publish's result.
type PublishFunc func(ctx context.Context, p *Publication) error

// PublishMiddleware wraps every [Publish] on a bus with code that runs around it: it
// returns a PublishFunc that should call next (or return an error without calling it,
// which Publish then returns, and the event is not published). See [WithPublishMiddleware].
type PublishMiddleware func(next PublishFunc) PublishFunc

// WithPublishMiddleware runs mw around every [Publish] on the bus that gets past its
// argument checks (a zero Topic, a closed bus, a ctx already done, a mismatched payload
// type), whether or not the topic has subscribers: a tracer starts a producer span there
// and puts its context into the event's Metadata. The first middleware is the outermost.
// Publish middleware runs on the publisher's goroutine, with its ctx, and costs each
// Publish a few allocations. It panics if an mw is nil.
func WithPublishMiddleware(mw ...PublishMiddleware) Option {
	for _, m := range mw {
		if m == nil {
			panic("eventbus: WithPublishMiddleware: middleware must not be nil")
		}
	}
	return busOption(func(c *busConfig) { c.publishMW = append(c.publishMW, mw...) })
}

// publicationSender is the typed rest of a Publish that went through middleware.
type publicationSender interface {
	send(ctx context.Context, p *Publication) error
	payloadAny() any
}

// sendPublication is the innermost PublishFunc.
func sendPublication(ctx context.Context, p *Publication) error {
	if p.send == nil {
		return errors.New("eventbus: PublishFunc called with a Publication that Publish did not make")
	}
	return p.send.send(ctx, p)
}

// pendingPublish is what a Publish through middleware still has to do, and the
// Publication that middleware sees, in one allocation.
type pendingPublish[T any] struct {
	p       Publication
	b       *Bus
	ts      *topicState[T]
	topic   string
	payload T
	pc      publishConfig
}

func (q *pendingPublish[T]) payloadAny() any { return visiblePayload(q.payload) }

// send publishes the event with a copy of p's Metadata as it is now, so that what the
// middleware writes to p.Metadata after next returns never reaches the handlers.
func (q *pendingPublish[T]) send(ctx context.Context, p *Publication) error {
	q.pc.md, q.pc.ownMD = p.Metadata.clone(), true
	return publishTo(ctx, q.b, q.ts, q.topic, q.payload, &q.pc)
}

// publishThrough runs Publish through the bus's publish middleware: it draws the
// envelope's time and random bits first, so that middleware sees the ID and time that the
// subscribers will.
func publishThrough[T any](ctx context.Context, b *Bus, topic string, ts *topicState[T], payload T, pc *publishConfig) error {
	q := &pendingPublish[T]{b: b, ts: ts, topic: topic, payload: payload, pc: *pc}
	q.pc.nanos, q.pc.rnd = b.stamp()
	q.pc.stamped = true
	p := &q.p
	*p = Publication{
		ID:       q.pc.id,
		Type:     topic,
		Source:   b.source,
		Time:     q.pc.time,
		Key:      pc.key,
		Metadata: make(Metadata, len(pc.md)+2),
		Wait:     pc.wait,
		send:     q,
	}
	if p.ID == uuid.Nil {
		p.ID = idFrom(q.pc.nanos, q.pc.rnd)
	}
	if !q.pc.timeSet {
		p.Time = time.Unix(0, q.pc.nanos)
	}
	if pc.source != "" {
		p.Source = pc.source
	}
	for k, v := range pc.md {
		p.Metadata[k] = v
	}
	return b.publishChain(ctx, p)
}
