package eventbus

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"
)

// TestPublishMiddlewareSeesTheEnvelopeHandlersGet: middleware sees the ID, time, source,
// key and metadata the handler receives, and what it adds to Metadata reaches the handler.
func TestPublishMiddlewareSeesTheEnvelopeHandlersGet(t *testing.T) {
	var seen []Publication
	var payloads []any
	b := New(WithSource("svc"), WithPublishMiddleware(func(next PublishFunc) PublishFunc {
		return func(ctx context.Context, p *Publication) error {
			p.Metadata["traceparent"] = "00-trace-01"
			err := next(ctx, p)
			seen = append(seen, *p)
			payloads = append(payloads, p.Payload())
			return err
		}
	}))
	got := make(chan Event[order], 3)
	mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
		got <- ev
		return nil
	}, WithConcurrency(1))
	md := Metadata{"tenant": "t1"}
	mustPublish(t, b, orders, order{ID: "a"}, WithKey("k"), WithMetadata(md))
	id, at := uuid.Must(uuid.NewV7()), time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	mustPublish(t, b, orders, order{ID: "b"}, WithID(id), WithTime(at), WithEventSource("/elsewhere"))
	if err := Publish(context.Background(), b, orders, order{ID: "c"}, WithWait()); err != nil {
		t.Fatal(err)
	}
	closeBus(t, b)
	if len(seen) != 3 {
		t.Fatalf("middleware saw %d publishes; want 3", len(seen))
	}
	for i := range 3 {
		ev, p := <-got, seen[i]
		if p.ID != ev.ID || !p.Time.Equal(ev.Time) || p.Source != ev.Source || p.Key != ev.Key || p.Type != ev.Type {
			t.Errorf("publish %d: middleware saw %v %v %q %q %q; handler got %v %v %q %q %q", i,
				p.ID, p.Time, p.Source, p.Key, p.Type, ev.ID, ev.Time, ev.Source, ev.Key, ev.Type)
		}
		if ev.Metadata["traceparent"] != "00-trace-01" {
			t.Errorf("publish %d: handler's Metadata = %v; want the middleware's traceparent", i, ev.Metadata)
		}
		if payloads[i] != ev.Payload {
			t.Errorf("publish %d: Payload() = %v; want %v", i, payloads[i], ev.Payload)
		}
	}
	if seen[0].Metadata["tenant"] != "t1" || md["traceparent"] != "" {
		t.Errorf("middleware's Metadata %v, publisher's %v; want the publisher's copied, and left alone", seen[0].Metadata, md)
	}
	if seen[1].ID != id || !seen[1].Time.Equal(at) || seen[1].Source != "/elsewhere" || !seen[2].Wait {
		t.Errorf("middleware saw %+v and %+v; want the supplied envelope, then Wait", seen[1], seen[2])
	}
}

// TestPublishMiddlewareCanRefuse: an error from middleware that does not call next is
// Publish's result, and no subscriber gets the event; topics without subscribers and
// errors from Publish itself go through middleware too.
func TestPublishMiddlewareCanRefuse(t *testing.T) {
	refused := errors.New("refused")
	var results []string
	b := New(WithPublishMiddleware(func(next PublishFunc) PublishFunc {
		return func(ctx context.Context, p *Publication) error {
			if p.Key == "no" {
				return refused
			}
			err := next(ctx, p)
			results = append(results, fmt.Sprintf("%s:%v", p.Type, err))
			return err
		}
	}))
	handled := 0
	mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error { handled++; return nil },
		WithBuffer(1), WithConcurrency(1))
	if err := Publish(context.Background(), b, orders, order{}, WithKey("no")); !errors.Is(err, refused) {
		t.Errorf("Publish through refusing middleware = %v; want %v", err, refused)
	}
	mustPublish(t, b, NewTopic[int]("nobody.listens"), 1)
	closeBus(t, b)
	if handled != 0 {
		t.Errorf("handler ran %d times; want 0: the event was refused", handled)
	}
	if want := "[nobody.listens:<nil>]"; fmt.Sprint(results) != want {
		t.Errorf("middleware saw %v; want %s", results, want)
	}
	if err := Publish(context.Background(), b, orders, order{}); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v; want ErrClosed, before any middleware", err)
	}
}

func TestWithPublishMiddlewareRejectsNil(t *testing.T) {
	defer func() {
		if r := recover(); r != "eventbus: WithPublishMiddleware: middleware must not be nil" {
			t.Errorf("panic = %v; want the nil-middleware message", r)
		}
	}()
	WithPublishMiddleware(nil)
}

// TestPublishMiddlewareAllocations: a Publish through middleware allocates its Publication
// and the Metadata map the middleware may add to, and nothing else.
func TestPublishMiddlewareAllocations(t *testing.T) {
	pass := func(next PublishFunc) PublishFunc { return next }
	b := New(WithPublishMiddleware(pass))
	mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error { return nil })
	allocs := testing.AllocsPerRun(2000, func() { mustPublish(t, b, orders, order{ID: "x"}) })
	closeBus(t, b)
	if allocs > 2 {
		t.Errorf("%.1f allocations per Publish through middleware; want at most 2", allocs)
	}
}

// TestPublishMiddlewareWritesAfterNextDoNotReachHandlers: what handlers get is the
// Metadata as it was when the innermost PublishFunc ran.
func TestPublishMiddlewareWritesAfterNextDoNotReachHandlers(t *testing.T) {
	written := make(chan struct{})
	b := New(WithPublishMiddleware(func(next PublishFunc) PublishFunc {
		return func(ctx context.Context, p *Publication) error {
			p.Metadata["before"] = "1"
			err := next(ctx, p)
			p.Metadata["after"] = "1"
			close(written)
			return err
		}
	}))
	got := make(chan Metadata, 1)
	mustSubscribe(t, b, orders, "s", func(_ context.Context, ev Event[order]) error {
		<-written
		got <- ev.Metadata
		return nil
	})
	mustPublish(t, b, orders, order{})
	md := <-got
	closeBus(t, b)
	if md["before"] != "1" || md["after"] != "" || len(md) != 1 {
		t.Errorf("handler's Metadata = %v; want only what the middleware wrote before next", md)
	}
}
