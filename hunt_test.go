package eventbus

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The deadlock hunt: random topologies of topics, fan-out and handlers that publish
// (chains, cycles, self-loops, WithWait, circuit breakers, failing attempts, buffers of 1 to
// 8, concurrency 1 to 3), each run until Close, asserting that every Publish returns, that
// Close drains, and that every accepted event ends exactly once for every subscriber of its
// topic (and a refused one for none). Each topology comes from a seed, printed on failure,
// so that it can be run again alone:
//
//	go test -run TestDeadlockHunt -hunt.seed 1234 -hunt.rounds 1
//	go test -run TestDeadlockHunt -hunt.rounds 5000 -timeout 2h   # the long hunt
var (
	huntSeed   = flag.Uint64("hunt.seed", 1, "seed of the deadlock hunt's first topology")
	huntRounds = flag.Int("hunt.rounds", 40, "topologies the deadlock hunt runs")
)

// huntEvent is a hunt's payload: its ledger number, and the hops it may still make.
type huntEvent struct {
	Seq  uint64
	Hops int
}

// huntAction is what a handler does on each attempt: publish to a topic, maybe waiting for
// the outcome, while its event has hops left.
type huntAction struct {
	to   int
	wait bool
	key  bool // publish with the handled event's key
}

type huntSubscriber struct {
	name        string
	buffer      int
	concurrency int
	attempts    int
	failPercent int // of attempts, decided per (event, attempt)
	failFirst   bool
	breaker     bool
	actions     []huntAction
}

type huntTopology struct {
	seed       uint64
	topics     [][]huntSubscriber // by topic, its subscribers
	publishers int
	events     int // per publisher
	hops       int // of an event published from outside, at most
	waitOut    bool
}

// newHuntTopology draws a topology from seed. A WithWait action only goes to a topic of
// a higher number: a handler that waits for an outcome must not wait, through others, for
// a free worker of its own subscription (see WithWait). Other actions go anywhere.
func newHuntTopology(seed uint64) huntTopology {
	r := rand.New(rand.NewPCG(seed, 0x9e3779b97f4a7c15))
	topo := huntTopology{
		seed:       seed,
		topics:     make([][]huntSubscriber, 1+r.IntN(4)),
		publishers: 1 + r.IntN(3),
		events:     20 + r.IntN(60),
		hops:       1 + r.IntN(2),
		waitOut:    r.IntN(4) == 0,
	}
	for t := range topo.topics {
		for s := range 1 + r.IntN(3) {
			sub := huntSubscriber{
				name:        fmt.Sprintf("t%d/s%d", t, s),
				buffer:      1 + r.IntN(8),
				concurrency: 1 + r.IntN(3),
				attempts:    1 + r.IntN(3),
				failPercent: []int{0, 0, 10, 30}[r.IntN(4)],
				failFirst:   r.IntN(2) == 0,
				breaker:     r.IntN(4) == 0,
			}
			for range r.IntN(3) {
				a := huntAction{to: r.IntN(len(topo.topics)), key: r.IntN(2) == 0}
				if a.to > t && r.IntN(3) == 0 {
					a.wait = true
				}
				sub.actions = append(sub.actions, a)
			}
			topo.topics[t] = append(topo.topics[t], sub)
		}
	}
	return topo
}

func (topo huntTopology) String() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "seed %d: %d publishers x %d events of up to %d hops (WithWait: %v)\n",
		topo.seed, topo.publishers, topo.events, topo.hops, topo.waitOut)
	for t, subs := range topo.topics {
		for _, s := range subs {
			fmt.Fprintf(&sb, "  topic %d, %s: buffer %d, concurrency %d, %d attempts, %d%% failing (first: %v), breaker %v, actions %+v\n",
				t, s.name, s.buffer, s.concurrency, s.attempts, s.failPercent, s.failFirst, s.breaker, s.actions)
		}
	}
	return sb.String()
}

// huntLedger records every event published and how each subscriber ended it.
type huntLedger struct {
	mu    sync.Mutex
	topic map[uint64]int            // event -> its topic
	taken map[uint64]bool           // event -> accepted by Publish
	ended map[uint64]map[string]int // event -> subscriber -> times it ended
	errs  []string                  // unexpected results
	seq   atomic.Uint64
}

func newHuntLedger() *huntLedger {
	return &huntLedger{topic: map[uint64]int{}, taken: map[uint64]bool{}, ended: map[uint64]map[string]int{}}
}

func (l *huntLedger) next(topic int) uint64 {
	seq := l.seq.Add(1)
	l.mu.Lock()
	l.topic[seq] = topic
	l.mu.Unlock()
	return seq
}

// published records Publish's result for event seq: accepted if nil, or if it only
// reports the subscribers' own outcomes (WithWait).
func (l *huntLedger) published(seq uint64, err error) {
	accepted := err == nil || onlyDeliveryErrors(err)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.taken[seq] = accepted
	if !accepted {
		l.errs = append(l.errs, fmt.Sprintf("Publish(event %d) = %v; want nil", seq, err))
	}
}

func (l *huntLedger) end(seq uint64, sub string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := l.ended[seq]
	if m == nil {
		m = map[string]int{}
		l.ended[seq] = m
	}
	m[sub]++
}

// onlyDeliveryErrors reports whether err joins *DeliveryError values only.
func onlyDeliveryErrors(err error) bool {
	var de *DeliveryError
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range joined.Unwrap() {
			if !errors.As(e, &de) {
				return false
			}
		}
		return true
	}
	return errors.As(err, &de)
}

// check returns what the ledger shows went wrong, at most a few lines of it.
func (l *huntLedger) check(topo huntTopology) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	problems := append([]string(nil), l.errs...)
	for seq, t := range l.topic {
		taken, known := l.taken[seq]
		for _, s := range topo.topics[t] {
			n := l.ended[seq][s.name]
			switch {
			case !known:
				problems = append(problems, fmt.Sprintf("event %d: Publish never returned", seq))
			case taken && n != 1:
				problems = append(problems, fmt.Sprintf("event %d (topic %d), accepted: ended %d times for %s; want once", seq, t, n, s.name))
			case !taken && n != 0:
				problems = append(problems, fmt.Sprintf("event %d (topic %d), refused: ended %d times for %s; want never", seq, t, n, s.name))
			}
			if !known {
				break
			}
		}
		if len(problems) > 10 {
			break
		}
	}
	return problems
}

// runHunt runs one topology to the end and returns what went wrong. It sends its bus on
// made, for a report of its state should it not return.
func runHunt(topo huntTopology, made chan<- *Bus) []string {
	ledger := newHuntLedger()
	b := New(WithLogger(discardLogger), WithDeadLetter(DeadLetterFunc(func(_ context.Context, dl DeadLetter) error {
		ledger.end(dl.Event.Payload.(huntEvent).Seq, dl.Subscriber)
		return nil
	})))
	made <- b
	topics := make([]Topic[huntEvent], len(topo.topics))
	for t := range topics {
		topics[t] = NewTopic[huntEvent](fmt.Sprintf("hunt.%d", t))
	}
	publish := func(ctx context.Context, t int, hops int, key string, wait bool) error {
		seq := ledger.next(t)
		opts := []PublishOption{WithKey(key)}
		if wait {
			opts = append(opts, WithWait())
		}
		err := Publish(ctx, b, topics[t], huntEvent{Seq: seq, Hops: hops}, opts...)
		ledger.published(seq, err)
		return err
	}
	for t, subs := range topo.topics {
		for _, sub := range subs {
			opts := []SubscribeOption{
				WithBuffer(sub.buffer), WithConcurrency(sub.concurrency),
				WithRetry(RetryPolicy{MaxAttempts: sub.attempts, InitialBackoff: 20 * time.Microsecond, MaxBackoff: 200 * time.Microsecond}),
			}
			if sub.breaker {
				opts = append(opts, WithCircuitBreaker(2, 300*time.Microsecond))
			}
			var attempts sync.Map // event -> attempts so far
			_, err := Subscribe(b, topics[t], sub.name, func(ctx context.Context, ev Event[huntEvent]) error {
				n, _ := attempts.LoadOrStore(ev.Payload.Seq, new(atomic.Int32))
				attempt := n.(*atomic.Int32).Add(1)
				h := ev.Payload.Seq*0x9e3779b97f4a7c15 ^ uint64(attempt)*0xbf58476d1ce4e5b9 ^ uint64(len(sub.name))
				fail := int(h%100) < sub.failPercent
				if fail && sub.failFirst {
					return errFlaky
				}
				if ev.Payload.Hops > 0 {
					for _, a := range sub.actions {
						key := ""
						if a.key {
							key = ev.Key
						}
						if err := publish(ctx, a.to, ev.Payload.Hops-1, key, a.wait); err != nil && !onlyDeliveryErrors(err) {
							return err
						}
					}
				}
				if h%7 == 0 {
					runtime.Gosched()
				}
				if fail {
					return errFlaky
				}
				ledger.end(ev.Payload.Seq, sub.name)
				return nil
			}, opts...)
			if err != nil {
				return []string{fmt.Sprintf("Subscribe(%s) = %v", sub.name, err)}
			}
		}
	}
	var publishers sync.WaitGroup
	for p := range topo.publishers {
		r := rand.New(rand.NewPCG(topo.seed, uint64(p)+1))
		publishers.Go(func() {
			for range topo.events {
				t, key := r.IntN(len(topics)), fmt.Sprint("k", r.IntN(5))
				if publish(context.Background(), t, 1+r.IntN(topo.hops), key, topo.waitOut && r.IntN(4) == 0) != nil {
					return
				}
			}
		})
	}
	publishers.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.Close(ctx); err != nil {
		return []string{fmt.Sprintf("Close() = %v; want nil: the topology drains", err)}
	}
	return ledger.check(topo)
}

// TestDeadlockHunt runs the hunt: -hunt.rounds topologies from -hunt.seed on.
func TestDeadlockHunt(t *testing.T) {
	rounds := *huntRounds
	if testing.Short() {
		rounds = min(rounds, 10)
	}
	start := time.Now()
	for i := range rounds {
		topo := newHuntTopology(*huntSeed + uint64(i))
		done, made := make(chan []string, 1), make(chan *Bus, 1)
		go func() { done <- runHunt(topo, made) }()
		b := <-made
		var problems []string
		select {
		case problems = <-done:
		case <-time.After(60 * time.Second):
			buf := make([]byte, 1<<20)
			t.Fatalf("deadlock: not done after 60s: %v\n%s\ngoroutines:\n%s", topo, huntState(b), buf[:runtime.Stack(buf, true)])
		}
		if len(problems) > 0 {
			t.Fatalf("%v\n%s", topo, strings.Join(problems, "\n"))
		}
		if rounds > 100 && i%100 == 99 {
			t.Logf("%d of %d topologies, %v", i+1, rounds, time.Since(start).Round(time.Second))
		}
	}
}

// huntState describes the state of every subscription of b, for a hunt that did not end.
func huntState(b *Bus) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var sb strings.Builder
	for s := range b.subs {
		c := s.core
		if d, ok := c.typed.(interface{ debugState() string }); ok {
			sb.WriteString(d.debugState())
		}
		c.mu.Lock()
		fmt.Fprintf(&sb, "%s: state %d, held %d (unheld %d) of %d, head %d, tail %d, ready %d, backoff %d, running %d, blocked %d, live %d, sleepers %d, waiters %d, circuit %v, stalled %v\n",
			c.name, c.state.Load(), c.held.Load(), c.unheld, c.capacity, c.head, c.tail.Load(), c.readyLen, c.backoff,
			c.running, c.blocked, c.live.Load(), c.sleepers.Load(), c.waiters.Load(), c.circuit(), c.stalledLocked())
		c.mu.Unlock()
	}
	return sb.String()
}

func (s *subscription[T]) debugState() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	states := map[slotState]int{}
	for i := range s.slots {
		states[s.slots[i].state]++
	}
	var flights []int
	for i := range s.flights {
		flights = append(flights, s.flights[i].count)
	}
	return fmt.Sprintf("%s: slots by state %v (free list %d), keys %d, inflight %d %v, roomCh %v, watched %v, wakePending %v, direct %d\n",
		s.name, states, s.free, len(s.keys), s.inflightKeys, flights, s.roomCh != nil, s.watched.Load(), s.wakePending.Load(), s.stats.direct)
}
