package eventbus

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a dead-letter hook that keeps what it receives.
type recorder struct {
	mu  sync.Mutex
	dls []DeadLetter
}

func (r *recorder) HandleDeadLetter(_ context.Context, dl DeadLetter) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dls = append(r.dls, dl)
	return nil
}

func (r *recorder) all() []DeadLetter {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]DeadLetter(nil), r.dls...)
}

// mustSubscribe subscribes or fails the test.
func mustSubscribe[T any](t testing.TB, b *Bus, topic Topic[T], name string, h func(context.Context, Event[T]) error, opts ...SubscribeOption) *Subscription {
	t.Helper()
	s, err := Subscribe(b, topic, name, h, opts...)
	if err != nil {
		t.Fatalf("Subscribe(%q) = %v; want nil", name, err)
	}
	return s
}

// mustPublish publishes or fails the test.
func mustPublish[T any](t testing.TB, b *Bus, topic Topic[T], payload T, opts ...PublishOption) {
	t.Helper()
	if err := Publish(context.Background(), b, topic, payload, opts...); err != nil {
		t.Fatalf("Publish(%v) = %v; want nil", payload, err)
	}
}

// closeBus closes b, failing the test if that takes longer than a generous bound.
func closeBus(t testing.TB, b *Bus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close() = %v; want nil", err)
	}
}

// fastRetry retries quickly, so tests without synctest do not wait.
var fastRetry = RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Microsecond, MaxBackoff: 10 * time.Microsecond}

// discardLogger drops everything, for tests whose bus logs by design.
var discardLogger = slog.New(slog.DiscardHandler)

// publishUntilStopped runs n publishers: publisher p calls publish(p, seq) for seq = 0,
// 1, ... until stop is called, counting each nil result in the returned count, and
// reporting an error with t.Errorf and stopping. Call stop to end them; it returns once
// they have, so the count is final then.
func publishUntilStopped(t testing.TB, n int, publish func(p, seq int) error) (accepted *atomic.Int64, stop func()) {
	accepted = new(atomic.Int64)
	done := make(chan struct{})
	var publishers sync.WaitGroup
	for p := range n {
		publishers.Go(func() {
			for seq := 0; ; seq++ {
				select {
				case <-done:
					return
				default:
				}
				if err := publish(p, seq); err != nil {
					t.Errorf("Publish() = %v", err)
					return
				}
				accepted.Add(1)
			}
		})
	}
	return accepted, func() {
		close(done)
		publishers.Wait()
	}
}
