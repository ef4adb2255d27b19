package eventbus

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type tagged struct {
	Publisher, Seq int
}

// ledger records, per subscriber, how each event ended, and checks per-key order of endings.
type ledger struct {
	mu       sync.Mutex
	outcomes map[string]map[tagged][2]int // subscriber -> event -> {handled, dead-lettered}
	lastSeq  map[string]int               // subscriber+key -> last ended seq
	reorders int
}

func newLedger() *ledger {
	return &ledger{outcomes: make(map[string]map[tagged][2]int), lastSeq: make(map[string]int)}
}

func (l *ledger) end(sub string, ev Event[tagged], deadLettered bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.outcomes[sub]
	if m == nil {
		m = make(map[tagged][2]int)
		l.outcomes[sub] = m
	}
	o := m[ev.Payload]
	if deadLettered {
		o[1]++
	} else {
		o[0]++
	}
	m[ev.Payload] = o
	k := sub + "/" + ev.Key
	if last, ok := l.lastSeq[k]; ok && ev.Payload.Seq <= last {
		l.reorders++
	}
	l.lastSeq[k] = ev.Payload.Seq
}

var seed = maphash.MakeSeed()

// fate decides, the same way every time, what attempt n of event e at subscriber sub does.
func fate(sub string, e tagged, n int) int {
	return int(maphash.Comparable(seed, fmt.Sprint(sub, e, n)) % 100)
}

// runInvariantLoad publishes from several goroutines into several subscribers whose handlers
// fail 20% of attempts (some permanently) and panic in 3%, then closes the bus with the
// given deadline. It checks that every accepted event ended exactly once per subscriber,
// that per-key endings kept publish order, and returns the number of events accepted.
func runInvariantLoad(t *testing.T, perPublisher int, delay, closeAfter, deadline time.Duration) (accepted, dead, closed int) {
	const publishers, keys = 4, 50
	l := newLedger()
	var closedDLs atomic.Int32
	b := New(WithDeadLetter(DeadLetterFunc(func(_ context.Context, dl DeadLetter) error {
		if errors.Is(dl.Err, ErrClosed) {
			closedDLs.Add(1)
		}
		ev := Event[tagged]{Key: dl.Event.Key, Payload: dl.Event.Payload.(tagged)}
		l.end(dl.Subscriber, ev, true)
		return nil
	})))
	subs := []struct {
		name       string
		conc, size int
	}{{"c1", 1, 64}, {"c2", 2, 128}, {"c4", 4, 256}}
	topic := NewTopic[tagged]("load")
	for _, s := range subs {
		attempts := sync.Map{}
		mustSubscribe(t, b, topic, s.name, func(ctx context.Context, ev Event[tagged]) error {
			v, _ := attempts.LoadOrStore(ev.Payload, new(atomic.Int32))
			n := int(v.(*atomic.Int32).Add(1))
			if delay > 0 {
				time.Sleep(delay)
			}
			switch f := fate(s.name, ev.Payload, n); {
			case f < 3:
				panic("handler bug")
			case f < 5:
				return Permanent(errors.New("bad event"))
			case f < 23:
				return errFlaky
			}
			l.end(s.name, ev, false)
			return nil
		}, WithConcurrency(s.conc), WithBuffer(s.size), WithRetry(RetryPolicy{MaxAttempts: 3, InitialBackoff: 20 * time.Microsecond, MaxBackoff: 100 * time.Microsecond}))
	}
	acceptedBy := make([][]tagged, publishers)
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for seq := range perPublisher {
				e := tagged{p, seq}
				err := Publish(context.Background(), b, topic, e, WithKey(fmt.Sprintf("p%d-k%d", p, seq%keys)))
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("Publish() = %v; want nil or ErrClosed", err)
					return
				}
				acceptedBy[p] = append(acceptedBy[p], e)
			}
		})
	}
	ctx := context.Background()
	if closeAfter > 0 {
		time.Sleep(closeAfter)
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, deadline)
		defer cancel()
	} else {
		wg.Wait()
	}
	if err := b.Close(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Close() = %v", err)
	}
	wg.Wait()

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.reorders > 0 {
		t.Errorf("%d per-key reorderings; want 0", l.reorders)
	}
	for _, evs := range acceptedBy {
		accepted += len(evs)
	}
	for _, s := range subs {
		m := l.outcomes[s.name]
		lost, twice := 0, 0
		for _, evs := range acceptedBy {
			for _, e := range evs {
				switch o := m[e]; {
				case o[0]+o[1] == 0:
					lost++
				case o[0]+o[1] > 1:
					twice++
				}
				dead += m[e][1]
			}
		}
		if lost > 0 || twice > 0 || len(m) != accepted {
			t.Errorf("subscriber %s: %d lost, %d ended more than once, %d ended of %d accepted; want each accepted event to end once",
				s.name, lost, twice, len(m), accepted)
		}
	}
	return accepted, dead, int(closedDLs.Load())
}

func TestEveryAcceptedEventEndsExactlyOnce(t *testing.T) {
	n := 10_000
	if testing.Short() {
		n = 2_000
	}
	accepted, dead, _ := runInvariantLoad(t, n, 0, 0, 0)
	if accepted != 4*n {
		t.Errorf("accepted %d; want %d", accepted, 4*n)
	}
	if dead == 0 {
		t.Errorf("no dead letters; the load was meant to exhaust some retries")
	}
}

func TestEveryAcceptedEventEndsExactlyOnceWhenCloseCutsIn(t *testing.T) {
	// Handlers take 200µs, so the 64-event buffer of the one-worker subscriber alone needs
	// over 10ms to drain: the 5ms deadline cuts the drain short.
	accepted, dead, closed := runInvariantLoad(t, 1_000_000, 200*time.Microsecond, 30*time.Millisecond, 5*time.Millisecond)
	t.Logf("accepted %d events before Close, %d dead letters, %d of them for ErrClosed", accepted, dead, closed)
	if accepted == 0 || closed == 0 {
		t.Errorf("accepted %d, dead-lettered %d by Close; want Close to cut in on a running load", accepted, closed)
	}
}
