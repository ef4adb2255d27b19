package eventbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// waiter collects the outcomes of one event published WithWait, one per subscriber.
type waiter struct {
	mu        sync.Mutex
	remaining int
	errs      []error
	finished  chan struct{} // closed when remaining reaches 0
}

func newWaiter(n int) *waiter {
	return &waiter{remaining: n, finished: make(chan struct{})}
}

// add records n more (or, negative, fewer) subscribers to wait for.
func (w *waiter) add(n int, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		w.errs = append(w.errs, err)
	}
	w.remaining += n
	if w.remaining == 0 {
		close(w.finished)
	}
}

// done records one subscriber's outcome: nil if it handled the event.
func (w *waiter) done(err error) { w.add(-1, err) }

// wait returns the joined errors once every subscriber is done, or an error wrapping
// ctx.Err() if ctx ends first.
func (w *waiter) wait(ctx context.Context) error {
	select {
	case <-w.finished:
		return errors.Join(w.errs...)
	case <-ctx.Done():
		return fmt.Errorf("eventbus: published, stopped waiting for subscribers: %w", ctx.Err())
	}
}

// waitFrom is wait for a publisher that may be a handler of b: while it waits, it counts
// as blocked in a publish, so that its subscription may be stalled (see stalledLocked) and
// let in over its buffer the events that the outcome waited for depends on.
func (w *waiter) waitFrom(ctx context.Context, b *Bus) error {
	if from := publishingHandler(ctx, b); from != nil {
		from.blockPublisher()
		defer from.unblockPublisher()
	}
	return w.wait(ctx)
}
