package eventbus

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// TestSubscriptionCloseRacesWithPublish removes and adds subscribers while publishers run,
// some removals with a deadline short enough to dead-letter. A subscriber that stays must
// end every event exactly once; one that leaves must never end an event twice, and must
// end every event it accepted (handled or dead-lettered) before its Close returns.
func TestSubscriptionCloseRacesWithPublish(t *testing.T) {
	b := New()
	topic := NewTopic[tagged]("churn")
	type tally struct {
		mu    sync.Mutex
		ended map[tagged]int
	}
	newTally := func() *tally { return &tally{ended: make(map[tagged]int)} }
	end := func(tl *tally, e tagged) {
		tl.mu.Lock()
		tl.ended[e]++
		tl.mu.Unlock()
	}
	subscribe := func(name string, tl *tally) *Subscription {
		hook := DeadLetterFunc(func(_ context.Context, dl DeadLetter) error {
			end(tl, dl.Event.Payload.(tagged))
			return nil
		})
		return mustSubscribe(t, b, topic, name, func(ctx context.Context, ev Event[tagged]) error {
			if ev.Payload.Seq%7 == 0 {
				return errFlaky
			}
			end(tl, ev.Payload)
			return nil
		}, WithBuffer(4), WithConcurrency(2), WithRetry(RetryPolicy{MaxAttempts: 2, InitialBackoff: 10 * time.Microsecond}), WithDeadLetter(hook))
	}
	stable := newTally()
	subscribe("stable", stable)

	accepted, stopPublishers := publishUntilStopped(t, 3, func(p, seq int) error {
		return Publish(context.Background(), b, topic, tagged{p, seq}, WithKey(fmt.Sprint(p, seq%5)))
	})
	type closed struct {
		tl *tally
		n  int // events ended when Close returned
	}
	var leavers []closed
	runWithin(t, 60*time.Second, func() {
		for round := range 60 {
			tl := newTally()
			s := subscribe(fmt.Sprint("leaving", round), tl)
			time.Sleep(time.Millisecond)
			ctx, cancel := context.WithTimeout(context.Background(), time.Duration(round%3)*time.Millisecond)
			err := s.Close(ctx)
			cancel()
			if err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("Subscription.Close() = %v", err)
			}
			tl.mu.Lock()
			for e, n := range tl.ended {
				if n != 1 {
					t.Errorf("leaving subscriber %d ended %v %d times", round, e, n)
				}
			}
			leavers = append(leavers, closed{tl, len(tl.ended)})
			tl.mu.Unlock()
		}
		stopPublishers()
		closeBus(t, b)
	})
	for i, l := range leavers {
		l.tl.mu.Lock()
		if n := len(l.tl.ended); n != l.n {
			t.Errorf("leaving subscriber %d ended %d events after its Close returned with %d", i, n-l.n, l.n)
		}
		l.tl.mu.Unlock()
	}
	stable.mu.Lock()
	defer stable.mu.Unlock()
	if int64(len(stable.ended)) != accepted.Load() {
		t.Errorf("stable subscriber ended %d events; want all %d accepted", len(stable.ended), accepted.Load())
	}
	for e, n := range stable.ended {
		if n != 1 {
			t.Errorf("stable subscriber ended %v %d times", e, n)
		}
	}
}
