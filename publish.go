package eventbus

import (
	"context"

	"github.com/google/uuid"
)

// Publish sends payload to every current subscriber of topic t on bus b, as an [Event]
// whose envelope the options complete.
//
// Publish returns once each subscriber has accepted the event into its buffer; the
// handlers run later on the subscribers' workers (unless [WithWait] is given). A topic
// without subscribers accepts and drops the event and returns nil, unless
// [WithSubscriberRequired] is given.
//
// Backpressure: while a subscriber's buffer is full, Publish blocks until there is room or
// ctx ends; then it returns ctx.Err(). A fan-out is all or nothing: Publish takes room in
// every subscriber at once, and while one is full it waits holding room in none of them,
// so if it returns an error no subscriber received the event, and if it returns nil every
// subscriber did (except one removed while Publish ran, which is as if the event came
// after the removal).
//
// From inside a handler, publish with the handler's ctx: then Publish never deadlocks, not
// even on a cycle of full subscribers (a handler of A publishing to B while B's handlers
// publish to A). A chain of full subscribers simply waits for the next one down the chain;
// only a subscriber that is full and stalled (each of its running handlers is itself blocked
// publishing or waiting with WithWait, and no idle worker may take an event, be it for
// lack of one or because its circuit breaker admits none) takes a handler's event over its
// buffer. Publishers outside handlers always wait, so the buffer bounds what the bus holds
// unless handlers publish in a cycle that multiplies events.
//
// Publish returns [ErrClosed] once [Bus.Close] has begun (handlers may still publish with
// their ctx while Close drains), and an error for a zero Topic or a topic whose
// subscribers take another payload type. With [WithSubscriberRequired], it returns
// [ErrNoSubscribers] if no subscriber accepted the event.
func Publish[T any](ctx context.Context, b *Bus, t Topic[T], payload T, opts ...PublishOption) error {
	if t.name == "" {
		return errZeroTopic
	}
	if b == nil {
		return errNilBus
	}
	sc := scopeOf(ctx) // non-nil if a handler publishes: its subscription, its event
	if b.sd.closed.Load() && (sc == nil || sc.core.bus != b) {
		return ErrClosed // only a handler of this bus may publish while Close drains
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	ts, err := lookupTopic(b, t)
	if err != nil {
		return err
	}
	var pc publishConfig
	pc.apply(opts)
	if sc != nil && sc.id != uuid.Nil {
		pc.correlate(sc) // the new event follows from the one the handler handles
	}
	if b.publishChain != nil {
		return publishThrough(ctx, b, t.name, ts, payload, &pc)
	}
	return publishTo(ctx, b, ts, t.name, payload, &pc)
}

// publishTo is Publish once its arguments were checked: it hands the event to the
// subscribers of ts (nil if the topic never had one).
//
// If every subscriber it found was removed before accepting the event, it hands the event
// to the topic's subscribers as they are after the removals, so that an event published
// while a subscriber replaces another (Subscribe, then Close of the old one) reaches the new
// one rather than nobody. (A removal takes the subscription off its topic before the
// subscription stops accepting events, so the subscribers loaded again are the new ones.)
func publishTo[T any](ctx context.Context, b *Bus, ts *topicState[T], topic string, payload T, pc *publishConfig) error {
	if ts == nil {
		return pc.noSubscribers()
	}
	if subs := *ts.subs.Load(); len(subs) == 1 && pc.compact() && subs[0].commitInPlace(b, pc, payload) {
		b.noteAccepted()
		return nil
	}
	return publishOutgoing(ctx, b, ts, topic, payload, pc)
}

// publishOutgoing is publishTo past its common case, in a function of its own so that the
// common case does not pay for zeroing the outgoing event on its stack.
func publishOutgoing[T any](ctx context.Context, b *Bus, ts *topicState[T], topic string, payload T, pc *publishConfig) error {
	var o outgoing[T]
	o.rec.nanos, o.rec.rnd = pc.stamp(b)
	o.rec.key, o.rec.md, o.rec.payload = pc.key, pc.metadata(), payload
	if !pc.compact() {
		o.rec.event(&o.full, topic, b.source)
		supplied(pc, &o.full)
		o.hasFull, o.waits = true, pc.wait
	}
	for {
		subs := *ts.subs.Load()
		if len(subs) == 0 {
			return pc.noSubscribers()
		}
		err := deliver(ctx, b, subs, &o)
		if err == errGone {
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	b.noteAccepted()
	if o.wait != nil {
		return o.wait.waitFrom(ctx, b)
	}
	return nil
}

// outgoing is an event on its way to the subscribers: its record, or its whole envelope if
// the record cannot carry it (a supplied ID, time or source, or a waiting publisher), which
// sends it into the subscriptions' slots.
type outgoing[T any] struct {
	rec record[T]
	// full is the whole envelope if hasFull, else rec carries it. It is held by value: a
	// pointer to an Event of the publisher's would escape through the generic calls that
	// take o (their dictionaries hide what they keep), one allocation per publish.
	full    Event[T]
	hasFull bool
	waits   bool // the publisher waits for the outcomes (WithWait): deliver sets wait
	wait    *waiter
}

// envelope returns o's whole envelope as subscription s delivers it.
func (o *outgoing[T]) envelope(s *subscription[T]) (ev Event[T]) {
	if o.hasFull {
		return o.full
	}
	o.rec.event(&ev, s.topic, s.bus.source)
	return ev
}

// supplied sets the envelope fields that the options in pc supply.
func supplied[T any](pc *publishConfig, ev *Event[T]) {
	if pc.id != uuid.Nil {
		ev.ID = pc.id
	}
	if pc.timeSet {
		ev.Time = pc.time
	}
	if pc.source != "" {
		ev.Source = pc.source
	}
}
