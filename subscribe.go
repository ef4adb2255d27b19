package eventbus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
)

// Subscription is one subscriber of one topic, as returned by [Subscribe]. Its handler runs
// on the subscription's own worker goroutines until [Subscription.Close] or [Bus.Close].
type Subscription struct {
	core *subCore
	once sync.Once // of remove
}

// Subscribe adds a subscriber named name to topic t on bus b: from now on, every event
// published to t is handled by h on the subscription's workers.
//
// For each subscriber, events with the same non-empty key, published from one goroutine,
// are handled one at a time in publish order, retries included; other events run in
// parallel, up to the concurrency (see [WithConcurrency]). A handler that returns an error
// or panics is retried by the retry policy ([WithRetry]); an event whose attempts run out,
// whose error is [Permanent], or which the bus stops before handling goes to the
// dead-letter hook ([WithDeadLetter]). So every accepted event ends, for every subscriber,
// either handled or dead-lettered.
//
// h receives a ctx that is cancelled only when Close runs out of time; pass it to
// [Publish] to publish from the handler. Subscribe returns an error, and starts nothing,
// for a zero Topic, an empty name, a nil handler, a name already subscribed to t, an
// invalid option, a topic name used with another payload type, or a closed bus
// ([ErrClosed]).
func Subscribe[T any](b *Bus, t Topic[T], name string, h func(context.Context, Event[T]) error, opts ...SubscribeOption) (*Subscription, error) {
	switch {
	case b == nil:
		return nil, errNilBus
	case t.name == "":
		return nil, errZeroTopic
	case name == "":
		return nil, errors.New("eventbus: Subscribe: name must not be empty")
	case h == nil:
		return nil, errors.New("eventbus: Subscribe: handler must not be nil")
	}
	cfg := defaultSubscribeConfig()
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("eventbus: Subscribe: nil SubscribeOption")
		}
		o.applySubscribe(&cfg)
	}
	if cfg.err != nil {
		return nil, cfg.err
	}
	var err error
	if cfg.retry, err = cfg.retry.withDefaults(); err != nil {
		return nil, err
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sd.closed.Load() {
		return nil, ErrClosed
	}
	ts, err := topicFor(b, t)
	if err != nil {
		return nil, err
	}
	for _, s := range *ts.subs.Load() {
		if cfg.sole || s.sole {
			return nil, fmt.Errorf("eventbus: Handle: request topic %q already has a handler, %q", t.name, s.name)
		}
		if s.name == name {
			return nil, fmt.Errorf("eventbus: Subscribe: topic %q already has a subscriber named %q", t.name, name)
		}
	}
	s := newSubscription(b, ts, t.name, name, h, cfg)
	ts.add(s)
	sub := &Subscription{core: &s.subCore}
	b.subs[sub] = struct{}{}
	s.start()
	b.logger.LogAttrs(context.Background(), slog.LevelDebug, "eventbus: subscribed",
		slog.String("topic", t.name), slog.String("subscriber", name),
		slog.Int("concurrency", cfg.concurrency), slog.Int("buffer", cfg.buffer))
	return sub, nil
}

// Topic returns the name of the subscription's topic.
func (s *Subscription) Topic() string { return s.core.topic }

// Name returns the subscriber's name.
func (s *Subscription) Name() string { return s.core.name }
