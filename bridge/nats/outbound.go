package natsbridge

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/cloudevents"
	"github.com/nats-io/nats.go"
)

// ForwardDeadLetters counts the events of forwarded topics that were dead-lettered on the
// bus instead of forwarded, by reason.
type ForwardDeadLetters struct {
	// Invalid: the event cannot be a CloudEvent (ReasonInvalid): a Metadata key or value
	// that is not valid UTF-8, a Key with a control character, a payload that does not
	// marshal.
	Invalid uint64
	// TooLarge: over the server's max_payload (ReasonTooLarge).
	TooLarge uint64
	// Failed: every attempt of Config.PublishRetry failed (ReasonFailed): the server was
	// down or did not acknowledge in time.
	Failed uint64
	// Undelivered: the bus or the bridge closed before the event was forwarded
	// (ReasonUndelivered).
	Undelivered uint64
}

// Total returns the sum of the counts.
func (d ForwardDeadLetters) Total() uint64 { return d.Invalid + d.TooLarge + d.Failed + d.Undelivered }

// The reasons of outbound dead letters, in the order of ForwardDeadLetters' fields.
const (
	forwardInvalid = iota
	forwardTooLarge
	forwardFailed
	forwardUndelivered
)

var forwardReasons = [...]string{ReasonInvalid, ReasonTooLarge, ReasonFailed, ReasonUndelivered}

// forwardReason says why the forward gave up on an event with the final error err: one of
// the indexes of forwardReasons.
func forwardReason(err error) int {
	switch {
	case errors.Is(err, cloudevents.ErrInvalid), errors.Is(err, cloudevents.ErrData):
		return forwardInvalid
	case errors.Is(err, nats.ErrMaxPayload):
		return forwardTooLarge
	case errors.Is(err, eventbus.ErrClosed):
		return forwardUndelivered
	}
	return forwardFailed
}

// forwardDeadLetters is the dead-letter hook of the forwarding subscriptions: it counts
// each dead letter by reason, logs the first of each reason and then at most one per
// reason per logEvery (with how many it did not log), and hands the dead letter on to
// next.
type forwardDeadLetters struct {
	next   eventbus.DeadLetterHandler
	logger *slog.Logger
	counts [len(forwardReasons)]atomic.Uint64 // by reason

	mu     sync.Mutex
	logged [len(forwardReasons)]time.Time // when each reason was last logged
	quiet  [len(forwardReasons)]uint64    // dead letters of each reason not logged since
}

// logEvery is the least time between two log lines of one reason of outbound dead letters.
const logEvery = time.Minute

func (f *forwardDeadLetters) HandleDeadLetter(ctx context.Context, dl eventbus.DeadLetter) error {
	i := forwardReason(dl.Err)
	f.counts[i].Add(1)
	f.mu.Lock()
	now := time.Now()
	log := f.logged[i].IsZero() || now.Sub(f.logged[i]) >= logEvery
	quiet := f.quiet[i]
	if log {
		f.logged[i], f.quiet[i] = now, 0
	} else {
		f.quiet[i]++
	}
	f.mu.Unlock()
	if log {
		f.logger.LogAttrs(ctx, slog.LevelWarn, "natsbridge: an event of a forwarded topic was not forwarded; it is dead-lettered on the bus",
			slog.String("reason", forwardReasons[i]), slog.String("topic", dl.Event.Type), slog.String("id", dl.Event.ID.String()),
			slog.Int("attempts", dl.Attempts), slog.Any("error", dl.Err),
			slog.Uint64("not_logged_since_last", quiet))
	}
	return f.next.HandleDeadLetter(ctx, dl)
}

func (f *forwardDeadLetters) stats() ForwardDeadLetters {
	return ForwardDeadLetters{
		Invalid: f.counts[forwardInvalid].Load(), TooLarge: f.counts[forwardTooLarge].Load(),
		Failed: f.counts[forwardFailed].Load(), Undelivered: f.counts[forwardUndelivered].Load(),
	}
}
