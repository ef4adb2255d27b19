package eventbus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/uuid"
)

func TestMiddlewareRunsOutermostFirstAroundEveryAttempt(t *testing.T) {
	b := New(WithDeadLetter(DiscardDeadLetters))
	var mu sync.Mutex
	var trace []string
	var deliveries []Delivery
	record := func(s string) {
		mu.Lock()
		trace = append(trace, s)
		mu.Unlock()
	}
	named := func(name string) Middleware {
		return func(next Handler) Handler {
			return func(ctx context.Context, d *Delivery) error {
				record(name + ">")
				if name == "a" {
					mu.Lock()
					deliveries = append(deliveries, *d)
					mu.Unlock()
				}
				err := next(ctx, d)
				record("<" + name)
				return err
			}
		}
	}
	attempts := 0
	mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
		record("handler")
		if attempts++; attempts == 1 {
			return errors.New("first attempt fails")
		}
		return nil
	}, WithConcurrency(1), WithRetry(fastRetry), WithMiddleware(named("a"), named("b")), WithMiddleware(named("c")))
	if err := Publish(context.Background(), b, orders, order{ID: "o1"}, WithKey("k"), WithMetadata(Metadata{"m": "v"}), WithWait()); err != nil {
		t.Fatalf("Publish() = %v; want nil after the retry", err)
	}
	closeBus(t, b)

	once := []string{"a>", "b>", "c>", "handler", "<c", "<b", "<a"}
	if want := slices.Concat(once, once); !slices.Equal(trace, want) {
		t.Errorf("trace = %v; want %v", trace, want)
	}
	if len(deliveries) != 2 {
		t.Fatalf("middleware saw %d deliveries; want 2", len(deliveries))
	}
	for i, d := range deliveries {
		if d.Attempt != i+1 || d.Subscriber != "s" || d.Type != orders.Name() || d.Key != "k" || d.Metadata["m"] != "v" || d.ID.Version() != 7 {
			t.Errorf("delivery %d = %+v; want attempt %d of subscriber s, the event's envelope", i, d, i+1)
		}
	}
}

func TestMiddlewareSeesPayloadAndCanFailOrPanic(t *testing.T) {
	b := New()
	var dls recorder
	var payloads []any
	failing := func(next Handler) Handler {
		return func(ctx context.Context, d *Delivery) error {
			payloads = append(payloads, d.Payload())
			switch d.Payload().(order).ID {
			case "refused":
				return Permanent(errors.New("refused by middleware"))
			case "panics":
				panic("middleware panic")
			}
			return next(ctx, d)
		}
	}
	handled := 0
	mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
		handled++
		return nil
	}, WithConcurrency(1), WithRetry(RetryPolicy{MaxAttempts: 1}), WithDeadLetter(&dls), WithMiddleware(failing))
	for _, id := range []string{"ok", "refused", "panics"} {
		mustPublish(t, b, orders, order{ID: id})
	}
	closeBus(t, b)
	if handled != 1 {
		t.Errorf("handler ran %d times; want 1 (the others were stopped by middleware)", handled)
	}
	if want := []any{order{ID: "ok"}, order{ID: "refused"}, order{ID: "panics"}}; !slices.Equal(payloads, want) {
		t.Errorf("middleware saw payloads %v; want %v", payloads, want)
	}
	got := dls.all()
	if len(got) != 2 {
		t.Fatalf("%d dead letters; want 2", len(got))
	}
	var pe *PanicError
	if got[0].Err.Error() != "refused by middleware" || !errors.As(got[1].Err, &pe) {
		t.Errorf("dead letters = %v, %v; want the middleware's error, then a *PanicError", got[0].Err, got[1].Err)
	}
}

func TestWithMiddlewareRejectsNil(t *testing.T) {
	b := New()
	defer closeBus(t, b)
	_, err := Subscribe(b, orders, "s", func(context.Context, Event[order]) error { return nil }, WithMiddleware(nil))
	if err == nil {
		t.Error("Subscribe(WithMiddleware(nil)) = nil; want an error")
	}
}

// TestMiddlewareCostsNoAllocation: the plain path stays allocation-free, and middleware
// that does not ask for the payload adds none either (the Delivery is reused).
func TestMiddlewareCostsNoAllocation(t *testing.T) {
	pass := func(next Handler) Handler {
		return func(ctx context.Context, d *Delivery) error { return next(ctx, d) }
	}
	for _, opts := range [][]SubscribeOption{nil, {WithMiddleware(pass)}} {
		b := New()
		mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error { return nil }, opts...)
		allocs := testing.AllocsPerRun(2000, func() { mustPublish(t, b, orders, order{ID: "x"}) })
		closeBus(t, b)
		if allocs > 0 {
			t.Errorf("with %d options: %.2f allocations per event; want 0", len(opts), allocs)
		}
	}
}

// TestProtectionsApplyInTheDocumentedOrder: de-duplication acts before middleware (a repeat
// never reaches it), the handler timeout is already on the ctx middleware receives, with
// a cause wrapping ErrHandlerTimeout, and panic recovery wraps middleware.
func TestProtectionsApplyInTheDocumentedOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		var dls recorder
		calls := 0
		var causes []error
		mw := func(next Handler) Handler {
			return func(ctx context.Context, d *Delivery) error {
				calls++
				if _, ok := ctx.Deadline(); !ok {
					t.Error("middleware's ctx has no deadline; want the handler timeout on it")
				}
				switch d.Payload().(order).ID {
				case "panics":
					panic("in middleware")
				case "slow":
					<-ctx.Done() // outlive the timeout
					causes = append(causes, context.Cause(ctx))
				}
				return next(ctx, d)
			}
		}
		mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error { return nil },
			WithConcurrency(1), WithRetry(RetryPolicy{MaxAttempts: 1}), WithDeadLetter(&dls),
			WithDeduplication(time.Hour, 10), WithHandlerTimeout(time.Second), WithMiddleware(mw))
		id := uuid.Must(uuid.NewV7())
		mustPublish(t, b, orders, order{ID: "ok"}, WithID(id))
		mustPublish(t, b, orders, order{ID: "ok"}, WithID(id)) // a repeat of a handled event
		mustPublish(t, b, orders, order{ID: "slow"})
		mustPublish(t, b, orders, order{ID: "panics"})
		closeBus(t, b)

		if calls != 3 {
			t.Errorf("middleware ran %d times; want 3 (the repeat skipped before it)", calls)
		}
		if len(causes) != 1 || !errors.Is(causes[0], ErrHandlerTimeout) {
			t.Errorf("ctx causes seen by middleware %v; want one wrapping ErrHandlerTimeout", causes)
		}
		got := dls.all()
		var pe *PanicError
		if len(got) != 2 || !errors.Is(got[0].Err, ErrHandlerTimeout) || !errors.As(got[1].Err, &pe) {
			t.Errorf("dead letters %v; want the timed-out event, then the middleware's panic", got)
		}
	})
}

// TestBusMiddlewareWrapsEverySubscription: middleware given to New runs around the
// handlers of every subscription, outside each subscription's own.
func TestBusMiddlewareWrapsEverySubscription(t *testing.T) {
	var mu sync.Mutex
	var trace []string
	tag := func(name string) Middleware {
		return func(next Handler) Handler {
			return func(ctx context.Context, d *Delivery) error {
				mu.Lock()
				trace = append(trace, name+"("+d.Subscriber+")")
				mu.Unlock()
				return next(ctx, d)
			}
		}
	}
	b := New(WithMiddleware(tag("bus1"), tag("bus2")))
	done := make(chan struct{}, 2)
	h := func(context.Context, Event[order]) error { done <- struct{}{}; return nil }
	mustSubscribe(t, b, orders, "a", h, WithMiddleware(tag("sub")))
	mustPublish(t, b, orders, order{})
	<-done
	mustSubscribe(t, b, NewTopic[order]("other"), "b", h)
	mustPublish(t, b, NewTopic[order]("other"), order{})
	<-done
	closeBus(t, b)
	if got := fmt.Sprint(trace); got != "[bus1(a) bus2(a) sub(a) bus1(b) bus2(b)]" {
		t.Errorf("middleware ran as %s; want the bus's outermost, on every subscription", got)
	}
	func() {
		defer func() {
			if r := recover(); r != errNilMiddleware.Error() {
				t.Errorf("New(WithMiddleware(nil)) panicked with %v; want %q", r, errNilMiddleware)
			}
		}()
		New(WithMiddleware(nil))
	}()
}
