package eventbus

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
)

// Bus is an in-process event bus. Publishers send typed events to topics with [Publish];
// every subscriber of the topic (see [Subscribe]) receives each event on its own workers,
// in order per key, with retries and a dead-letter hook. Make one with [New] and stop it
// with [Bus.Close]. A Bus is safe for concurrent use.
type Bus struct {
	source       string
	logger       *slog.Logger
	deadLetter   DeadLetterHandler
	middleware   []Middleware // around every subscription's handler
	health       HealthPolicy
	publishChain PublishFunc // the publish middleware around sendPublication, or nil
	clock        clock
	sd           shutdown

	// topics maps a topic name to its *topicState[T]. Publish reads it without a lock;
	// Subscribe and Subscription.Close replace it, copy-on-write, under mu.
	topics atomic.Pointer[map[string]topicEntry]
	// byID caches topics by the id of the Topic value used, for Publish; see lookupTopic.
	byID    atomic.Pointer[[]topicEntry]
	cacheMu sync.Mutex // serializes updates of byID

	mu      sync.Mutex
	subs    map[*Subscription]struct{} // live subscriptions
	closing map[*Subscription]struct{} // removed by Subscription.Close and not yet drained
}

// New returns a running bus. It panics, with a message that starts "eventbus:", if an
// option is nil or invalid: a programmer error, caught at start-up (see the package doc,
// "Errors").
func New(opts ...Option) *Bus {
	cfg := defaultBusConfig()
	for _, o := range opts {
		if o == nil {
			panic("eventbus: New: nil Option")
		}
		o.applyBus(&cfg)
	}
	if cfg.deadLetter == nil {
		cfg.deadLetter = logDeadLetters{cfg.logger}
	}
	b := &Bus{
		source:     cfg.source,
		logger:     cfg.logger,
		deadLetter: cfg.deadLetter,
		middleware: cfg.middleware,
		health:     cfg.health,
		sd:         newShutdown(),
		subs:       make(map[*Subscription]struct{}),
		closing:    make(map[*Subscription]struct{}),
	}
	if len(cfg.publishMW) > 0 {
		b.publishChain = sendPublication
		for i := len(cfg.publishMW) - 1; i >= 0; i-- {
			b.publishChain = cfg.publishMW[i](b.publishChain)
		}
	}
	b.topics.Store(&map[string]topicEntry{})
	return b
}

// DeadLetterHandler returns the bus's default dead-letter hook: the one given to [New] with
// [WithDeadLetter], or the one that logs each dead letter. An adapter that installs a hook
// of its own on its subscriptions (to count dead letters, say) hands them on to it.
func (b *Bus) DeadLetterHandler() DeadLetterHandler { return b.deadLetter }

// deliverDeadLetter calls the hook h (or the bus default if h is nil), logging its error,
// its panic or its runtime.Goexit: a dead letter is never lost to a failing hook without a
// trace.
func (b *Bus) deliverDeadLetter(ctx context.Context, h DeadLetterHandler, dl DeadLetter) {
	if h == nil {
		h = b.deadLetter
	}
	returned := false
	defer func() {
		if returned {
			return
		}
		if r := recover(); r != nil {
			b.logDeadLetterFailure(ctx, dl, &PanicError{Value: r})
			return
		}
		b.logDeadLetterFailure(ctx, dl, errHookGoexit)
	}()
	err := h.HandleDeadLetter(ctx, dl)
	returned = true
	if err != nil {
		b.logDeadLetterFailure(ctx, dl, err)
	}
}

// errHookGoexit is the failure logged for a dead-letter hook that called runtime.Goexit.
var errHookGoexit = errors.New("eventbus: dead-letter hook called runtime.Goexit")

func (b *Bus) logDeadLetterFailure(ctx context.Context, dl DeadLetter, err error) {
	b.logger.LogAttrs(ctx, slog.LevelError, "eventbus: dead-letter hook failed",
		slog.String("topic", dl.Event.Type),
		slog.String("subscriber", dl.Subscriber),
		slog.String("id", dl.Event.ID.String()),
		slog.Any("dead_letter_error", dl.Err),
		slog.Any("error", err),
	)
}
