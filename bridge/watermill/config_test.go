package watermillbus_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	watermillbus "github.com/ae30fb47/eventbus/bridge/watermill"
)

func TestNewPanicsOnProgrammerErrors(t *testing.T) {
	bus := eventbus.New()
	t.Cleanup(func() { bus.Close(context.Background()) })
	tests := []struct {
		name string
		bus  *eventbus.Bus
		cfg  watermillbus.Config
		want string // in the panic message
	}{
		{"nil bus", nil, watermillbus.Config{}, "bus"},
		{"negative Buffer", bus, watermillbus.Config{Buffer: -1}, "Buffer"},
		{"negative Concurrency", bus, watermillbus.Config{Concurrency: -1}, "Concurrency"},
		{"negative CloseTimeout", bus, watermillbus.Config{CloseTimeout: -time.Second}, "CloseTimeout"},
		{"invalid Retry", bus, watermillbus.Config{Retry: &eventbus.RetryPolicy{Multiplier: 0.5}}, "Multiplier"},
		{"PoisonTopic and DeadLetter", bus, watermillbus.Config{PoisonTopic: "p", DeadLetter: eventbus.DiscardDeadLetters}, "PoisonTopic"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if s, _ := r.(string); !strings.Contains(s, tt.want) {
					t.Errorf("New panicked with %v; want a message naming %s", r, tt.want)
				}
			}()
			ps := watermillbus.New(tt.bus, tt.cfg)
			ps.Close()
		})
	}
}

func TestBadTopics(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{})
	if err := ps.Publish("", newMsg("x")); err == nil {
		t.Error("Publish to the empty topic = nil; want an error")
	}
	if _, err := ps.Subscribe(t.Context(), ""); err == nil {
		t.Error("Subscribe to the empty topic = nil; want an error")
	}
	_, err := eventbus.Subscribe(ps.bus, eventbus.NewTopic[int]("ints"), "native", func(context.Context, eventbus.Event[int]) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if err := ps.Publish("ints", newMsg("x")); err == nil {
		t.Error("Publish to a topic of ints = nil; want an error")
	}
	if _, err := ps.Subscribe(t.Context(), "ints"); err == nil {
		t.Error("Subscribe to a topic of ints = nil; want an error")
	}
}

// TestRetryPolicyIsCopied checks that changing a policy after New changes nothing.
func TestRetryPolicyIsCopied(t *testing.T) {
	policy := eventbus.RetryPolicy{MaxAttempts: 1}
	dls := &deadLetters{}
	ps := newPubSub(t, watermillbus.Config{Retry: &policy, DeadLetter: dls})
	policy.MaxAttempts = 5
	ch := subscribe(t, ps, "t")
	publishN(t, ps, "t", "m", 1)
	receive(t, ch).Nack()
	waitDeadLetters(t, dls, 1)
}
