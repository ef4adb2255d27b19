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

// receive runs the fetch loop of partition p: it pulls one message at a time from consumer
// c and delivers it, until fetchCtx ends. deliverCtx bounds the wait for local subscribers,
// and the wait for the last pull at Close.
//
// Each pull asks for one message and lasts pullWait at most. When fetchCtx ends, the loop
// waits for its pull to end (a message, or the pull's expiry) before it returns, handing
// back at once what arrives meanwhile: a server before 2.10 keeps a pull request until it
// expires, even once the connection that made it is gone, and delivers into it meanwhile,
// so that a message delivered there would wait out AckWait before another bridge got it
// (a graceful restart stalled about 28 s on 2.9.10). A message is handed back with a Nak
// only once its pull has ended: the server then has no pull of this bridge to redeliver
// it to, and gives it to another.
func (br *Bridge) receive(fetchCtx, deliverCtx context.Context, p int, c jetstream.Consumer) {
	for fetchCtx.Err() == nil {
		pullCtx, cancel := context.WithTimeout(deliverCtx, pullWait)
		batch, err := c.Fetch(1, jetstream.FetchContext(pullCtx))
		if err != nil {
			cancel()
			br.cfg.Logger.Warn("natsbridge: cannot fetch; retrying", slog.Int("partition", p), slog.Any("error", err))
			sleep(fetchCtx, time.Second)
			continue
		}
		msg, stopped := nextOrStop(fetchCtx, batch.Messages())
		if stopped { // Close: wait for the pull to end, handing back what it brings
			if msg, ok := <-batch.Messages(); ok {
				br.handBack(msg)
			}
			cancel()
			return
		}
		if msg == nil {
			cancel()
			if err := batch.Error(); err != nil && !errors.Is(err, context.DeadlineExceeded) && fetchCtx.Err() == nil {
				br.cfg.Logger.Warn("natsbridge: fetch failed; retrying", slog.Int("partition", p), slog.Any("error", err))
				sleep(fetchCtx, time.Second)
			}
			continue
		}
		ok := br.deliver(deliverCtx, msg)
		cancel()
		if !ok {
			br.settle(msg.Nak(), "") // the bridge or the bus is closing: leave it to other bridges
			return
		}
	}
}

// testHookBeforeAck, if set, runs once the local subscribers handled an event, before its
// ack, with the delivery's ctx.
var testHookBeforeAck func(ctx context.Context)

// pullWait is the longest a pull of the receiving loop lasts, and so the longest Close
// waits for the last pulls to end when no message comes.
const pullWait = 250 * time.Millisecond

// nextOrStop returns the next message of msgs, or nil once msgs is closed (the pull ended
// without one), or stopped once stop ends first.
func nextOrStop(stop context.Context, msgs <-chan jetstream.Msg) (msg jetstream.Msg, stopped bool) {
	select {
	case msg, ok := <-msgs:
		if !ok {
			return nil, false
		}
		return msg, false
	case <-stop.Done():
		return nil, true
	}
}

// handBack hands msg, which a pull brought as the bridge closed, back for immediate
// redelivery: it counts as received and handed back.
func (br *Bridge) handBack(msg jetstream.Msg) {
	br.stats.received.Add(1)
	br.settle(msg.Nak(), "")
	br.stats.handedBack.Add(1)
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
		if testHookBeforeAck != nil {
			testHookBeforeAck(ctx)
		}
		br.ack(ctx, msg, e.ID)
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

// ack acknowledges msg, whose every local subscriber handled it, waiting for the server's
// confirmation within PublishTimeout. Once ctx has ended (Close's ctx), it sends the ack
// without waiting, or again if the wait was cut short: closing the connection flushes it,
// and were it lost the server would redeliver the event after AckWait.
func (br *Bridge) ack(ctx context.Context, msg jetstream.Msg, id string) {
	err := context.Canceled
	if ctx.Err() == nil {
		actx, cancel := context.WithTimeout(ctx, br.cfg.PublishTimeout)
		err = msg.DoubleAck(actx)
		cancel()
	}
	if err != nil && ctx.Err() != nil {
		br.settle(msg.Ack(), id)
		err = nil
	}
	if err != nil {
		// The server redelivers it after AckWait; subscribers with de-duplication skip it.
		br.stats.ackFailures.Add(1)
		br.cfg.Logger.Warn("natsbridge: ack failed; the event will be redelivered", slog.String("id", id), slog.Any("error", err))
		return
	}
	br.stats.handled.Add(1)
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
