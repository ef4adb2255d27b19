package eventbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestPublishBlocksWhenFullUntilRoomOrCtx(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		release := make(chan struct{})
		var handled atomic.Int32
		mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error {
			<-release
			handled.Add(1)
			return nil
		}, WithConcurrency(1), WithBuffer(2))
		mustPublish(t, b, orders, order{ID: "1"}) // running
		mustPublish(t, b, orders, order{ID: "2"}) // queued: the buffer is full

		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		if err := Publish(ctx, b, orders, order{ID: "3"}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Publish(full) = %v; want %v", err, context.DeadlineExceeded)
		}
		if d := time.Since(start); d != time.Second {
			t.Errorf("Publish(full) returned after %v; want the 1s ctx deadline", d)
		}
		cancelled, cancelNow := context.WithCancel(context.Background())
		cancelNow()
		if err := Publish(cancelled, b, orders, order{ID: "x"}); !errors.Is(err, context.Canceled) {
			t.Errorf("Publish(done ctx) = %v; want %v", err, context.Canceled)
		}

		// A blocked Publish gets in once room frees up.
		published := make(chan error)
		go func() { published <- Publish(context.Background(), b, orders, order{ID: "4"}) }()
		synctest.Wait()
		select {
		case err := <-published:
			t.Fatalf("Publish(full) = %v before there was room; want it to block", err)
		default:
		}
		close(release)
		if err := <-published; err != nil {
			t.Errorf("Publish(after room) = %v; want nil", err)
		}
		closeBus(t, b)
		if handled.Load() != 3 {
			t.Errorf("handled %d; want 3 (the timed-out publish was not accepted)", handled.Load())
		}
	})
}

// TestFanOutIsAllOrNothing: when one subscriber is full and the ctx ends, no subscriber
// gets the event.
func TestFanOutIsAllOrNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := New()
		release := make(chan struct{})
		var got [3]atomic.Int32
		for i := range 3 {
			var opts []SubscribeOption
			if i == 1 {
				opts = append(opts, WithBuffer(1), WithConcurrency(1))
			}
			mustSubscribe(t, b, orders, fmt.Sprint(i), func(context.Context, Event[order]) error {
				if i == 1 {
					<-release
				}
				got[i].Add(1)
				return nil
			}, opts...)
		}
		mustPublish(t, b, orders, order{}) // fills subscriber 1
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := Publish(ctx, b, orders, order{}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Publish(one subscriber full) = %v; want %v", err, context.DeadlineExceeded)
		}
		close(release)
		closeBus(t, b)
		for i := range got {
			if n := got[i].Load(); n != 1 {
				t.Errorf("subscriber %d handled %d events; want 1: the failed publish reached none", i, n)
			}
		}
	})
}

// TestMemoryIsBounded publishes far more than the buffer into a slow subscriber and checks
// that the subscription never holds more than its buffer.
func TestMemoryIsBounded(t *testing.T) {
	b := New()
	var peak atomic.Int64
	s := mustSubscribe(t, b, orders, "slow", func(context.Context, Event[order]) error {
		time.Sleep(10 * time.Microsecond)
		return nil
	}, WithBuffer(32), WithConcurrency(2))
	core := s.core
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 500 {
				mustPublish(t, b, orders, order{})
				if n := core.held.Load(); n > peak.Load() {
					peak.Store(n)
				}
			}
		})
	}
	wg.Wait()
	closeBus(t, b)
	if p := peak.Load(); p > 32 || p < 16 {
		t.Errorf("peak events held = %d; want the buffer to fill, but never past 32", p)
	}
}
