package watermillbus

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// Subscriber is a Watermill message.Subscriber over a [PubSub], whose Subscribe calls join
// one consumer group; see [PubSub.NewSubscriber]. It is safe for concurrent use.
type Subscriber struct {
	h     *hub
	group string

	mu        sync.Mutex
	closed    bool
	consumers map[*consumer]struct{}
	closeOnce sync.Once
}

var _ message.Subscriber = (*Subscriber)(nil)

// errNotDelivered is a consumer's answer to an offer that it took but could not deliver
// because it was leaving: the group's handler offers the message again, and the bus
// counts no attempt.
var errNotDelivered = errors.New("watermillbus: not delivered")

// Subscribe returns a channel of the messages of topic for the Subscriber's consumer
// group, as Watermill's contract says:
//
//   - The channel is unbuffered and carries one message at a time: the next comes only
//     once this one is acked or nacked. Ack completes the message's handling; Nack is a
//     failed attempt, redelivered by the retry policy (see [Config.Retry]) to a consumer
//     of the group, before any later message with its key.
//   - Each message's context carries the values of the bus handler's context, so that the
//     bus recognizes messages published with it as its handler's (see [PropagateContext]),
//     then ctx's values, and is cancelled when the message is acked or nacked, or when
//     the consumer leaves.
//   - When ctx ends or the Subscriber (or its PubSub) closes, the channel is closed at
//     once. A message then in flight has [Config.CloseTimeout] to be acked or nacked; if
//     it is not, it counts as a failed attempt ([ErrNotAcked]). Closing the Subscriber
//     waits for that; ctx ending does not.
//
// Consumer group "" gives each call a subscription of its own, which receives every
// message published to topic from then on (and first those retained, if the topic had no
// subscription of the PubSub; see [Config.Retain]) and leaves the bus when the call's
// channel closes: messages it still holds go to the dead-letter hook. With Config.Retain,
// though, the topic's last such subscription stays as its retention, keeping them for the
// next call. Calls with the same named group share its messages, and the group stays,
// collecting messages, while it has no consumer.
//
// Subscribe returns [ErrClosed] once the Subscriber or its PubSub is closed, and an error
// for an empty topic or a topic that the bus carries with another payload type.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if topic == "" {
		return nil, errEmptyTopic
	}
	h := s.h
	h.mu.Lock()
	s.mu.Lock()
	if h.closed || s.closed {
		s.mu.Unlock()
		h.mu.Unlock()
		return nil, ErrClosed
	}
	ts := h.topicLocked(topic)
	g, err := h.joinLocked(ts, s.group)
	if err != nil {
		h.forgetIfIdleLocked(ts)
		s.mu.Unlock()
		h.mu.Unlock()
		return nil, err
	}
	c := &consumer{s: s, g: g, out: make(chan *message.Message), done: make(chan struct{})}
	c.ctx, c.cancel = context.WithCancel(ctx)
	s.consumers[c] = struct{}{}
	s.mu.Unlock()
	h.mu.Unlock()
	go c.run()
	return c.out, nil
}

// Close closes every channel the Subscriber returned and waits until the messages then in
// flight were acked or nacked, or [Config.CloseTimeout] passed. The Subscriber's named
// consumer groups stay in the PubSub, with their messages, for their other consumers.
// Subscribe returns [ErrClosed] from then on. Close is idempotent, safe to call
// concurrently, and returns nil.
func (s *Subscriber) Close() error {
	s.h.mu.Lock()
	delete(s.h.subscribers, s)
	s.h.mu.Unlock()
	s.close()
	return nil
}

// close stops the Subscriber's consumers and waits for them.
func (s *Subscriber) close() {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		cs := make([]*consumer, 0, len(s.consumers))
		for c := range s.consumers {
			cs = append(cs, c)
		}
		s.mu.Unlock()
		for _, c := range cs {
			c.cancel()
		}
		for _, c := range cs {
			<-c.done
		}
	})
}

// consumer is one Subscribe call: a goroutine that takes the messages its group offers,
// one at a time, and delivers each on out until ctx ends.
type consumer struct {
	s   *Subscriber
	g   *group
	out chan *message.Message

	ctx    context.Context // the Subscribe ctx, cancelled by close too
	cancel context.CancelFunc

	left     bool          // owned by run: out is closed and the consumer counted out
	leaveBus bool          // owned by run: the group must leave the bus once run is done
	done     chan struct{} // closed when run has returned
}

// run delivers the group's messages until the consumer leaves, then removes the group
// from the bus if it ends with the consumer.
func (c *consumer) run() {
	defer close(c.done)
	defer c.cancel()
	defer func() {
		c.leave()
		if c.leaveBus {
			c.g.leaveBus()
		}
		// Forgotten last, so that closing the Subscriber (or the PubSub) waits for this.
		c.s.mu.Lock()
		delete(c.s.consumers, c)
		c.s.mu.Unlock()
	}()
	for {
		select {
		case d := <-c.g.offers:
			if !c.deliver(d) {
				return
			}
		case <-c.ctx.Done():
			return
		}
	}
}

// leave counts the consumer out of its group, then closes out, once. Out of the group
// first (and the topic retaining again, see hub.leave), so that a reader that sees out
// closed finds that state, even while a message it received has yet to be acked.
func (c *consumer) leave() {
	if !c.left {
		c.left = true
		c.leaveBus = c.s.h.leave(c.g)
		close(c.out)
	}
}

// deliver hands the message of d to the reader of out and reports its fate to d.result. It
// reports whether the consumer goes on.
func (c *consumer) deliver(d *delivery) bool {
	if c.ctx.Err() != nil { // the offer raced with leaving
		d.result <- errNotDelivered
		return false
	}
	msg := toMessage(&d.ev)
	// Cancelled here when the consumer leaves, rather than derived from c.ctx: the context
	// package looks for a parent's cancellation among its values, where deliveryValues
	// would show it the handler's, and it would then watch c.ctx with a goroutine.
	msgCtx, cancel := context.WithCancelCause(deliveryValues{handler: d.handlerCtx, sub: c.ctx})
	defer cancel(nil)
	msg.SetContext(msgCtx)

	select {
	case c.out <- msg:
	case <-c.ctx.Done():
		d.result <- errNotDelivered
		return false
	case <-d.handlerCtx.Done(): // the bus gave up on the message
		return true
	}

	select {
	case <-msg.Acked():
		d.result <- nil
		return true
	case <-msg.Nacked():
		d.result <- ErrNacked
		return true
	case <-d.handlerCtx.Done():
		return true
	case <-c.ctx.Done():
	}

	// The consumer leaves with the message in flight: the channel closes now, as
	// Watermill's contract wants, and the message's handler, its context cancelled, has
	// CloseTimeout to ack or nack it.
	cancel(context.Cause(c.ctx))
	c.leave()
	timer := time.NewTimer(c.s.h.cfg.CloseTimeout)
	defer timer.Stop()
	select {
	case <-msg.Acked():
		d.result <- nil
	case <-msg.Nacked():
		d.result <- ErrNacked
	case <-d.handlerCtx.Done():
	case <-timer.C:
		d.result <- ErrNotAcked
	}
	return false
}
