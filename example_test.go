package eventbus_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ae30fb47/eventbus"
	"github.com/google/uuid"
)

type Order struct {
	ID    string
	Total int
}

var orderCreated = eventbus.NewTopic[Order]("order.created")

// The quick start: a topic, a subscriber, a publish that waits for the handler, and Close.
func Example() {
	bus := eventbus.New()

	eventbus.Subscribe(bus, orderCreated, "inventory", func(ctx context.Context, ev eventbus.Event[Order]) error {
		fmt.Printf("reserving stock for %s (%d)\n", ev.Payload.ID, ev.Payload.Total)
		return nil
	})

	ctx := context.Background()
	err := eventbus.Publish(ctx, bus, orderCreated, Order{ID: "o-1", Total: 42}, eventbus.WithWait())
	fmt.Println("published:", err)

	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	fmt.Println("closed:", bus.Close(ctx))
	// Output:
	// reserving stock for o-1 (42)
	// published: <nil>
	// closed: <nil>
}

// A handler receives the payload in an envelope: the topic as Type, the ordering Key and
// the Metadata the publisher attached.
func ExampleSubscribe() {
	bus := eventbus.New(eventbus.WithSource("checkout"))

	eventbus.Subscribe(bus, orderCreated, "audit", func(ctx context.Context, ev eventbus.Event[Order]) error {
		fmt.Println("type:", ev.Type)
		fmt.Println("source:", ev.Source)
		fmt.Println("key:", ev.Key)
		fmt.Println("payload:", ev.Payload.ID)
		fmt.Println("request id:", ev.Metadata["request_id"])
		return nil
	})

	eventbus.Publish(context.Background(), bus, orderCreated, Order{ID: "o-7"},
		eventbus.WithKey("o-7"),
		eventbus.WithMetadata(eventbus.Metadata{"request_id": "req-123"}),
		eventbus.WithWait())
	bus.Close(context.Background())
	// Output:
	// type: order.created
	// source: checkout
	// key: o-7
	// payload: o-7
	// request id: req-123
}

// Events with the same key are handled one at a time, in publish order, while different
// keys run in parallel.
func ExampleWithKey() {
	bus := eventbus.New()

	var mu sync.Mutex
	seen := map[string][]int{}
	eventbus.Subscribe(bus, orderCreated, "shipping", func(ctx context.Context, ev eventbus.Event[Order]) error {
		mu.Lock()
		defer mu.Unlock()
		seen[ev.Key] = append(seen[ev.Key], ev.Payload.Total)
		return nil
	}, eventbus.WithConcurrency(4))

	ctx := context.Background()
	for step := 1; step <= 3; step++ {
		for _, id := range []string{"o-1", "o-2"} {
			eventbus.Publish(ctx, bus, orderCreated, Order{ID: id, Total: step}, eventbus.WithKey(id))
		}
	}
	bus.Close(ctx)

	for _, key := range slices.Sorted(maps.Keys(seen)) {
		fmt.Println(key, seen[key])
	}
	// Output:
	// o-1 [1 2 3]
	// o-2 [1 2 3]
}

// A handler that fails is retried with backoff; one that returns a Permanent error, or
// runs out of attempts, has its event dead-lettered.
func ExampleWithRetry() {
	deadLetters := eventbus.DeadLetterFunc(func(ctx context.Context, dl eventbus.DeadLetter) error {
		fmt.Printf("dead letter: %s gave up on %s after %d attempt(s): %v\n",
			dl.Subscriber, dl.Event.Payload.(Order).ID, dl.Attempts, dl.Err)
		return nil
	})
	bus := eventbus.New(eventbus.WithDeadLetter(deadLetters))

	attempts := 0
	eventbus.Subscribe(bus, orderCreated, "payment", func(ctx context.Context, ev eventbus.Event[Order]) error {
		if ev.Payload.Total < 0 {
			return eventbus.Permanent(errors.New("negative total"))
		}
		attempts++
		if attempts < 3 {
			return errors.New("payment service unavailable")
		}
		fmt.Printf("charged %s on attempt %d\n", ev.Payload.ID, attempts)
		return nil
	}, eventbus.WithConcurrency(1), eventbus.WithRetry(eventbus.RetryPolicy{
		MaxAttempts:    5,
		InitialBackoff: time.Millisecond,
	}))

	ctx := context.Background()
	eventbus.Publish(ctx, bus, orderCreated, Order{ID: "o-1", Total: 10}, eventbus.WithWait())
	err := eventbus.Publish(ctx, bus, orderCreated, Order{ID: "o-2", Total: -1}, eventbus.WithWait())
	fmt.Println("publish o-2:", err != nil)
	bus.Close(ctx)
	// Output:
	// charged o-1 on attempt 3
	// dead letter: payment gave up on o-2 after 1 attempt(s): negative total
	// publish o-2: true
}

// Close handles the events already accepted, then refuses new ones with ErrClosed.
func ExampleBus_Close() {
	bus := eventbus.New()

	var mu sync.Mutex
	var handled []string
	eventbus.Subscribe(bus, orderCreated, "slow", func(ctx context.Context, ev eventbus.Event[Order]) error {
		time.Sleep(10 * time.Millisecond)
		mu.Lock()
		handled = append(handled, ev.Payload.ID)
		mu.Unlock()
		return nil
	}, eventbus.WithConcurrency(1))

	ctx := context.Background()
	for _, id := range []string{"o-1", "o-2", "o-3"} {
		eventbus.Publish(ctx, bus, orderCreated, Order{ID: id})
	}

	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	fmt.Println("close:", bus.Close(ctx))
	fmt.Println("handled before Close returned:", strings.Join(handled, ", "))

	err := eventbus.Publish(ctx, bus, orderCreated, Order{ID: "o-4"})
	fmt.Println("publish after close:", errors.Is(err, eventbus.ErrClosed))
	// Output:
	// close: <nil>
	// handled before Close returned: o-1, o-2, o-3
	// publish after close: true
}

// Middleware sees every attempt of every event, whatever the topic's payload type: here, a
// log line per attempt. The first attempt fails and is retried.
func ExampleWithMiddleware() {
	bus := eventbus.New()
	logAttempts := func(next eventbus.Handler) eventbus.Handler {
		return func(ctx context.Context, d *eventbus.Delivery) error {
			err := next(ctx, d)
			fmt.Printf("%s/%s attempt %d: %v\n", d.Type, d.Subscriber, d.Attempt, err)
			return err
		}
	}
	attempts := 0
	eventbus.Subscribe(bus, orderCreated, "billing", func(ctx context.Context, ev eventbus.Event[Order]) error {
		if attempts++; attempts == 1 {
			return errors.New("payment service busy")
		}
		return nil
	}, eventbus.WithMiddleware(logAttempts), eventbus.WithConcurrency(1),
		eventbus.WithRetry(eventbus.RetryPolicy{InitialBackoff: time.Millisecond}))

	err := eventbus.Publish(context.Background(), bus, orderCreated, Order{ID: "o-1"}, eventbus.WithWait())
	fmt.Println("published:", err)
	bus.Close(context.Background())
	// Output:
	// order.created/billing attempt 1: payment service busy
	// order.created/billing attempt 2: <nil>
	// published: <nil>
}

// De-duplication makes a subscriber immune to redelivery: an event re-published with the
// same ID (as an at-least-once broker bridge may do) is handled once.
func ExampleWithDeduplication() {
	bus := eventbus.New()
	eventbus.Subscribe(bus, orderCreated, "shipping", func(ctx context.Context, ev eventbus.Event[Order]) error {
		fmt.Println("shipping", ev.Payload.ID)
		return nil
	}, eventbus.WithDeduplication(10*time.Minute, 100_000))

	ctx := context.Background()
	id := uuid.Must(uuid.NewV7())
	for range 3 {
		eventbus.Publish(ctx, bus, orderCreated, Order{ID: "o-1"}, eventbus.WithID(id), eventbus.WithWait())
	}
	bus.Close(ctx)
	// Output:
	// shipping o-1
}

// Stats are counters kept all the time: what flowed through each topic and subscription,
// what failed, what waits, and how long handlers take.
func ExampleBus_Stats() {
	bus := eventbus.New(eventbus.WithDeadLetter(eventbus.DiscardDeadLetters))
	eventbus.Subscribe(bus, orderCreated, "billing", func(ctx context.Context, ev eventbus.Event[Order]) error {
		if ev.Payload.Total < 0 {
			return eventbus.Permanent(errors.New("negative total"))
		}
		return nil
	})
	ctx := context.Background()
	for _, total := range []int{10, -1, 20} {
		eventbus.Publish(ctx, bus, orderCreated, Order{Total: total}, eventbus.WithWait())
	}

	for _, topic := range bus.Stats().Topics {
		fmt.Printf("%s: %d published\n", topic.Name, topic.Published)
		for _, s := range topic.Subscriptions {
			fmt.Printf("  %s: %d delivered, %d handled, %d failed attempts, %d dead-lettered, %d of %d queued\n",
				s.Name, s.Delivered, s.Handled, s.FailedAttempts, s.DeadLettered, s.Queued, s.Capacity)
		}
	}
	bus.Close(ctx)
	// Output:
	// order.created: 3 published
	//   billing: 3 delivered, 2 handled, 1 failed attempts, 1 dead-lettered, 0 of 1024 queued
}

// A readiness probe: 200 while the bus is open and every subscription healthy, 503 with the
// reasons otherwise (a full buffer that stays full, an open circuit breaker, too many dead
// letters; see HealthPolicy).
func ExampleBus_Ready() {
	bus := eventbus.New()
	eventbus.Subscribe(bus, orderCreated, "billing", func(context.Context, eventbus.Event[Order]) error { return nil })

	readyz := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := bus.Ready(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})

	probe := func() {
		rec := httptest.NewRecorder()
		readyz.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
		fmt.Print(rec.Code, " ", rec.Body.String())
	}
	probe()
	bus.Close(context.Background())
	probe()
	// Output:
	// 200 ok
	// 503 eventbus: closed
}

// Health tells which subscriptions are in trouble and why, for a dashboard or a log line;
// Ready (above) folds it into one error for a probe. Here the payments provider is down and
// the shipping subscription's circuit breaker has opened.
func ExampleBus_Health() {
	bus := eventbus.New(eventbus.WithDeadLetter(eventbus.DeadLetterFunc(func(context.Context, eventbus.DeadLetter) error {
		return nil // a real service would park the event somewhere to replay it
	})))
	defer bus.Close(context.Background())
	eventbus.Subscribe(bus, orderCreated, "billing", func(context.Context, eventbus.Event[Order]) error { return nil })
	eventbus.Subscribe(bus, orderCreated, "shipping", func(context.Context, eventbus.Event[Order]) error {
		return eventbus.Permanent(errors.New("payments provider: connection refused"))
	}, eventbus.WithCircuitBreaker(1, time.Minute))

	eventbus.Publish(context.Background(), bus, orderCreated, Order{ID: "o-1"}, eventbus.WithWait())

	for _, s := range bus.Health().Subscriptions {
		if s.Healthy() {
			fmt.Printf("%s/%s: healthy\n", s.Topic, s.Name)
		} else {
			fmt.Printf("%s/%s: %s\n", s.Topic, s.Name, strings.Join(s.Problems, "; "))
		}
	}
	// Output:
	// order.created/billing: healthy
	// order.created/shipping: circuit breaker open
}

// A handler that publishes with its ctx links the new event to the one it handles: the
// correlation ID of the chain (the first event's ID) and the cause.
func ExampleCorrelationIDKey() {
	paid := eventbus.NewTopic[Order]("order.paid")
	bus := eventbus.New()
	eventbus.Subscribe(bus, orderCreated, "billing", func(ctx context.Context, ev eventbus.Event[Order]) error {
		return eventbus.Publish(ctx, bus, paid, ev.Payload) // with the handler's ctx
	})
	done := make(chan eventbus.Event[Order], 1)
	eventbus.Subscribe(bus, paid, "shipping", func(_ context.Context, ev eventbus.Event[Order]) error {
		done <- ev
		return nil
	})
	first := uuid.MustParse("0196b1f4-7c2a-7d3e-9f00-0123456789ab")
	eventbus.Publish(context.Background(), bus, orderCreated, Order{ID: "o-1"}, eventbus.WithID(first))
	ev := <-done
	bus.Close(context.Background())
	fmt.Println("correlation:", ev.Metadata[eventbus.CorrelationIDKey])
	fmt.Println("causation:  ", ev.Metadata[eventbus.CausationIDKey])
	// Output:
	// correlation: 0196b1f4-7c2a-7d3e-9f00-0123456789ab
	// causation:   0196b1f4-7c2a-7d3e-9f00-0123456789ab
}

// Stats and Health over HTTP, as JSON, beside a service's other endpoints.
func ExampleHTTPHandler() {
	bus := eventbus.New()
	eventbus.Subscribe(bus, orderCreated, "billing", func(context.Context, eventbus.Event[Order]) error { return nil })
	mux := http.NewServeMux()
	mux.Handle("/eventbus/", http.StripPrefix("/eventbus", eventbus.HTTPHandler(bus)))

	for _, path := range []string{"/eventbus/ready", "/eventbus/health"} {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		fmt.Print(path, " ", rec.Code, " ", rec.Body.String())
	}
	bus.Close(context.Background())
	// Output:
	// /eventbus/ready 200 ok
	// /eventbus/health 200 {
	//   "healthy": true,
	//   "closed": false,
	//   "subscriptions": [
	//     {
	//       "topic": "order.created",
	//       "name": "billing",
	//       "healthy": true,
	//       "problems": []
	//     }
	//   ]
	// }
}

// A command and its outcome in one call: the one handler of a request topic answers, with
// the caller's deadline on its ctx and the subscription's retries behind it.
func ExampleRequest() {
	type Quote struct{ Item string }
	type Price struct{ Cents int }
	quotes := eventbus.NewRequestTopic[Quote, Price]("pricing.quote")

	bus := eventbus.New()
	defer bus.Close(context.Background())
	if _, err := eventbus.Handle(bus, quotes, "pricing", func(ctx context.Context, ev eventbus.Event[Quote]) (Price, error) {
		return Price{Cents: 1250}, nil
	}); err != nil {
		fmt.Println(err)
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p, err := eventbus.Request(ctx, bus, quotes, Quote{Item: "lamp"})
	fmt.Println(p.Cents, err)
	// Output: 1250 <nil>
}
