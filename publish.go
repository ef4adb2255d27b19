package eventbus

import (
	"context"
	"errors"

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
// ctx ends; then it returns ctx.Err(). A fan-out is all or nothing: Publish first reserves
// room in every subscriber, then hands the event to all of them at once, so if it returns
// an error no subscriber received the event, and if it returns nil every subscriber did
// (except one removed while Publish ran, which is as if the event came after the removal).
//
// From inside a handler, publish with the handler's ctx: then Publish never deadlocks, not
// even on a cycle of full subscribers (a handler of A publishing to B while B's handlers
// publish to A). A chain of full subscribers simply waits for the next one down the chain;
// only a subscriber that is full and stalled (each of its running handlers is itself blocked
// publishing, so it cannot drain) takes a handler's event over its buffer. Publishers outside
// handlers always wait, so the buffer bounds what the bus holds unless handlers publish in a
// cycle that multiplies events.
//
// Publish returns [ErrClosed] once [Bus.Close] has begun (handlers may still publish with
// their ctx while Close drains), and an error for a zero Topic or a topic whose
// subscribers take another payload type. With [WithSubscriberRequired], it returns
// [ErrNoSubscribers] if no subscriber accepted the event.
func Publish[T any](ctx context.Context, b *Bus, t Topic[T], payload T, opts ...PublishOption) error {
	if t.name == "" {
		return errZeroTopic
	}
	if b.closed.Load() && publishingHandler(ctx, b) == nil {
		return ErrClosed
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
// one rather than nobody.
func publishTo[T any](ctx context.Context, b *Bus, ts *topicState[T], topic string, payload T, pc *publishConfig) error {
	if ts == nil {
		return pc.noSubscribers()
	}
	current := ts.subs.Load()
	subs := *current
	if len(subs) == 0 {
		return pc.noSubscribers()
	}
	// The common case, one subscriber with room, writes the event's record into its intake.
	if len(subs) == 1 && pc.compact() && subs[0].enqueueInPlace(b, payload, pc) {
		noteAccepted(b) // counted in the subscription's published by enqueueInPlace
		return nil
	}
	var o outgoing[T]
	o.rec.nanos, o.rec.rnd = pc.stamp(b)
	o.rec.key, o.rec.md, o.rec.payload = pc.key, pc.metadata(), payload
	if !pc.compact() {
		o.rec.event(&o.full, topic, b.source)
		supplied(pc, &o.full)
		o.whole = true
	}
	for {
		if pc.wait {
			o.wait = newWaiter(len(subs))
		}
		err := deliver(ctx, subs, &o)
		if err == errGone { // every subscriber in subs was removed meanwhile
			// A removal marks the subscription, then takes it off the topic under b.mu.
			for ts.subs.Load() == current {
				yield()
			}
			if current = ts.subs.Load(); len(*current) == 0 {
				return pc.noSubscribers()
			}
			subs = *current
			continue
		}
		if err != nil {
			return err
		}
		break
	}
	ts.accepted.Add(1)
	noteAccepted(b)
	if o.wait != nil {
		return o.wait.wait(ctx)
	}
	return nil
}

// noteAccepted counts an event accepted from a handler while Close drains (see shutdown).
func noteAccepted(b *Bus) {
	if b.closed.Load() {
		b.closeGen.Add(1)
	}
}

// outgoing is an event on its way to the subscribers: its record, or its whole envelope if
// the record cannot carry it (a supplied ID, time or source, or a waiter), which sends it
// through the subscriptions' locked path.
type outgoing[T any] struct {
	rec   record[T]
	whole bool     // full holds the envelope; rec is not used
	full  Event[T] // set if whole
	wait  *waiter  // the waiting publisher, or nil; set only if whole
}

// envelope returns o's whole envelope as subscription s delivers it.
func (o *outgoing[T]) envelope(s *subscription[T]) (ev Event[T]) {
	if o.whole {
		return o.full
	}
	o.rec.event(&ev, s.topic, s.source)
	return ev
}

// deliver hands o to every subscription in subs, all or nothing; see Publish. It returns
// errGone if every subscription was removed before it could accept o.
func deliver[T any](ctx context.Context, subs []*subscription[T], o *outgoing[T]) error {
	w := o.wait
	if len(subs) == 1 {
		err := subs[0].enqueue(ctx, o)
		if errors.Is(err, errGone) {
			if w != nil {
				w.add(-1, nil)
			}
			return errGone
		}
		return err
	}
	// Reserve room in every subscriber first, so that a ctx ending half-way leaves none of
	// them holding the event.
	var stack [64]reservation
	state := stack[:0]
	if len(subs) > len(stack) {
		state = make([]reservation, 0, len(subs))
	}
	skipped := 0
	for i, s := range subs {
		direct, err := s.reserve(ctx)
		if errors.Is(err, errGone) {
			state = append(state, reserveGone)
			skipped++
			continue
		}
		if err != nil {
			for j := range i {
				if state[j] != reserveGone {
					subs[j].cancelReservation()
				}
			}
			return err
		}
		if direct {
			state = append(state, reserveDirect)
		} else {
			state = append(state, reserveIntake)
		}
	}
	if w != nil && skipped > 0 {
		w.add(-skipped, nil)
	}
	if skipped == len(subs) {
		return errGone
	}
	for i, s := range subs {
		if state[i] != reserveGone {
			s.commit(o, state[i] == reserveDirect)
		}
	}
	return nil
}

// reservation is how deliver reserved room in one subscriber.
type reservation uint8

const (
	reserveIntake reservation = iota // within capacity: commit through the intake
	reserveDirect                    // over capacity, for a stalled subscriber: commit under its lock
	reserveGone                      // the subscription was removed: skip it
)

// supplied sets the envelope fields that the options in pc supply.
func supplied[T any](pc *publishConfig, ev *Event[T]) {
	if pc.id != uuid.Nil {
		ev.ID = pc.id
	}
	if !pc.time.IsZero() {
		ev.Time = pc.time
	}
	if pc.source != "" {
		ev.Source = pc.source
	}
}
