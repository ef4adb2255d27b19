package watermillbus_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"

	watermillbus "github.com/ae30fb47/eventbus/bridge/watermill"
)

type orderPlaced struct {
	OrderID string
}

// TestCQRS runs Watermill's CQRS event bus and event processor over a PubSub, each event
// handler in a consumer group of its own, as is usual with CQRS: each handler must handle
// each event once.
func TestCQRS(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{})
	eventBus, processor, router := newCQRS(t, ps.PubSub)
	var (
		mu      sync.Mutex
		handled = map[string][]string{}
		wg      sync.WaitGroup
	)
	wg.Add(2 * 5)
	for _, name := range []string{"billing", "shipping"} {
		err := processor.AddHandlers(cqrs.NewEventHandler(name, func(_ context.Context, ev *orderPlaced) error {
			mu.Lock()
			handled[name] = append(handled[name], ev.OrderID)
			mu.Unlock()
			wg.Done()
			return nil
		}))
		if err != nil {
			t.Fatal(err)
		}
	}
	stop := runRouter(t, router)
	want := []string{"o1", "o2", "o3", "o4", "o5"}
	for _, id := range want {
		if err := eventBus.Publish(t.Context(), &orderPlaced{OrderID: id}); err != nil {
			t.Fatalf("EventBus.Publish() = %v", err)
		}
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(waitFor):
		t.Error("events not handled in time")
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	for _, name := range []string{"billing", "shipping"} {
		if got := handled[name]; !slices.Equal(got, want) {
			t.Errorf("%s handled %v; want %v", name, got, want)
		}
	}
}

// newCQRS returns a CQRS event bus over ps, whose topics are the events' names, and an
// event processor on a new Router that makes each handler a consumer group of ps of its
// own, named after the handler.
func newCQRS(t *testing.T, ps *watermillbus.PubSub) (*cqrs.EventBus, *cqrs.EventProcessor, *message.Router) {
	t.Helper()
	marshaler := cqrs.JSONMarshaler{}
	eventBus, err := cqrs.NewEventBusWithConfig(ps, cqrs.EventBusConfig{
		GeneratePublishTopic: func(p cqrs.GenerateEventPublishTopicParams) (string, error) { return p.EventName, nil },
		Marshaler:            marshaler,
	})
	if err != nil {
		t.Fatal(err)
	}
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	processor, err := cqrs.NewEventProcessorWithConfig(router, cqrs.EventProcessorConfig{
		GenerateSubscribeTopic: func(p cqrs.EventProcessorGenerateSubscribeTopicParams) (string, error) {
			return p.EventName, nil
		},
		SubscriberConstructor: func(p cqrs.EventProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return ps.NewSubscriber(p.HandlerName), nil
		},
		Marshaler: marshaler,
	})
	if err != nil {
		t.Fatal(err)
	}
	return eventBus, processor, router
}
