package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/cloudevents"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers the bridge adds to a dead letter, besides the original message's headers.
const (
	HeaderError    = "Eventbus-Error"    // the final error, one line
	HeaderReason   = "Eventbus-Reason"   // invalid, failed, permanent, undelivered or nosubscribers (see the package doc)
	HeaderAttempts = "Eventbus-Attempts" // deliveries made, the last included
	HeaderSubject  = "Eventbus-Subject"  // the subject the event was received on
	HeaderSequence = "Eventbus-Sequence" // its sequence number in the stream
)

// Reasons of a dead letter, in its HeaderReason.
const (
	ReasonInvalid     = "invalid"     // the message is not a CloudEvent of a received topic; no handler saw it
	ReasonFailed      = "failed"      // a local subscriber failed on every attempt of the retry policy
	ReasonPermanent   = "permanent"   // a local subscriber returned an eventbus.Permanent error
	ReasonUndelivered = "undelivered" // delivered more often than the retry policy allows, each time without an outcome
	// ReasonNoSubscribers: the topic had no local subscriber on any attempt of the retry
	// policy (eventbus.ErrNoSubscribers); no handler saw the event.
	ReasonNoSubscribers = "nosubscribers"
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
					release(it)
					return
				}
				br.cfg.Logger.Warn("natsbridge: fetch stopped; restarting it", slog.Int("partition", p), slog.Any("error", err))
				sleep(fetchCtx, time.Second)
				break
			}
			if !br.deliver(deliverCtx, msg) {
				release(it) // the bus is closed: leave the events to other bridges
				return
			}
		}
		it.Stop()
	}
}

// release stops it and hands back the messages it had fetched but not yet returned, so
// that the server redelivers them at once instead of after AckWait.
func release(it jetstream.MessagesContext) {
	it.Drain()
	for {
		msg, err := it.Next(jetstream.NextMaxWait(time.Second))
		if err != nil {
			return
		}
		msg.Nak()
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
// then settles it with the server: ack if all handled it; redelivery after the retry
// policy's backoff if one failed and attempts remain; dead letter and term otherwise, or
// at once if it does not decode. It returns false if the bus is closed, so that the
// caller stops fetching.
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
			br.settle(msg.NakWithDelay(br.cfg.Retry.Backoff(attempt)), e.ID)
			br.stats.retried.Add(1)
			return true
		}
	}
	if err != nil {
		br.deadLetter(msg, md, ReasonInvalid, err)
		return true
	}
	if attempt > br.maxAttempts {
		br.deadLetter(msg, md, ReasonUndelivered, fmt.Errorf(
			"natsbridge: delivered %d times, over the %d attempts of the retry policy, without an outcome (a bridge stopped or an ack was lost)",
			attempt, br.maxAttempts))
		return true
	}
	stop := br.keepAlive(msg)
	err = in.Publish(ctx, br.bus, eventbus.WithWait(), eventbus.WithSubscriberRequired())
	stop()
	switch {
	case err == nil:
		actx, cancel := context.WithTimeout(context.Background(), br.cfg.PublishTimeout)
		defer cancel()
		if err := msg.DoubleAck(actx); err != nil {
			// The server redelivers it after AckWait; subscribers with de-duplication skip it.
			br.cfg.Logger.Warn("natsbridge: ack failed; the event will be redelivered",
				slog.String("id", e.ID), slog.Any("error", err))
		}
		br.stats.handled.Add(1)
	case ctx.Err() != nil || errors.Is(err, eventbus.ErrClosed):
		// The bridge, the bus or a subscription is stopping: not the event's fault. Have
		// it redelivered now, to whichever bridge fetches next.
		br.settle(msg.Nak(), e.ID)
		br.stats.retried.Add(1)
		return !busClosed(err)
	case errors.Is(err, eventbus.ErrNoSubscribers):
		// Not acked: a service that connects before it subscribes, or whose last
		// subscriber just left, gets the event again after the retry policy's delay.
		br.stats.noSubscribers.Add(1)
		if attempt >= br.maxAttempts {
			br.deadLetter(msg, md, ReasonNoSubscribers, fmt.Errorf(
				"natsbridge: no local subscriber of %s on any of %d deliveries", e.Type, attempt))
			return true
		}
		br.cfg.Logger.Info("natsbridge: no local subscriber; the event will be redelivered",
			slog.String("type", e.Type), slog.String("id", e.ID), slog.Int("attempt", attempt))
		br.settle(msg.NakWithDelay(br.cfg.Retry.Backoff(attempt)), e.ID)
		br.stats.retried.Add(1)
	case eventbus.IsPermanent(err):
		br.deadLetter(msg, md, ReasonPermanent, err)
	case attempt >= br.maxAttempts:
		br.deadLetter(msg, md, ReasonFailed, err)
	default:
		br.settle(msg.NakWithDelay(br.cfg.Retry.Backoff(attempt)), e.ID)
		br.stats.retried.Add(1)
	}
	return true
}

// busClosed reports whether err, returned by a publish on the bus, says that the bus
// itself is closed (eventbus.Publish returns ErrClosed as it is), rather than that one
// subscription stopped while handling the event (a DeliveryError wrapping it).
func busClosed(err error) bool { return err == eventbus.ErrClosed }

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

// deadLetter publishes msg to its dead-letter subject, with the reason, the error and the
// attempts in headers, and then terms it. If the publish fails, msg is redelivered later
// instead, so that it is never lost.
func (br *Bridge) deadLetter(msg jetstream.Msg, md *jetstream.MsgMetadata, reason string, cause error) {
	seq := strconv.FormatUint(md.Sequence.Stream, 10)
	dl := nats.NewMsg(br.cfg.SubjectPrefix + ".deadletter." + strings.TrimPrefix(msg.Subject(), br.cfg.SubjectPrefix+"."))
	for name, values := range msg.Headers() {
		if !strings.HasPrefix(name, "Nats-") { // the server's own, such as Nats-Msg-Id
			dl.Header[name] = slices.Clone(values)
		}
	}
	dl.Header.Set(HeaderReason, reason)
	dl.Header.Set(HeaderError, oneLine(cause.Error()))
	dl.Header.Set(HeaderAttempts, strconv.FormatUint(md.NumDelivered, 10))
	dl.Header.Set(HeaderSubject, msg.Subject())
	dl.Header.Set(HeaderSequence, seq)
	dl.Data = msg.Data()
	ctx, cancel := context.WithTimeout(context.Background(), br.cfg.PublishTimeout)
	defer cancel()
	_, err := br.js.PublishMsg(ctx, dl, jetstream.WithMsgID("deadletter-"+br.cfg.Stream+"-"+seq))
	if err != nil {
		br.stats.deadLetterFailures.Add(1)
		br.cfg.Logger.Error("natsbridge: cannot publish a dead letter; the event will be redelivered",
			slog.String("subject", dl.Subject), slog.Any("error", err))
		br.settle(msg.NakWithDelay(br.cfg.Retry.Backoff(int(md.NumDelivered))), seq)
		return
	}
	br.settle(msg.TermWithReason(reason), seq)
	br.stats.deadLettered.Add(1)
	if reason == ReasonInvalid {
		br.stats.invalid.Add(1)
	}
	br.cfg.Logger.Warn("natsbridge: dead letter",
		slog.String("subject", msg.Subject()), slog.String("dead_letter_subject", dl.Subject),
		slog.String("reason", reason), slog.Uint64("attempts", md.NumDelivered), slog.Any("error", cause))
}

// oneLine makes s fit a header value: control characters become spaces, and it is cut to
// at most 1024 bytes.
func oneLine(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 1024 {
		s = strings.ToValidUTF8(s[:1024], "")
	}
	return s
}
