package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/cloudevents"
	"github.com/nats-io/nats.go/jetstream"
)

// receive runs the fetch loop of partition p: it takes one message at a time from
// consumer c and delivers it, until fetchCtx ends. deliverCtx bounds the wait for local
// subscribers.
func (br *Bridge) receive(fetchCtx, deliverCtx context.Context, p int, c jetstream.Consumer) {
	for fetchCtx.Err() == nil {
		it, err := c.Messages()
		if err != nil {
			br.cfg.Logger.Warn("natsbridge: cannot fetch; retrying", slog.Int("partition", p), slog.Any("error", err))
			sleep(fetchCtx, time.Second)
			continue
		}
		for {
			msg, err := it.Next(jetstream.NextContext(fetchCtx))
			if err != nil {
				if fetchCtx.Err() != nil {
					release(deliverCtx, it)
					return
				}
				br.cfg.Logger.Warn("natsbridge: fetch stopped; restarting it", slog.Int("partition", p), slog.Any("error", err))
				sleep(fetchCtx, time.Second)
				break
			}
			if !br.deliver(deliverCtx, msg) {
				release(deliverCtx, it, msg) // leave msg, and what else was fetched, to other bridges
				return
			}
		}
		it.Stop()
	}
}

// handBackDelay is how long the server waits to redeliver what a closing bridge hands
// back before its fetches are known to be over: long enough for the bridge's connection
// to close, so that the events go to another bridge rather than to a fetch of this one
// that nobody reads.
const handBackDelay = time.Second

// release drains it and hands back held, the messages it had returned but that were not
// settled, and those it had fetched but not yet returned, so that the server redelivers
// them at once instead of after AckWait. It naks them only once the drain is over (Next
// reports the iterator closed): nats.go unsubscribes in a goroutine of its own, and until
// then the server may deliver a nak'd message to this iterator again: nobody reads it
// once the drain is over, and a nak of it in turn starts a loop that spends the event's
// attempts (JetStream counts each delivery) until the next bridge dead-letters it as
// undelivered.
// It waits for the drain a second at most, or until ctx ends; if the drain is not over by
// then, it hands the messages back with a delay of handBackDelay instead.
func release(ctx context.Context, it jetstream.MessagesContext, held ...jetstream.Msg) {
	it.Drain()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	fetched := held
	drained := false
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			drained = errors.Is(err, jetstream.ErrMsgIteratorClosed)
			break
		}
		fetched = append(fetched, msg)
	}
	for _, msg := range fetched {
		if drained {
			msg.Nak()
		} else {
			msg.NakWithDelay(handBackDelay)
		}
	}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// deliver decodes msg, publishes it on the bus and waits for every local subscriber,
// then settles it with the server as the package doc says: ack if all handled it;
// redelivery after the retry policy's backoff if one failed, none was subscribed or the
// type is not received here, while attempts remain; immediate redelivery if the bridge
// or the bus is closing; dead letter and term otherwise, or at once if it does not
// decode. It returns false if the bridge or the bus is closing: the caller stops fetching
// and hands msg back with [release].
func (br *Bridge) deliver(ctx context.Context, msg jetstream.Msg) bool {
	br.stats.received.Add(1)
	md, err := msg.Metadata()
	if err != nil { // not a JetStream delivery; a consumer gives no other
		br.cfg.Logger.Error("natsbridge: message without JetStream metadata", slog.String("subject", msg.Subject()), slog.Any("error", err))
		return true
	}
	attempt := int(md.NumDelivered)
	if attempt > 1 {
		br.stats.redelivered.Add(1)
	}
	e, err := br.decoder.Message(cloudevents.NATS, maps.All(msg.Headers()), msg.Data())
	var in cloudevents.Decoded
	if err == nil {
		in, err = br.registry.Decode(e)
	}
	if errors.Is(err, cloudevents.ErrUnknownType) {
		br.stats.unknownTypes.Add(1)
		if attempt < br.maxAttempts {
			// Another bridge of the Group may receive this type: the consumers filter on
			// what the last bridge to connect receives, so during a rolling deploy that
			// adds a Receive route, older bridges fetch its events. Leave it to them.
			br.cfg.Logger.Info("natsbridge: event of a type this bridge does not receive; the event will be redelivered",
				slog.String("type", e.Type), slog.String("id", e.ID), slog.Int("attempt", attempt))
			br.retryLater(msg, attempt, e.ID)
			return true
		}
	}
	if err != nil {
		br.deadLetter(ctx, msg, md, ReasonInvalid, err)
		return true
	}
	if attempt > br.maxAttempts {
		br.deadLetter(ctx, msg, md, ReasonUndelivered, fmt.Errorf(
			"natsbridge: delivered %d times, over the %d attempts of the retry policy, without an outcome (a bridge stopped or an ack was lost)",
			attempt, br.maxAttempts))
		return true
	}
	stop := br.keepAlive(msg)
	err = in.Publish(ctx, br.bus, eventbus.WithWait(), eventbus.WithSubscriberRequired())
	stop()
	switch {
	case err == nil:
		actx, cancel := context.WithTimeout(ctx, br.cfg.PublishTimeout)
		defer cancel()
		if err := msg.DoubleAck(actx); err != nil {
			// The server redelivers it after AckWait; subscribers with de-duplication skip it.
			br.stats.ackFailures.Add(1)
			br.cfg.Logger.Warn("natsbridge: ack failed; the event will be redelivered",
				slog.String("id", e.ID), slog.Any("error", err))
			return true
		}
		br.stats.handled.Add(1)
	case ctx.Err() != nil || busClosed(err):
		// The bridge or the bus is closing: not the event's fault. The caller has it
		// redelivered now, to whichever bridge fetches next.
		br.stats.handedBack.Add(1)
		return false
	case subscriptionStopped(err):
		// A subscription stopped before the event's outcome: not the event's fault either.
		// Have it redelivered now; other subscribers skip it if they de-duplicate. (A
		// handler's own error that wraps eventbus.ErrClosed, a relay to a closed bus, is
		// an ordinary failure: retried after the backoff.)
		br.settle(msg.Nak(), e.ID)
		br.stats.handedBack.Add(1)
	case errors.Is(err, eventbus.ErrNoSubscribers):
		// Not acked: a service that connects before it subscribes, or whose last
		// subscriber just left, gets the event again after the retry policy's delay.
		br.stats.noSubscribers.Add(1)
		if attempt >= br.maxAttempts {
			br.deadLetter(ctx, msg, md, ReasonNoSubscribers, fmt.Errorf(
				"natsbridge: no local subscriber of %s on any of %d deliveries", e.Type, attempt))
			return true
		}
		br.cfg.Logger.Info("natsbridge: no local subscriber; the event will be redelivered",
			slog.String("type", e.Type), slog.String("id", e.ID), slog.Int("attempt", attempt))
		br.retryLater(msg, attempt, e.ID)
	case eventbus.IsPermanent(err):
		br.deadLetter(ctx, msg, md, ReasonPermanent, err)
	case attempt >= br.maxAttempts:
		br.deadLetter(ctx, msg, md, ReasonFailed, err)
	default:
		br.retryLater(msg, attempt, e.ID)
	}
	return true
}

// retryLater has the server redeliver msg, on its attempt-th delivery, after the retry
// policy's backoff (NakWithDelay).
func (br *Bridge) retryLater(msg jetstream.Msg, attempt int, id string) {
	br.settle(msg.NakWithDelay(br.cfg.Retry.Backoff(attempt)), id)
	br.stats.retried.Add(1)
}

// busClosed reports whether err, returned by a publish on the bus, says that the bus
// itself is closed (eventbus.Publish returns ErrClosed as it is), rather than that one
// subscription stopped while handling the event (a DeliveryError wrapping it).
func busClosed(err error) bool { return err == eventbus.ErrClosed }

// subscriptionStopped reports whether err, returned by a publish with WithWait, says that
// a local subscription stopped before the event had an outcome.
func subscriptionStopped(err error) bool {
	for _, e := range flatten(err) {
		if de, ok := e.(*eventbus.DeliveryError); ok && de.Stopped {
			return true
		}
	}
	return false
}

// flatten returns err and, if it joins several, each of them.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// settle logs the failure of a nak or term: the server then redelivers after AckWait.
func (br *Bridge) settle(err error, id string) {
	if err != nil {
		br.cfg.Logger.Warn("natsbridge: cannot reach the server; it will redeliver the event after AckWait",
			slog.String("id", id), slog.Any("error", err))
	}
}

// keepAlive tells the server every AckWait/3 that msg is still being handled, until stop
// is called, so that slow subscribers do not make it redeliver msg elsewhere.
func (br *Bridge) keepAlive(msg jetstream.Msg) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(max(br.cfg.AckWait/3, time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				msg.InProgress() // if it fails, the connection is down and the ack will fail too
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}
