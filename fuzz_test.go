package eventbus

import (
	"context"
	"errors"
	"math"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus/internal/idset"
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

// FuzzSubscribeOptions: whatever the sizes and durations, Subscribe returns an error or a
// working subscription, and never panics.
func FuzzSubscribeOptions(f *testing.F) {
	f.Add(1, 1, 0, int64(0), int64(time.Second), 10, 3, int64(time.Second))
	f.Add(0, -3, 2, int64(-1), int64(0), 0, 0, int64(0))
	f.Add(-1, 1<<20, -1, int64(time.Nanosecond), int64(-5), -1, -1, int64(-1))
	f.Fuzz(func(t *testing.T, conc, buffer, attempts int, timeout, window int64, maxIDs, failures int, coolDown int64) {
		if conc > 64 || buffer > 1<<16 || attempts > 5 {
			t.Skip("too large to run in a fuzz iteration")
		}
		b := New(WithLogger(discardLogger), WithDeadLetter(DiscardDeadLetters))
		defer b.Close(context.Background())
		retry := RetryPolicy{MaxAttempts: attempts, InitialBackoff: time.Microsecond, MaxBackoff: time.Millisecond}
		opts := []SubscribeOption{WithConcurrency(conc), WithBuffer(buffer), WithRetry(retry)}
		valid := conc >= 1 && buffer >= 1 && attempts >= 0
		if timeout != 0 {
			opts = append(opts, WithHandlerTimeout(time.Duration(timeout)))
			valid = valid && timeout > 0
		}
		if window != 0 || maxIDs != 0 {
			opts = append(opts, WithDeduplication(time.Duration(window), maxIDs))
			valid = valid && window > 0 && maxIDs > 0 && maxIDs <= idset.MaxIDs
		}
		if failures != 0 || coolDown != 0 {
			opts = append(opts, WithCircuitBreaker(failures, time.Duration(coolDown)))
			valid = valid && failures > 0 && coolDown > 0
		}
		s, err := Subscribe(b, orders, "s", func(context.Context, Event[order]) error { return nil }, opts...)
		if (err == nil) != valid {
			t.Fatalf("Subscribe(concurrency %d, buffer %d, attempts %d, timeout %d, dedup %d/%d, breaker %d/%d) = %v; want an error exactly when invalid",
				conc, buffer, attempts, timeout, window, maxIDs, failures, coolDown, err)
		}
		// The handler succeeds, so only a timeout can fail an attempt; if that opens a
		// circuit, the event waits out its cool-down, which may be too long to wait for.
		mayWaitLong := timeout > 0 && failures > 0 && coolDown > int64(10*time.Millisecond)
		if s != nil && !mayWaitLong {
			err := Publish(context.Background(), b, orders, order{}, WithWait())
			if err != nil && !errors.Is(err, ErrHandlerTimeout) {
				t.Fatalf("Publish() = %v on a valid subscription", err)
			}
		}
	})
}

// FuzzKeyedDelivery routes a random stream of keyed events, some of whose attempts fail,
// through subscriptions of random concurrency: every event must end exactly once, and the
// events of each key must end in publish order.
func FuzzKeyedDelivery(f *testing.F) {
	f.Add([]byte{0, 1, 2, 0, 1, 2, 0x80, 0x81}, uint8(1))
	f.Add([]byte("aaaaabbbbbccccc"), uint8(4))
	f.Add([]byte{}, uint8(2))
	f.Fuzz(func(t *testing.T, stream []byte, conc uint8) {
		if len(stream) > 512 {
			stream = stream[:512]
		}
		b := New(WithLogger(discardLogger))
		var dls recorder
		type tagged struct{ Key, Seq int }
		topic := NewTopic[tagged]("fuzz")
		var mu sync.Mutex
		ended := map[int][]int{} // key -> sequence numbers, in the order they ended
		attempts := map[int]int{}
		mustSubscribe(t, b, topic, "s", func(_ context.Context, ev Event[tagged]) error {
			mu.Lock()
			defer mu.Unlock()
			attempts[ev.Payload.Seq]++
			if stream[ev.Payload.Seq]&0x80 != 0 && attempts[ev.Payload.Seq] == 1 {
				return errors.New("first attempt fails")
			}
			if stream[ev.Payload.Seq]&0x40 != 0 {
				return Permanent(errors.New("poison"))
			}
			ended[ev.Payload.Key] = append(ended[ev.Payload.Key], ev.Payload.Seq)
			return nil
		}, WithConcurrency(int(conc%8)+1), WithBuffer(16), WithDeadLetter(DeadLetterFunc(func(ctx context.Context, dl DeadLetter) error {
			p := dl.Event.Payload.(tagged)
			mu.Lock()
			ended[p.Key] = append(ended[p.Key], p.Seq)
			mu.Unlock()
			return dls.HandleDeadLetter(ctx, dl)
		})), WithRetry(fastRetry))
		for i, c := range stream {
			k := int(c & 0x07)
			key := ""
			if k != 0 {
				key = strconv.Itoa(k)
			}
			mustPublish(t, b, topic, tagged{Key: k, Seq: i}, WithKey(key))
		}
		closeBus(t, b)
		total := 0
		for k, seqs := range ended {
			total += len(seqs)
			if k != 0 && !slices.IsSorted(seqs) {
				t.Errorf("key %d: events ended in order %v; want publish order", k, seqs)
			}
		}
		if total != len(stream) {
			t.Errorf("%d events ended; want %d, each exactly once", total, len(stream))
		}
	})
}
