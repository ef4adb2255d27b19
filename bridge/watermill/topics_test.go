package watermillbus

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ae30fb47/eventbus"
)

// TestTopicsInUseOnly checks that a PubSub holds state only for the topics it uses: a
// topic's state goes with its last subscription, publishing to a topic without one makes
// none, and the Topic values it keeps stay under maxTopicValues however many names it saw.
func TestTopicsInUseOnly(t *testing.T) {
	bus := eventbus.New()
	ps := New(bus, Config{})
	t.Cleanup(func() {
		ps.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := bus.Close(ctx); err != nil {
			t.Errorf("bus.Close() = %v; want nil", err)
		}
	})
	if _, err := ps.Subscribe(t.Context(), "kept"); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		ctx, cancel := context.WithCancel(t.Context())
		ch, err := ps.Subscribe(ctx, "subscribed"+strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		for range ch { // closed once the subscription is counted out
		}
	}
	for i := range maxTopicValues + 100 {
		name := "published" + strconv.Itoa(i)
		if err := ps.Publish(name, message.NewMessage(watermill.NewUUID(), nil)); err != nil {
			t.Fatalf("Publish(%q) = %v; want nil", name, err)
		}
	}

	var names []string
	ps.h.topics.Range(func(name, _ any) bool {
		names = append(names, name.(string))
		return true
	})
	if len(names) != 1 || names[0] != "kept" {
		t.Errorf("PubSub holds the state of %d topics (%q...); want only [\"kept\"]", len(names), names[:min(len(names), 5)])
	}
	ps.h.topicValues.mu.Lock()
	n := ps.h.topicValues.n
	ps.h.topicValues.mu.Unlock()
	if n > maxTopicValues {
		t.Errorf("PubSub holds %d Topic values; want at most %d", n, maxTopicValues)
	}
}
