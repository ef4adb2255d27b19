package eventbus

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

type hop struct{ TTL int }

// runWithin fails the test if f does not return within d: a deadlock shows as a failure
// with every goroutine's stack, not as a hung test binary.
func runWithin(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		buf := make([]byte, 1<<20)
		t.Fatalf("deadlock: not done after %v; goroutines:\n%s", d, buf[:runtime.Stack(buf, true)])
	}
}

// TestPublishFromHandlerChain: A's handler publishes to B, B's to C, all with buffer 1 and
// one worker, so every hop waits on a full buffer.
func TestPublishFromHandlerChain(t *testing.T) {
	b := New()
	a, bt, c := NewTopic[int]("a"), NewTopic[int]("b"), NewTopic[int]("c")
	var handled atomic.Int32
	opts := []SubscribeOption{WithBuffer(1), WithConcurrency(1)}
	mustSubscribe(t, b, a, "a", func(ctx context.Context, ev Event[int]) error {
		return Publish(ctx, b, bt, ev.Payload)
	}, opts...)
	mustSubscribe(t, b, bt, "b", func(ctx context.Context, ev Event[int]) error {
		return Publish(ctx, b, c, ev.Payload)
	}, opts...)
	mustSubscribe(t, b, c, "c", func(context.Context, Event[int]) error {
		time.Sleep(10 * time.Microsecond) // the end of the chain is the slowest
		handled.Add(1)
		return nil
	}, opts...)
	runWithin(t, 20*time.Second, func() {
		for i := range 300 {
			mustPublish(t, b, a, i)
		}
		closeBus(t, b)
	})
	if handled.Load() != 300 {
		t.Errorf("end of chain handled %d; want 300", handled.Load())
	}
}

// TestPublishFromHandlerCycle: handlers of A and B publish to each other (and A to itself)
// until each event's TTL runs out, under full one-slot buffers: a cycle of waits that
// deadlocks a bus with plain bounded queues.
func TestPublishFromHandlerCycle(t *testing.T) {
	for _, conc := range []int{1, 3} {
		t.Run(fmt.Sprintf("concurrency=%d", conc), func(t *testing.T) {
			var dls recorder
			b := New(WithDeadLetter(&dls))
			ta, tb := NewTopic[hop]("a"), NewTopic[hop]("b")
			var hops atomic.Int32
			forward := func(to Topic[hop], self bool) func(context.Context, Event[hop]) error {
				return func(ctx context.Context, ev Event[hop]) error {
					hops.Add(1)
					if ev.Payload.TTL == 0 {
						return nil
					}
					next := hop{ev.Payload.TTL - 1}
					if self {
						if err := Publish(ctx, b, ta, next); err != nil {
							return err
						}
					}
					return Publish(ctx, b, to, next)
				}
			}
			opts := []SubscribeOption{WithBuffer(1), WithConcurrency(conc), WithRetry(fastRetry)}
			mustSubscribe(t, b, ta, "a", forward(tb, false), opts...)
			mustSubscribe(t, b, tb, "b", forward(ta, true), opts...)
			runWithin(t, 20*time.Second, func() {
				for range 20 {
					mustPublish(t, b, ta, hop{TTL: 6})
				}
				closeBus(t, b)
			})
			if n := len(dls.all()); n > 0 {
				t.Errorf("%d dead letters, first %v; want none", n, dls.all()[0].Err)
			}
			// Each event with TTL t at A makes one at B with t-1; each at B makes two (A and
			// A again via its own topic... here: to A twice). Count: hops(A,t) = 1 + hops(B,t-1),
			// hops(B,t) = 1 + 2*hops(A,t-1) for t > 0, 1 for t = 0.
			var hopsA, hopsB func(int) int32
			hopsA = func(t int) int32 {
				if t == 0 {
					return 1
				}
				return 1 + hopsB(t-1)
			}
			hopsB = func(t int) int32 {
				if t == 0 {
					return 1
				}
				return 1 + 2*hopsA(t-1)
			}
			if want := 20 * hopsA(6); hops.Load() != want {
				t.Errorf("handled %d hops; want %d", hops.Load(), want)
			}
		})
	}
}

// TestNoLostWakeups hammers the hand-off between publishers and idle workers with buffers
// no larger than the intake ring, where a publisher never falls back to the locked path:
// a lost wake-up shows as a publisher waiting for room forever while the workers sleep.
func TestNoLostWakeups(t *testing.T) {
	n := 200_000
	if testing.Short() {
		n = 50_000
	}
	b := New()
	topic := NewTopic[int]("hammer")
	var handled atomic.Int64
	for i := range 10 {
		mustSubscribe(t, b, topic, fmt.Sprint(i), func(context.Context, Event[int]) error {
			handled.Add(1)
			return nil
		}, WithBuffer(64))
	}
	runWithin(t, 60*time.Second, func() {
		for i := range n {
			mustPublish(t, b, topic, i)
		}
		closeBus(t, b)
	})
	if got := handled.Load(); got != int64(10*n) {
		t.Errorf("handled %d; want %d", got, 10*n)
	}
}

// TestStallSeenWhenAWorkerGoesIdle pins down a lost wake-up that once deadlocked
// TestPublishFromHandlerCycle about once in a thousand runs. Subscription A (concurrency 2)
// has one handler blocked publishing to a gated C and another merely slow; B's handler
// waits for room in A. When the slow handler returns, A's only busy worker is blocked
// publishing and nothing else can run: A is stalled, and B's handler, which may be part of
// a cycle of waits, must be told to look again. Missing that wake-up leaves it waiting
// even though A has room.
func TestStallSeenWhenAWorkerGoesIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		ta, tb, tc := NewTopic[string]("a"), NewTopic[int]("b"), NewTopic[int]("c")
		slow, gateC := make(chan struct{}), make(chan struct{})
		mustSubscribe(t, b, tc, "c", func(context.Context, Event[int]) error {
			<-gateC
			return nil
		}, WithBuffer(1), WithConcurrency(1))
		mustSubscribe(t, b, ta, "a", func(ctx context.Context, ev Event[string]) error {
			switch ev.Payload {
			case "slow":
				<-slow
			case "publish":
				return Publish(ctx, b, tc, 2) // waits: C is full and not stalled
			}
			return nil
		}, WithBuffer(3), WithConcurrency(2))
		fromB := make(chan error, 1)
		mustSubscribe(t, b, tb, "b", func(ctx context.Context, ev Event[int]) error {
			err := Publish(ctx, b, ta, "from b")
			fromB <- err
			return err
		}, WithBuffer(1), WithConcurrency(1))

		mustPublish(t, b, tc, 1) // C's only worker waits on gateC: C is full
		synctest.Wait()
		mustPublish(t, b, ta, "slow")
		synctest.Wait()
		mustPublish(t, b, ta, "publish", WithKey("k"))
		time.Sleep(2 * tick) // an idle worker joins a busy one within a tick of the bus clock
		synctest.Wait()
		mustPublish(t, b, ta, "behind publish", WithKey("k")) // A is full: 3 held
		mustPublish(t, b, tb, 1)
		synctest.Wait()
		select {
		case err := <-fromB:
			t.Fatalf("B's handler published to a full A (err %v); want it to wait", err)
		default:
		}

		close(slow)
		synctest.Wait()
		select {
		case err := <-fromB:
			if err != nil {
				t.Errorf("B's handler: Publish = %v; want nil", err)
			}
		default:
			t.Fatal("B's handler still waits for room in A, which has room and is stalled")
		}
		close(gateC)
		closeBus(t, b)
	})
}

// TestFanOutHoldsNoRoomWhileItWaits: topic x has subscribers a then b (buffer 1,
// concurrency 1 each), and b's handler publishes to x. With b busy, an outside publisher
// that found a with room and b full must not keep a's room while it waits for b: b's
// handler then needs that room, and neither would ever return.
func TestFanOutHoldsNoRoomWhileItWaits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithLogger(discardLogger))
		x := NewTopic[int]("x")
		gate := make(chan struct{})
		var handledA, handledB atomic.Int32
		opts := []SubscribeOption{WithBuffer(1), WithConcurrency(1)}
		mustSubscribe(t, b, x, "a", func(context.Context, Event[int]) error {
			handledA.Add(1)
			return nil
		}, opts...)
		republished := make(chan error, 1)
		mustSubscribe(t, b, x, "b", func(ctx context.Context, ev Event[int]) error {
			handledB.Add(1)
			if ev.Payload == 1 {
				<-gate
				republished <- Publish(ctx, b, x, 3)
			}
			return nil
		}, opts...)
		mustPublish(t, b, x, 1) // b's handler is now busy with it, b full
		synctest.Wait()
		outside := make(chan error, 1)
		go func() { outside <- Publish(context.Background(), b, x, 2) }()
		synctest.Wait() // the outside publisher waits for b
		close(gate)
		synctest.Wait()
		select {
		case err := <-republished:
			if err != nil {
				t.Errorf("Publish from b's handler = %v; want nil", err)
			}
		default:
			t.Error("b's handler still waits for room in a, held by a publisher that waits for b: deadlock")
		}
		select {
		case err := <-outside:
			if err != nil {
				t.Errorf("outside Publish = %v; want nil", err)
			}
		default:
			t.Error("the outside publisher still waits for b: deadlock")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		b.Close(ctx)
		if handledA.Load() != 3 || handledB.Load() != 3 {
			t.Errorf("a handled %d, b %d; want 3 each", handledA.Load(), handledB.Load())
		}
	})
}

// TestFanOutWithARelayUnderLoad is the plain-load shape of the same deadlock: outside
// publishers and a relay subscriber that republishes to its own topic, under small buffers.
func TestFanOutWithARelayUnderLoad(t *testing.T) {
	for _, conc := range []int{1, 2} {
		t.Run(fmt.Sprintf("concurrency=%d", conc), func(t *testing.T) {
			b := New(WithLogger(discardLogger))
			x := NewTopic[hop]("x")
			var handled atomic.Int64
			opts := []SubscribeOption{WithBuffer(4), WithConcurrency(conc)}
			mustSubscribe(t, b, x, "sink", func(context.Context, Event[hop]) error {
				handled.Add(1)
				return nil
			}, opts...)
			mustSubscribe(t, b, x, "relay", func(ctx context.Context, ev Event[hop]) error {
				handled.Add(1)
				if ev.Payload.TTL == 0 {
					return nil
				}
				return Publish(ctx, b, x, hop{ev.Payload.TTL - 1})
			}, opts...)
			runWithin(t, 20*time.Second, func() {
				var wg sync.WaitGroup
				for range 4 {
					wg.Go(func() {
						for range 300 {
							if err := Publish(context.Background(), b, x, hop{TTL: 2}); err != nil {
								t.Errorf("Publish() = %v", err)
								return
							}
						}
					})
				}
				wg.Wait()
				closeBus(t, b)
			})
			// Each outside event makes 3 events (TTL 2, 1, 0), each handled by both.
			if want := int64(4 * 300 * 3 * 2); handled.Load() != want {
				t.Errorf("handled %d; want %d", handled.Load(), want)
			}
		})
	}
}

// TestWaitingHandlerLetsItsOutcomeIn: X's handler publishes WithWait to Y, whose handler
// publishes back to X, full with the event X's handler is running. A handler waiting for
// an outcome is blocked in a Publish as much as one waiting for room: X is stalled, and
// Y's publish gets in, or neither would ever return.
func TestWaitingHandlerLetsItsOutcomeIn(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		x, y := NewTopic[string]("x"), NewTopic[string]("y")
		waited := make(chan error, 1)
		var handledX atomic.Int32
		mustSubscribe(t, b, x, "x", func(ctx context.Context, ev Event[string]) error {
			handledX.Add(1)
			if ev.Payload == "start" {
				waited <- Publish(ctx, b, y, "ask", WithWait())
			}
			return nil
		}, WithBuffer(1), WithConcurrency(1))
		mustSubscribe(t, b, y, "y", func(ctx context.Context, ev Event[string]) error {
			return Publish(ctx, b, x, "answer")
		}, WithBuffer(1), WithConcurrency(1))
		mustPublish(t, b, x, "start")
		synctest.Wait()
		select {
		case err := <-waited:
			if err != nil {
				t.Errorf("Publish(WithWait) from X's handler = %v; want nil", err)
			}
		default:
			t.Fatal("X's handler still waits for Y, whose handler waits for room in X: deadlock")
		}
		closeBus(t, b)
		if handledX.Load() != 2 {
			t.Errorf("X handled %d events; want 2", handledX.Load())
		}
	})
}
