package eventbus

import (
	"context"
	"log/slog"
)

// DeadLetter describes an event that a subscriber will never handle: its attempts ran out,
// its handler returned a [Permanent] error, or the bus or subscription stopped first (then
// errors.Is(Err, ErrClosed)).
type DeadLetter struct {
	Event      Event[any] // the event, its payload boxed
	Subscriber string     // the subscriber that gave up on it
	Attempts   int        // handler attempts made, the first included; 0 if none ran
	Err        error      // the final error; never nil
}

// DeadLetterHandler receives the events that subscribers gave up on. Set one per
// subscription, or a bus default, with [WithDeadLetter]; without one the bus logs each dead
// letter at level Error through its logger (see [WithLogger]).
//
// HandleDeadLetter is called once per dead letter, from the subscription's worker goroutine,
// before later events with the same key are handled; a slow hook slows its subscription. The
// ctx is never cancelled, not even when Close's deadline has passed, and carries what a
// handler's ctx carries, so the hook may [Publish] to a dead-letter topic, while Close
// drains the bus too. Once Close's deadline has passed, every subscription stops and that
// Publish returns [ErrClosed]: return it, and the bus logs it with the dead letter. A
// returned error (or a panic) is logged; the event counts as dead-lettered either way.
type DeadLetterHandler interface {
	HandleDeadLetter(ctx context.Context, dl DeadLetter) error
}

// DeadLetterFunc adapts a function to a [DeadLetterHandler].
type DeadLetterFunc func(ctx context.Context, dl DeadLetter) error

// HandleDeadLetter calls f(ctx, dl).
func (f DeadLetterFunc) HandleDeadLetter(ctx context.Context, dl DeadLetter) error { return f(ctx, dl) }

// DiscardDeadLetters drops every dead letter without a word. Use it only where losing
// failed events is truly fine, such as in tests that count failures another way.
var DiscardDeadLetters DeadLetterHandler = DeadLetterFunc(func(context.Context, DeadLetter) error { return nil })

// logDeadLetters is the default hook: it logs each dead letter at level Error.
type logDeadLetters struct{ logger *slog.Logger }

func (l logDeadLetters) HandleDeadLetter(ctx context.Context, dl DeadLetter) error {
	l.logger.LogAttrs(ctx, slog.LevelError, "eventbus: dead letter",
		slog.String("topic", dl.Event.Type),
		slog.String("subscriber", dl.Subscriber),
		slog.String("id", dl.Event.ID.String()),
		slog.String("key", dl.Event.Key),
		slog.Int("attempts", dl.Attempts),
		slog.Any("error", dl.Err),
	)
	return nil
}
