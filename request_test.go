package eventbus

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

type quote struct{ Item string }
type price struct{ Cents int }

var quotes = NewRequestTopic[quote, price]("pricing.quote")

func TestRequestReturnsTheHandlersAnswer(t *testing.T) {
	b := New()
	defer closeBus(t, b)
	if _, err := Handle(b, quotes, "pricing", func(_ context.Context, ev Event[quote]) (price, error) {
		return price{Cents: len(ev.Payload.Item) * 100}, nil
	}); err != nil {
		t.Fatal(err)
	}
	got, err := Request(context.Background(), b, quotes, quote{Item: "book"}, WithKey("customer-1"))
	if err != nil || got.Cents != 400 {
		t.Errorf("Request() = %+v, %v; want {400}, nil", got, err)
	}
}

// The handler's final error, after its retries, in a DeliveryError; the dead-letter hook
// sees the request as the payload.
func TestRequestReturnsTheFinalError(t *testing.T) {
	var dls recorder
	b := New(WithDeadLetter(&dls))
	var attempts atomic.Int32
	errOut := errors.New("out of stock")
	if _, err := Handle(b, quotes, "pricing", func(context.Context, Event[quote]) (price, error) {
		attempts.Add(1)
		return price{Cents: 1}, errOut
	}, WithRetry(RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond})); err != nil {
		t.Fatal(err)
	}
	got, err := Request(context.Background(), b, quotes, quote{Item: "lamp"})
	closeBus(t, b)
	var de *DeliveryError
	if !errors.As(err, &de) || !errors.Is(err, errOut) || de.Attempts != 3 || got != (price{}) {
		t.Errorf("Request() = %+v, %v; want the zero price and a DeliveryError of 3 attempts wrapping %v", got, err, errOut)
	}
	if d := dls.all(); len(d) != 1 || d[0].Event.Payload != (quote{Item: "lamp"}) {
		t.Errorf("dead letters %+v; want one whose payload is the request", d)
	}
}

// No handler: an error that names the topic; a second handler: refused.
func TestRequestNeedsExactlyOneHandler(t *testing.T) {
	b := New()
	defer closeBus(t, b)
	_, err := Request(context.Background(), b, quotes, quote{})
	if !errors.Is(err, ErrNoSubscribers) || !strings.Contains(err.Error(), `"pricing.quote"`) {
		t.Errorf("Request() without a handler = %v; want ErrNoSubscribers naming the topic", err)
	}
	h := func(context.Context, Event[quote]) (price, error) { return price{}, nil }
	if _, err := Handle(b, quotes, "first", h); err != nil {
		t.Fatal(err)
	}
	if _, err := Handle(b, quotes, "second", h); err == nil || !strings.Contains(err.Error(), "already has a handler") {
		t.Errorf("a second Handle() = %v; want an error that the topic has a handler", err)
	}
	if _, err := Request(context.Background(), b, RequestTopic[quote, price]{}, quote{}); !errors.Is(err, errZeroTopic) {
		t.Errorf("Request(zero topic) = %v; want %v", err, errZeroTopic)
	}
}

// The caller's deadline reaches the handler's ctx, and the caller's giving up cancels it;
// the request then ends, dead-lettered, without retries.
func TestRequestCarriesTheCallersDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var dls recorder
		b := New(WithDeadLetter(&dls))
		var attempts atomic.Int32
		sawDeadline := make(chan time.Time, 1)
		Handle(b, quotes, "slow", func(ctx context.Context, ev Event[quote]) (price, error) {
			attempts.Add(1)
			d, _ := ctx.Deadline()
			sawDeadline <- d
			<-ctx.Done()
			return price{}, ctx.Err()
		}, WithRetry(RetryPolicy{MaxAttempts: 5}))
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		want, _ := ctx.Deadline()
		_, err := Request(ctx, b, quotes, quote{Item: "x"})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Request() = %v; want context.DeadlineExceeded", err)
		}
		if d := <-sawDeadline; !d.Equal(want) {
			t.Errorf("the handler's deadline %v; want the caller's %v", d, want)
		}
		b.Close(context.Background()) // after the handler's attempt and its dead letter
		if n := attempts.Load(); n != 1 {
			t.Errorf("%d attempts; want 1: nobody waits for a retry", n)
		}
		if d := dls.all(); len(d) != 1 || !strings.Contains(d[0].Err.Error(), "caller stopped waiting") {
			t.Errorf("dead letters %+v; want the request, saying the caller stopped waiting", d)
		}
	})
}

// Request against Publish with WithWait, the way to wait for an outcome before it.
func BenchmarkRequest(b *testing.B) {
	bus := New()
	defer bus.Close(context.Background())
	Handle(bus, quotes, "pricing", func(_ context.Context, ev Event[quote]) (price, error) { return price{Cents: 1}, nil })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Request(ctx, bus, quotes, quote{Item: "x"}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPublishWithWait(b *testing.B) {
	bus := New()
	defer bus.Close(context.Background())
	t := NewTopic[quote]("pricing.command")
	mustSubscribe(b, bus, t, "pricing", func(context.Context, Event[quote]) error { return nil })
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := Publish(ctx, bus, t, quote{Item: "x"}, WithWait()); err != nil {
			b.Fatal(err)
		}
	}
}

// Request and Handle never write into the caller's slice of options, which concurrent
// callers may share (append into its spare capacity was a data race).
func TestRequestLeavesTheCallersOptionsAlone(t *testing.T) {
	b := New()
	defer closeBus(t, b)
	shared := make([]SubscribeOption, 1, 4)
	shared[0] = WithConcurrency(2)
	if _, err := Handle(b, quotes, "pricing", func(context.Context, Event[quote]) (price, error) { return price{}, nil }, shared...); err != nil {
		t.Fatal(err)
	}
	if shared[:2][1] != nil {
		t.Errorf("Handle wrote %v into the caller's options", shared[:2][1])
	}
	opts := make([]PublishOption, 1, 8)
	opts[0] = WithKey("k")
	done := make(chan error)
	for range 8 {
		go func() {
			_, err := Request(context.Background(), b, quotes, quote{}, opts...)
			done <- err
		}()
	}
	for range 8 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
	if opts[:2][1].set != 0 {
		t.Errorf("Request wrote %+v into the caller's options", opts[:2][1])
	}
}

// A name taken by another type says so in the user's types, not the bus's internal ones.
func TestRequestTopicTypeMismatchNamesTheTypes(t *testing.T) {
	b := New()
	defer closeBus(t, b)
	if _, err := Handle(b, quotes, "pricing", func(context.Context, Event[quote]) (price, error) { return price{}, nil }); err != nil {
		t.Fatal(err)
	}
	_, err := Subscribe(b, NewTopic[quote]("pricing.quote"), "plain", func(context.Context, Event[quote]) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "requests of eventbus.quote answered with eventbus.price") || strings.Contains(err.Error(), "call[") {
		t.Errorf("Subscribe(plain topic of a request topic's name) = %v; want the request and response types named", err)
	}
}
