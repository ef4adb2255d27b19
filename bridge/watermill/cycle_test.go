package watermillbus_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"

	watermillbus "github.com/ae30fb47/eventbus/bridge/watermill"
)

// Handlers in a cycle pass each of cycleMessages messages back and forth cycleHops times,
// through subscriptions of cycleBuffer messages: far more than fit, so each handler soon
// waits on a full subscription of the other's.
const (
	cycleMessages = 64
	cycleHops     = 20
	cycleBuffer   = 16
)

// seedContext is the context of the messages that start a cycle off: their Publish waits
// for room while the cycle runs, and fails the test, rather than hang it, if the cycle is
// deadlocked.
func seedContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitFor)
	t.Cleanup(cancel)
	return ctx
}

// waitCycle waits until done counts every message through, failing the test if that takes
// longer than waitFor (the cycle is then deadlocked).
func waitCycle(t *testing.T, done *atomic.Int64) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for done.Load() < cycleMessages && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := done.Load(); got != cycleMessages {
		t.Fatalf("%d of %d messages through the cycle within %v; want all (deadlocked?)", got, cycleMessages, waitFor)
	}
}

// TestRouterCycle runs two Router handlers in a cycle, X to Y and Y to X, whose produced
// messages carry the context of the message handled: set by the handler, or by the
// PropagateContext middleware. The bus must see their Publish as made by its handlers and
// let the messages in over the full subscriptions, rather than deadlock.
func TestRouterCycle(t *testing.T) {
	for _, tt := range []struct {
		name       string
		middleware bool // PropagateContext, else the handler sets the context
	}{
		{"handler sets the context", false},
		{"PropagateContext", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ps := newPubSub(t, watermillbus.Config{Buffer: cycleBuffer})
			router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			if tt.middleware {
				router.AddMiddleware(watermillbus.PropagateContext)
			}
			var done atomic.Int64
			pass := func(msg *message.Message) ([]*message.Message, error) {
				hop, _ := strconv.Atoi(msg.Metadata.Get("hop"))
				if hop == cycleHops {
					done.Add(1)
					return nil, nil
				}
				// A key per message: no message waits behind another of its key.
				out := newMsg(string(msg.Payload), "hop", strconv.Itoa(hop+1), watermillbus.KeyMetadata, string(msg.Payload))
				if !tt.middleware {
					out.SetContext(msg.Context())
				}
				return []*message.Message{out}, nil
			}
			router.AddHandler("x", "X", ps, "Y", ps, pass)
			router.AddHandler("y", "Y", ps, "X", ps, pass)
			stop := runRouter(t, router)
			defer stop()
			ctx := seedContext(t)
			for i := range cycleMessages {
				p := "m" + strconv.Itoa(i)
				msg := newMsg(p, "hop", "0", watermillbus.KeyMetadata, p)
				msg.SetContext(ctx)
				publish(t, ps, "X", msg)
			}
			waitCycle(t, &done)
		})
	}
}

type ping struct{ ID, Hop int }
type pong struct{ ID, Hop int }

// TestCQRSCycle runs two CQRS event handlers in a cycle, each publishing the other's event
// with the context it is given, as CQRS handlers do: no middleware is needed for the bus to
// see those Publish calls as made by its handlers. Each handler is a consumer group of one
// consumer, so Concurrency is 1.
func TestCQRSCycle(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{Buffer: cycleBuffer, Concurrency: 1})
	eventBus, processor, router := newCQRS(t, ps.PubSub)
	var done atomic.Int64
	err := processor.AddHandlers(
		cqrs.NewEventHandler("on-ping", func(ctx context.Context, ev *ping) error {
			if ev.Hop == cycleHops {
				done.Add(1)
				return nil
			}
			return eventBus.Publish(ctx, &pong{ev.ID, ev.Hop + 1})
		}),
		cqrs.NewEventHandler("on-pong", func(ctx context.Context, ev *pong) error {
			return eventBus.Publish(ctx, &ping{ev.ID, ev.Hop + 1})
		}),
	)
	if err != nil {
		t.Fatal(err)
	}
	stop := runRouter(t, router)
	defer stop()
	ctx := seedContext(t)
	for i := range cycleMessages {
		if err := eventBus.Publish(ctx, &ping{ID: i}); err != nil {
			t.Fatalf("EventBus.Publish() = %v", err)
		}
	}
	waitCycle(t, &done)
}

// TestRouterFanOutRelay runs the shape that deadlocked a fan-out before publishers stopped
// holding room while they wait: topic X has two consumer groups, a sink and a relay that
// publishes each message back to X (with the handled message's context) until it has made
// two hops, while outside publishers keep X's small subscriptions full.
func TestRouterFanOutRelay(t *testing.T) {
	const publishers, each, hops = 4, 300, 2
	for _, concurrency := range []int{1, 2} {
		t.Run("concurrency="+strconv.Itoa(concurrency), func(t *testing.T) {
			ps := newPubSub(t, watermillbus.Config{Buffer: 4, Concurrency: concurrency})
			router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
			if err != nil {
				t.Fatal(err)
			}
			router.AddMiddleware(watermillbus.PropagateContext)
			var sunk, relayed atomic.Int64
			router.AddConsumerHandler("sink", "X", ps.NewSubscriber("sink"), func(*message.Message) error {
				sunk.Add(1)
				return nil
			})
			router.AddHandler("relay", "X", ps.NewSubscriber("relay"), "X", ps, func(msg *message.Message) ([]*message.Message, error) {
				relayed.Add(1)
				hop, _ := strconv.Atoi(msg.Metadata.Get("hop"))
				if hop == hops {
					return nil, nil
				}
				return []*message.Message{newMsg(string(msg.Payload), "hop", strconv.Itoa(hop+1))}, nil
			})
			stop := runRouter(t, router)
			defer stop()
			ctx := seedContext(t)
			var wg sync.WaitGroup
			for p := range publishers {
				wg.Go(func() {
					for i := range each {
						msg := newMsg(strconv.Itoa(p)+"-"+strconv.Itoa(i), "hop", "0")
						msg.SetContext(ctx)
						if err := ps.Publish("X", msg); err != nil {
							t.Errorf("Publish() = %v; want nil (deadlocked?)", err)
							return
						}
					}
				})
			}
			wg.Wait()
			want := int64(publishers * each * (hops + 1))
			deadline := time.Now().Add(waitFor)
			for (sunk.Load() < want || relayed.Load() < want) && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			if sunk.Load() != want || relayed.Load() != want {
				t.Errorf("sink handled %d, relay %d; want %d each (deadlocked?)", sunk.Load(), relayed.Load(), want)
			}
		})
	}
}
