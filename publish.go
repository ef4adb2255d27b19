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
// without subscribers accepts and drops the event and returns nil.
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
// subscribers take another payload type.
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
	if ts == nil {
		return err
	}
	subs := *ts.subs.Load()
	if len(subs) == 0 {
		return nil
	}
	var pc publishConfig
	pc.apply(opts)
	var w *waiter
	// The common case, one subscriber with room, builds the envelope in its intake.
	if len(subs) > 1 || pc.wait || !subs[0].enqueueInPlace(b, t.name, payload, &pc) {
		var ev Event[T]
		fillEvent(b, &ev, t.name, payload, &pc)
		if pc.wait {
			w = newWaiter(len(subs))
		}
		if err := deliver(ctx, subs, &ev, w); err != nil {
			return err
		}
	}
	if b.closed.Load() {
		b.closeGen.Add(1) // an event from a handler, accepted while Close drains
	}
	if w != nil {
		return w.wait(ctx)
	}
	return nil
}

// deliver hands ev to every subscription in subs, all or nothing; see Publish.
func deliver[T any](ctx context.Context, subs []*subscription[T], ev *Event[T], w *waiter) error {
	if len(subs) == 1 {
		err := subs[0].enqueue(ctx, ev, w)
		if errors.Is(err, errGone) {
			if w != nil {
				w.add(-1, nil)
			}
			return nil
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
	for i, s := range subs {
		if state[i] != reserveGone {
			s.commit(ev, w, state[i] == reserveDirect)
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

// fillEvent sets every field of *ev, which may hold an older event: the envelope of a
// Publish to topic name with payload and the options in pc.
func fillEvent[T any](b *Bus, ev *Event[T], name string, payload T, pc *publishConfig) {
	ev.ID, ev.Time = pc.id, pc.time
	if ev.Time.IsZero() || ev.ID == uuid.Nil {
		now := b.clock.now()
		if ev.Time.IsZero() {
			ev.Time = now
		}
		if ev.ID == uuid.Nil {
			ev.ID = newID(now)
		}
	}
	ev.Type = name
	ev.Source = b.source
	if pc.source != "" {
		ev.Source = pc.source
	}
	ev.Key = pc.key
	ev.Payload = payload
	ev.Metadata = pc.md.clone()
}
