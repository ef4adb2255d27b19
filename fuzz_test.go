package eventbus

import (
	"context"
	"math"
	"testing"
	"time"
)

// FuzzRetryPolicy: a policy is either rejected by withDefaults or yields waits that never
// decrease before jitter and always lie within [0, MaxBackoff] after it.
func FuzzRetryPolicy(f *testing.F) {
	f.Add(3, int64(100*time.Millisecond), int64(10*time.Second), 2.0, 0.2)
	f.Add(0, int64(0), int64(0), 0.0, 0.0)
	f.Add(100, int64(1), int64(math.MaxInt64), 1e308, 1.0)
	f.Add(-1, int64(-5), int64(3), math.NaN(), -0.5)
	f.Fuzz(func(t *testing.T, attempts int, initial, maxWait int64, mult, jitter float64) {
		p := RetryPolicy{MaxAttempts: attempts, InitialBackoff: time.Duration(initial), MaxBackoff: time.Duration(maxWait), Multiplier: mult, Jitter: jitter}
		q, err := p.withDefaults()
		if err != nil {
			return
		}
		if q.MaxAttempts < 1 || q.InitialBackoff <= 0 || q.MaxBackoff < q.InitialBackoff || !(q.Multiplier >= 1) || q.Jitter < 0 || q.Jitter > 1 {
			t.Fatalf("%+v.withDefaults() = %+v; want a complete, valid policy", p, q)
		}
		prev := time.Duration(0)
		for n := 1; n <= 80; n++ {
			base := q.baseBackoff(n)
			if base < prev || base > q.MaxBackoff {
				t.Fatalf("%+v: baseBackoff(%d) = %v after %v; want non-decreasing, at most %v", q, n, base, prev, q.MaxBackoff)
			}
			prev = base
			if d := q.backoff(n); d < 0 || d > base {
				t.Fatalf("%+v: backoff(%d) = %v; want within [0, %v]", q, n, d, base)
			}
		}
	})
}

// FuzzSubscribeOptions: whatever the sizes, Subscribe returns an error or a working
// subscription, and never panics.
func FuzzSubscribeOptions(f *testing.F) {
	f.Add(1, 1, 0)
	f.Add(0, -3, 2)
	f.Add(-1, 1<<20, -1)
	f.Fuzz(func(t *testing.T, conc, buffer, attempts int) {
		if conc > 64 || buffer > 1<<16 {
			t.Skip("too large to start in a fuzz iteration")
		}
		b := New()
		defer b.Close(context.Background())
		s, err := Subscribe(b, orders, "s", func(context.Context, Event[order]) error { return nil },
			WithConcurrency(conc), WithBuffer(buffer), WithRetry(RetryPolicy{MaxAttempts: attempts}))
		valid := conc >= 1 && buffer >= 1 && attempts >= 0
		if (err == nil) != valid {
			t.Fatalf("Subscribe(concurrency %d, buffer %d, attempts %d) = %v; want an error exactly when invalid", conc, buffer, attempts, err)
		}
		if s != nil {
			if err := Publish(context.Background(), b, orders, order{}, WithWait()); err != nil {
				t.Fatalf("Publish() = %v on a valid subscription", err)
			}
		}
	})
}
