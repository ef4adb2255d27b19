package eventbus

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// RequestTopic is a topic of requests of type Req answered with a Resp by its one handler:
// a command whose outcome the sender waits for. Make one with [NewRequestTopic], answer it
// with [Handle] and send with [Request]. The zero RequestTopic is invalid.
type RequestTopic[Req, Resp any] struct {
	t Topic[call[Req, Resp]]
}

// NewRequestTopic returns the request topic of that name. Like [NewTopic], it panics if
// name is empty, and a name may carry only one type of request on a bus.
func NewRequestTopic[Req, Resp any](name string) RequestTopic[Req, Resp] {
	if name == "" {
		panic("eventbus: NewRequestTopic: name must not be empty")
	}
	return RequestTopic[Req, Resp]{t: NewTopic[call[Req, Resp]](name)}
}

// Name returns the topic's name.
func (t RequestTopic[Req, Resp]) Name() string { return t.t.Name() }

// call is the payload of a request topic: the request, and where its answer goes.
type call[Req, Resp any] struct {
	req   Req
	reply *reply[Resp]
}

// requestPayload lets dead-letter hooks and middleware see the request, not the call.
func (c call[Req, Resp]) requestPayload() any { return c.req }

// requestTypes names the topic's payload in errors (see typeName).
func (call[Req, Resp]) requestTypes() string {
	return fmt.Sprintf("requests of %T answered with %T", *new(Req), *new(Resp))
}

// reply is where a handler leaves its answer for the one Request waiting for it. The
// caller reads it only after the bus told it the event was handled; a handler that
// answers after its caller gave up writes nothing.
type reply[Resp any] struct {
	mu        sync.Mutex
	resp      Resp
	abandoned bool
	caller    context.Context // the Request's ctx: its deadline and cancellation reach the handler

	// Written by the handler's attempts only, one after the other.
	tried   bool  // an attempt ran
	lastErr error // its error
}

// Handle subscribes h as the one handler of requests on t, under name, with opts as for
// [Subscribe]: retries, a timeout, a dead-letter hook and the rest apply as to any
// subscriber. h's ctx carries the requesting caller's deadline and is cancelled once the
// caller stops waiting. The Resp that h returns with a nil error is Request's result; an
// error is retried by the subscription's policy, and the final one (in an
// *[DeliveryError]) is Request's error. Once the caller has stopped waiting, h is not
// run again: an error of h is not retried but dead-lettered at once, and a retry already
// scheduled ends, when it comes due, dead-lettered without running h; the error says so. Handle
// returns an error, as Subscribe does, and also if t already has a handler. A dead-letter
// hook or a middleware sees the request (a Req) as the event's payload.
func Handle[Req, Resp any](b *Bus, t RequestTopic[Req, Resp], name string, h func(ctx context.Context, ev Event[Req]) (Resp, error), opts ...SubscribeOption) (*Subscription, error) {
	if h == nil {
		return nil, fmt.Errorf("eventbus: Handle: handler must not be nil")
	}
	return Subscribe(b, t.t, name, func(ctx context.Context, ev Event[call[Req, Resp]]) error {
		r := ev.Payload.reply
		if r.tried && callerGone(r.caller) {
			// A retry that nobody waits for: the request ends without running h again.
			return Permanent(fmt.Errorf("eventbus: Request: the caller stopped waiting (%w) before this retry: %w",
				context.Cause(r.caller), r.lastErr))
		}
		r.tried = true
		ctx, stop := withCaller(ctx, r.caller)
		defer stop()
		resp, err := h(ctx, Event[Req]{ID: ev.ID, Type: ev.Type, Source: ev.Source, Time: ev.Time,
			Key: ev.Key, Metadata: ev.Metadata, Payload: ev.Payload.req})
		if err != nil && callerGone(r.caller) {
			// Nobody waits for a retry's answer: the request ends now, dead-lettered.
			return Permanent(fmt.Errorf("eventbus: Request: the caller stopped waiting (%w): %w", context.Cause(r.caller), err))
		}
		if err != nil {
			r.lastErr = err
			return err
		}
		r.mu.Lock()
		if !r.abandoned {
			r.resp = resp
		}
		r.mu.Unlock()
		return nil
	}, append(opts[:len(opts):len(opts)], soleSubscriber{})...) // never into the caller's array
}

// withCaller returns ctx with the caller's deadline, cancelled when the caller's ctx ends
// too, and the function that releases it.
func withCaller(ctx, caller context.Context) (context.Context, func()) {
	if caller.Done() == nil {
		return ctx, func() {}
	}
	var cancelDeadline context.CancelFunc = func() {}
	if d, ok := caller.Deadline(); ok {
		ctx, cancelDeadline = context.WithDeadline(ctx, d)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	unhook := context.AfterFunc(caller, func() { cancel(context.Cause(caller)) })
	return ctx, func() {
		unhook()
		cancel(nil)
		cancelDeadline()
	}
}

// callerGone reports whether the caller has stopped waiting: its ctx ended, or its
// deadline has passed (the handler's ctx, which has the same deadline, may end first).
func callerGone(caller context.Context) bool {
	if caller.Err() != nil {
		return true
	}
	d, ok := caller.Deadline()
	return ok && !time.Now().Before(d)
}

// soleSubscriber makes Subscribe refuse a second subscriber of the topic.
type soleSubscriber struct{}

func (soleSubscriber) applySubscribe(c *subscribeConfig) { c.sole = true }

// Request sends req on t and waits for its handler's answer: the Resp it returned, or its
// final error (an *[DeliveryError], after the subscription's retries), or, if no handler
// answers t, an error wrapping [ErrNoSubscribers] that names the topic. If ctx ends first,
// Request returns an error wrapping ctx.Err(), and the handler's ctx is cancelled. opts are
// those of [Publish] ([WithKey] orders requests of one key; [WithWait] and
// [WithSubscriberRequired] are implied). Like Publish, it waits for room in the handler's
// buffer, and returns [ErrClosed] once the bus is closing (unless a handler sends it).
func Request[Req, Resp any](ctx context.Context, b *Bus, t RequestTopic[Req, Resp], req Req, opts ...PublishOption) (Resp, error) {
	var zero Resp
	switch {
	case t.t.name == "":
		return zero, errZeroTopic
	case b == nil:
		return zero, errNilBus
	}
	r := &reply[Resp]{caller: ctx}
	err := Publish(ctx, b, t.t, call[Req, Resp]{req: req, reply: r},
		append(opts[:len(opts):len(opts)], WithWait(), WithSubscriberRequired())...) // never into the caller's array
	r.mu.Lock()
	defer r.mu.Unlock()
	r.abandoned = true
	switch {
	case err == ErrNoSubscribers:
		return zero, fmt.Errorf("eventbus: Request: no handler of %q: %w", t.t.name, err)
	case err != nil:
		return zero, err
	}
	return r.resp, nil
}
