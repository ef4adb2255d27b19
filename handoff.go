package eventbus

import "context"

// The hand-off: how Publish gets an event into every subscription of its topic. It is one
// protocol for one subscriber and for many, for events that fit an intake record and for
// those committed whole:
//
//  1. Reserve room in every subscription, all or none, without waiting while holding any
//     (deliver). Room in one subscription is one compare-and-swap on its count of held
//     events (reserve). If a subscription is full, the publisher gives back the room it
//     took in the others, waits for that one, holding nothing (awaitRoom), and starts over
//     with it. So room reserved is given back or committed within a few instructions, and
//     no wait of a publisher can depend on room that another waiting publisher holds.
//  2. Commit: hand the event to each subscription (commit): into a cell of its intake ring
//     if a record can carry it and the room is within the buffer, else into its slots under
//     its lock.
//  3. Wake a worker, if all are idle (wake.go).
//
// Invariants, which room.go, queue.go and worker.go keep:
//
//   - held counts every event accepted and not yet finished, and every reservation not yet
//     committed or given back; workers give finished events back in small batches, so held
//     may exceed that count by a batch, never fall below it.
//   - Room is taken over the buffer only by a handler's publish into a stalled subscription
//     (see stalledLocked): that is what breaks a cycle of full subscriptions whose handlers
//     publish to each other. Every other publisher waits for room.
//   - Every intake position from a subscription's head to its tail belongs to an event that
//     is held, so room reserved within a buffer no larger than the ring proves its cell free.
//   - The events a publisher commits to one subscription reach its workers in the order
//     committed, whether through the intake or the slots (see commitDirectLocked).

// room is what a publisher holds in one subscription between reserve and commit.
type room uint8

const (
	roomNone   room = iota // nothing: the subscription is full
	roomInside             // room within the buffer
	roomOver               // room over the buffer, in a stalled subscription
	roomGone               // nothing: the subscription was removed from its topic; skip it
	roomClosed             // nothing: the bus closed the subscription
)

// held reports whether r is room to commit into or give back.
func (r room) held() bool { return r == roomInside || r == roomOver }

// deliver hands o to every subscription in subs, all or nothing: it returns nil once each
// one accepted it, errGone if every one was removed before it could, or the error that
// stopped it (ctx's, or ErrClosed), with none of them holding it. It counts the event in
// the first subscription's published counter.
func deliver[T any](ctx context.Context, b *Bus, subs []*subscription[T], o *outgoing[T]) error {
	// The common case, room within every buffer at the first look, needs no bookkeeping.
	for i, s := range subs {
		if r := s.reserve(false, false); r != roomInside {
			for _, s := range subs[:i] {
				s.cancelRoom()
			}
			return deliverWaiting(ctx, b, subs, o, i, r)
		}
	}
	if o.waits {
		o.wait = newWaiter(len(subs))
	}
	// Counted while the room is held, so before the event can end: the workers cannot have
	// exited, and folded published into the topic's count, without it.
	subs[0].published.Add(1)
	for _, s := range subs {
		s.commit(o, roomInside)
	}
	return nil
}

// deliverWaiting is deliver once subs[full] gave r instead of room within its buffer, and
// deliver gave back the room it took in the others: it waits for room, holding none, and
// reserves again, until it holds room in every subscription that accepts events.
func deliverWaiting[T any](ctx context.Context, b *Bus, subs []*subscription[T], o *outgoing[T], full int, r room) error {
	n := len(subs)
	var roomStack [16]room
	var overStack [16]bool
	rooms, over := roomStack[:], overStack[:] // over: let in over the buffer, being stalled
	if n > len(roomStack) {
		rooms, over = make([]room, n), make([]bool, n)
	}
	rooms, over = rooms[:n], over[:n]
	from := publishingHandler(ctx, b)
	var blocking *subCore // from, once counted as blocked in a publish
	defer unblockPublisher(&blocking)
	if r == roomClosed && from != nil {
		r = roomGone // deliver reserved as an outside publisher; a handler may be let in
	}
	for {
		if r == roomClosed {
			return ErrClosed
		}
		if r == roomNone && !subs[full].spinForRoom(ctx, from != nil) {
			if from != nil && blocking == nil {
				from.blockPublisher()
				blocking = from
			}
			letIn, err := subs[full].awaitRoom(ctx, from)
			if err != nil {
				return err
			}
			over[full] = over[full] || letIn
		}
		if full, r = reserveAll(subs, rooms, over, full, from != nil); full < 0 {
			break
		}
	}
	live := 0
	for _, r := range rooms {
		if r.held() {
			live++
		}
	}
	if live == 0 {
		return errGone
	}
	if o.waits {
		o.wait = newWaiter(live)
	}
	counted := false
	for i, s := range subs {
		if !rooms[i].held() {
			continue
		}
		if !counted { // see deliver
			s.published.Add(1)
			counted = true
		}
		s.commit(o, rooms[i])
	}
	return nil
}

// reserveAll reserves room in every subscription, from subs[first] on around, into rooms,
// over the buffer where over allows, for a handler of the bus if handler is set; it returns
// -1, or the subscription that was full or closed and its room, having given back the room
// taken in the others.
func reserveAll[T any](subs []*subscription[T], rooms []room, over []bool, first int, handler bool) (full int, r room) {
	clear(rooms)
	for k := range subs {
		i := first + k
		if i >= len(subs) {
			i -= len(subs)
		}
		if r = subs[i].reserve(over[i], handler); r == roomNone || r == roomClosed {
			for j, r := range rooms {
				if r.held() {
					subs[j].cancelRoom()
				}
			}
			return i, r
		}
		rooms[i] = r
	}
	return -1, r
}

// unblockPublisher ends the count of a handler as blocked in a publish, if it was counted.
func unblockPublisher(blocking **subCore) {
	if c := *blocking; c != nil {
		c.unblockPublisher()
	}
}

// commitInPlace is the hand-off of the most common publish, alone: one subscription, with
// a buffer no larger than its ring and room in it, and an event a record carries. It
// reserves room, and writes the record straight into the cell that the room proves free
// (see commit), sparing deliver's copy of it: 3 ns of the publisher's 48 alone, 6 of the
// 91 of one subscriber end to end, in interleaved runs (docs/PERFORMANCE.md). It reports
// false, holding nothing, if the subscription has no room within its buffer or no longer
// accepts events: then the caller takes deliver's way.
func (s *subscription[T]) commitInPlace(b *Bus, pc *publishConfig, payload T) bool {
	if !s.roomIsCell || s.reserve(false, false) != roomInside {
		return false
	}
	s.published.Add(1) // see deliver
	c, pos := s.intake.ClaimFree(&s.tail)
	r := &c.Val
	r.nanos, r.rnd = pc.stamp(b)
	r.key, r.md, r.payload = pc.key, pc.metadata(), payload
	s.intake.Publish(c, pos)
	s.nudgeWorkers()
	return true
}

// commit hands o to the subscription, for which room r was reserved: into the intake if a
// record carries it and r is within the buffer, else into the slots.
func (s *subscription[T]) commit(o *outgoing[T], r room) {
	if r == roomInside && !o.hasFull {
		if s.roomIsCell {
			// The room proves the cell free: every intake position up to the tail belongs to
			// a held event, and with this one fewer than capacity <= the ring's length were
			// held when it reserved, so the position a lap before has been taken and
			// released. Room over the buffer proves nothing, so it never comes here.
			c, pos := s.intake.ClaimFree(&s.tail)
			c.Val = o.rec
			s.intake.Publish(c, pos)
			s.nudgeWorkers()
			return
		}
		if c, pos, ok := s.intake.Claim(&s.tail); ok {
			c.Val = o.rec
			s.intake.Publish(c, pos)
			s.nudgeWorkers()
			return
		}
	}
	ev := o.envelope(s)
	s.mu.Lock()
	s.commitDirectLocked(&ev, o.wait)
	s.mu.Unlock()
}
