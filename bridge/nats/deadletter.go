package natsbridge

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"

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
	// HeaderOmitted is set on a dead letter that would have been over the server's
	// max_payload with the original's body ("data") or with its headers too ("data,
	// headers"): read what it lacks from the stream, at HeaderSequence.
	HeaderOmitted = "Eventbus-Omitted"
)

// Reasons of a dead letter: of a received event, in its HeaderReason; of an event of a
// forwarded topic dead-lettered on the bus, in [ForwardDeadLetters] (invalid, toolarge,
// failed or undelivered, each meaning the same for the forward).
const (
	ReasonInvalid     = "invalid"     // the message is not a CloudEvent of a received topic; no handler saw it
	ReasonFailed      = "failed"      // a local subscriber failed on every attempt of the retry policy
	ReasonPermanent   = "permanent"   // a local subscriber returned an eventbus.Permanent error
	ReasonUndelivered = "undelivered" // delivered more often than the retry policy allows, each time without an outcome
	// ReasonNoSubscribers: the topic had no local subscriber on any attempt of the retry
	// policy (eventbus.ErrNoSubscribers); no handler saw the event.
	ReasonNoSubscribers = "nosubscribers"
	// ReasonTooLarge: a forwarded event is over the server's max_payload; no retry can
	// make it fit.
	ReasonTooLarge = "toolarge"
)

// deadLetter publishes msg to its dead-letter subject, with the reason, the error and the
// attempts in headers, and then terms it. A dead letter over the server's max_payload is
// sent without the original's body, and if need be without its headers (see
// [HeaderOmitted]). A publish that fails is retried by Config.PublishRetry, while the
// server is told that msg is in progress; once its attempts are spent, msg is terminated
// without a dead letter, counted as dropped and logged at Error with its stream sequence
// (it stays in the stream until the stream's limits remove it), so that its partition is
// not held up for ever. If ctx ends first (the bridge is closing), msg is handed back.
func (br *Bridge) deadLetter(ctx context.Context, msg jetstream.Msg, md *jetstream.MsgMetadata, reason string, cause error) {
	seq := strconv.FormatUint(md.Sequence.Stream, 10)
	dl := nats.NewMsg(br.cfg.SubjectPrefix + ".deadletter." + strings.TrimPrefix(msg.Subject(), br.cfg.SubjectPrefix+"."))
	for name, values := range msg.Headers() {
		if !strings.HasPrefix(name, "Nats-") { // the server's own, such as Nats-Msg-Id
			dl.Header[name] = slices.Clone(values)
		}
	}
	ours := nats.Header{}
	ours.Set(HeaderReason, reason)
	ours.Set(HeaderError, oneLine(cause.Error()))
	ours.Set(HeaderAttempts, strconv.FormatUint(md.NumDelivered, 10))
	ours.Set(HeaderSubject, msg.Subject())
	ours.Set(HeaderSequence, seq)
	maps.Copy(dl.Header, ours)
	dl.Data = msg.Data()

	stop := br.keepAlive(msg)
	defer stop()
	retry := br.cfg.PublishRetry
	for attempt := 1; ; {
		err := br.publishDeadLetter(ctx, dl, seq)
		if errors.Is(err, nats.ErrMaxPayload) && dl.Header.Get(HeaderOmitted) == "" {
			dl.Data = nil
			dl.Header.Set(HeaderOmitted, "data")
			continue
		}
		if errors.Is(err, nats.ErrMaxPayload) && dl.Header.Get(HeaderOmitted) == "data" {
			dl.Header = ours
			dl.Header.Set(HeaderOmitted, "data, headers")
			continue
		}
		if err == nil {
			br.settle(br.term(msg, reason), seq)
			br.stats.deadLettered.Add(1)
			if reason == ReasonInvalid {
				br.stats.invalid.Add(1)
			}
			br.cfg.Logger.Warn("natsbridge: dead letter",
				slog.String("subject", msg.Subject()), slog.String("dead_letter_subject", dl.Subject),
				slog.String("reason", reason), slog.Uint64("attempts", md.NumDelivered), slog.Any("error", cause),
				slog.String("omitted", dl.Header.Get(HeaderOmitted)))
			return
		}
		br.stats.deadLetterFailures.Add(1)
		switch {
		case ctx.Err() != nil:
			br.settle(msg.Nak(), seq) // the bridge is closing: let another bridge try
			br.stats.handedBack.Add(1)
			return
		case attempt >= retry.MaxAttempts:
			br.settle(br.term(msg, reason), seq)
			br.stats.dropped.Add(1)
			br.cfg.Logger.Error("natsbridge: cannot publish a dead letter; the event is terminated without one and stays in the stream",
				slog.String("stream", br.cfg.Stream), slog.String("sequence", seq), slog.String("subject", msg.Subject()),
				slog.String("dead_letter_subject", dl.Subject), slog.String("reason", reason),
				slog.Any("error", cause), slog.Int("publish_attempts", attempt), slog.Any("publish_error", err))
			return
		}
		br.cfg.Logger.Warn("natsbridge: cannot publish a dead letter; retrying",
			slog.String("dead_letter_subject", dl.Subject), slog.Int("publish_attempt", attempt), slog.Any("error", err))
		sleep(ctx, retry.Backoff(attempt))
		attempt++
	}
}

// publishDeadLetter publishes dl, the dead letter of the event at stream sequence seq,
// within PublishTimeout; its message ID makes a repeat (after a redelivery) a duplicate.
func (br *Bridge) publishDeadLetter(ctx context.Context, dl *nats.Msg, seq string) error {
	ctx, cancel := context.WithTimeout(ctx, br.cfg.PublishTimeout)
	defer cancel()
	_, err := br.js.PublishMsg(ctx, dl, jetstream.WithMsgID("deadletter-"+br.cfg.Stream+"-"+seq))
	return err
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
