package watermillbus_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	watermillbus "github.com/ae30fb47/eventbus/bridge/watermill"
)

// runRouter starts router and returns a function that closes it and waits for Run.
func runRouter(t *testing.T, router *message.Router) (stop func()) {
	t.Helper()
	runErr := make(chan error, 1)
	go func() { runErr <- router.Run(context.Background()) }()
	select {
	case <-router.Running():
	case <-time.After(waitFor):
		t.Fatal("router not running")
	}
	return func() {
		if err := router.Close(); err != nil {
			t.Errorf("router.Close() = %v; want nil", err)
		}
		if err := <-runErr; err != nil {
			t.Errorf("router.Run() = %v; want nil", err)
		}
	}
}

// TestRouter runs a Watermill Router over a PubSub: a handler that fails or panics on some
// first attempts and forwards each message to a second topic, and a consumer handler of
// that topic. Every message must be forwarded and consumed once, in publish order per key,
// and the Router must close cleanly.
func TestRouter(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{})
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu       sync.Mutex
		attempts = map[string]int{}
		consumed []string
	)
	allConsumed := make(chan struct{})
	const n = 90
	router.AddHandler("forward", "in", ps, "out", ps, func(msg *message.Message) ([]*message.Message, error) {
		mu.Lock()
		attempts[msg.UUID]++
		first := attempts[msg.UUID] == 1
		mu.Unlock()
		i, _ := strconv.Atoi(string(msg.Payload[2:]))
		switch {
		case first && i%3 == 0:
			return nil, errors.New("flaky")
		case first && i%10 == 1:
			panic("flaky")
		}
		out := message.NewMessage(watermill.NewUUID(), msg.Payload)
		out.Metadata.Set(watermillbus.KeyMetadata, msg.Metadata.Get(watermillbus.KeyMetadata))
		return []*message.Message{out}, nil
	})
	router.AddConsumerHandler("consume", "out", ps, func(msg *message.Message) error {
		mu.Lock()
		defer mu.Unlock()
		consumed = append(consumed, string(msg.Payload))
		if len(consumed) == n {
			close(allConsumed)
		}
		return nil
	})
	stop := runRouter(t, router)

	var want []string
	for i := range n {
		key := strconv.Itoa(i % 3)
		msg := newMsg(key+"-"+strconv.Itoa(i), watermillbus.KeyMetadata, key)
		publish(t, ps, "in", msg)
		want = append(want, string(msg.Payload))
	}
	select {
	case <-allConsumed:
	case <-time.After(waitFor):
		t.Error("not every message consumed in time")
	}
	stop()
	mu.Lock()
	defer mu.Unlock()
	if !samePerKeyOrder(consumed, want) {
		t.Errorf("consumed %v; want every message once, in publish order per key", consumed)
	}
	for _, dl := range ps.deadLetters.all() {
		t.Errorf("dead letter %+v; want none", dl)
	}
}

// TestRouterCloseLetsHandlersFinish checks that closing the Router while a handler runs
// lets it finish: its message is acked, neither redelivered nor dead-lettered.
func TestRouterCloseLetsHandlersFinish(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{})
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	var calls, finished int
	router.AddConsumerHandler("slow", "t", ps, func(msg *message.Message) error {
		calls++
		close(started)
		time.Sleep(50 * time.Millisecond)
		finished++
		return nil
	})
	stop := runRouter(t, router)
	publishN(t, ps, "t", "m", 1)
	<-started
	stop()
	if calls != 1 || finished != 1 {
		t.Errorf("handler called %d times, finished %d; want 1 and 1", calls, finished)
	}
	if dls := ps.deadLetters.all(); len(dls) != 0 {
		t.Errorf("%d dead letters; want none", len(dls))
	}
}
