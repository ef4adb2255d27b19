package eventbus

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrHandlerTimeout is wrapped into the error of an attempt that outlived the subscription's
// handler timeout; see [WithHandlerTimeout].
var ErrHandlerTimeout = errors.New("eventbus: handler timed out")

// WithHandlerTimeout bounds each handling attempt to d: once d has passed, the attempt's ctx
// is cancelled (with a cause wrapping [ErrHandlerTimeout]), and the attempt counts as
// failed, even if the handler returns nil afterwards, so it is retried by the retry policy.
// The bus cannot stop a handler that ignores its ctx: the worker waits for it to return.
// Each attempt then costs a timer and a context. [Subscribe] returns an error if d <= 0.
func WithHandlerTimeout(d time.Duration) SubscribeOption {
	return subscribeOption(func(c *subscribeConfig) {
		if d <= 0 {
			c.fail(fmt.Errorf("eventbus: WithHandlerTimeout: d must be > 0, got %v", d))
		}
		c.timeout = d
	})
}

// timeoutError is the cause of a handler ctx cancelled by the handler timeout.
type timeoutError struct{ after time.Duration }

func (e *timeoutError) Error() string { return fmt.Sprintf("%v after %v", ErrHandlerTimeout, e.after) }
func (e *timeoutError) Unwrap() error { return ErrHandlerTimeout }

// withTimeout runs call with ctx bounded by d, and turns an attempt that outlived d into a
// failure wrapping ErrHandlerTimeout (and the handler's own error, if any).
func withTimeout(ctx context.Context, d time.Duration, call func(context.Context) error) error {
	cause := &timeoutError{after: d}
	tctx, cancel := context.WithTimeoutCause(ctx, d, cause)
	defer cancel() // if call panics
	err := call(tctx)
	// Cancel before looking at the cause: a handler that returned in time is not judged
	// late by a timer that fires between its return and the look.
	cancel()
	if context.Cause(tctx) != cause {
		return err // within time, or cancelled by the bus itself
	}
	if err == nil || err == context.DeadlineExceeded || err == context.Canceled {
		return cause // the handler gave up with its ctx, and says nothing more
	}
	// Keep what the handler says: its words for the dead letter, and a Permanent mark.
	return fmt.Errorf("%w: %w", cause, err)
}
