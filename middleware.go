package eventbus

import (
	"context"
	"time"

	"github.com/google/uuid"
)

// Handler is a subscriber's handler as middleware sees it: untyped, so that one piece of
// cross-cutting code (logging, tracing, metrics) can wrap the handlers of every topic.
type Handler func(ctx context.Context, d *Delivery) error

// Middleware wraps a [Handler] with code that runs around every handling attempt. It
// returns the wrapped handler, which should call next (or return an error without calling
// it, which counts as a failed attempt).
type Middleware func(next Handler) Handler

// WithMiddleware wraps handlers in mw. Given to [Subscribe] it wraps that subscription's
// handler; given to [New] it wraps the handler of every subscription of the bus, outside the
// subscription's own middleware: that is the place for tracing, metrics and logging that
// apply to all handlers. The first middleware is the outermost: WithMiddleware(a, b) runs a,
// which calls b, which calls the handler. Given more than once, the later middleware is
// inside the earlier. Middleware runs once per attempt, inside the bus's own protections,
// which apply in this order, outermost first:
//
//  1. de-duplication ([WithDeduplication]): a repeated event is skipped before any of the
//     following runs;
//  2. the circuit breaker ([WithCircuitBreaker]): no attempt starts while it is open;
//  3. the handler timeout ([WithHandlerTimeout]): the ctx that middleware receives carries it;
//  4. panic recovery: a panic in middleware or handler becomes a [*PanicError];
//  5. the bus's middleware, then the subscription's, each in the order given;
//  6. the handler.
//
// An error returned by middleware counts like one returned by the handler: it is retried
// by the retry policy, then dead-lettered. [Subscribe] returns an error if an mw is nil;
// [New] panics.
func WithMiddleware(mw ...Middleware) MiddlewareOption {
	for _, m := range mw {
		if m == nil {
			return MiddlewareOption{err: errNilMiddleware}
		}
	}
	return MiddlewareOption{mw: mw}
}

// MiddlewareOption is both an [Option] and a [SubscribeOption]; see [WithMiddleware].
type MiddlewareOption struct {
	mw  []Middleware
	err error
}

func (o MiddlewareOption) applyBus(c *busConfig) {
	if o.err != nil {
		panic(o.err.Error())
	}
	c.middleware = append(c.middleware, o.mw...)
}

func (o MiddlewareOption) applySubscribe(c *subscribeConfig) {
	if o.err != nil {
		c.fail(o.err)
		return
	}
	c.middleware = append(c.middleware, o.mw...)
}

// Delivery describes one handling attempt of one event to middleware: the event's envelope
// and where and how often it is being handled.
//
// The bus reuses a Delivery for the next attempt once the Handler returns: middleware must
// not keep it, nor change it. Its Metadata is the event's own map, shared with the
// handler and other subscribers, and read-only.
type Delivery struct {
	ID         uuid.UUID
	Type       string // the topic
	Source     string
	Time       time.Time
	Key        string
	Metadata   Metadata
	Subscriber string // the subscription's name
	Attempt    int    // 1 for the first attempt, 2 for the first retry, ...

	event any // the *Event[T] being handled
}

// Payload returns the event's payload. A middleware that knows the topic's payload type
// may assert it; the conversion to any allocates for most payload types, so call it only
// when needed.
func (d *Delivery) Payload() any {
	if p, ok := d.event.(interface{ payload() any }); ok {
		return p.payload()
	}
	return nil
}

func (e *Event[T]) payload() any { return visiblePayload(e.Payload) }

// visiblePayload returns p as hooks and middleware see it: a request topic's request, not
// the call that carries it (see Handle); any other payload as it is.
func visiblePayload(p any) any {
	if c, ok := p.(interface{ requestPayload() any }); ok {
		return c.requestPayload()
	}
	return p
}

// chain builds the handler that the bus's middleware and then the subscription's wrap
// around h, or returns nil without middleware, so that the common case calls h directly.
func chain[T any](h func(context.Context, Event[T]) error, busMW, subMW []Middleware) Handler {
	if len(busMW)+len(subMW) == 0 {
		return nil
	}
	next := Handler(func(ctx context.Context, d *Delivery) error {
		return h(ctx, *d.event.(*Event[T]))
	})
	for _, mw := range [][]Middleware{subMW, busMW} {
		for i := len(mw) - 1; i >= 0; i-- {
			next = mw[i](next)
		}
	}
	return next
}
