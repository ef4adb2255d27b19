package eventbus

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ae30fb47/eventbus/internal/idset"
	"github.com/ae30fb47/eventbus/internal/ring"
)

// A subscription is one subscriber's queue and its workers. Its life, from Publish to the
// end of an event, runs through these files:
//
//   - handoff.go: how a publisher hands an event over (reserve room, commit, wake);
//   - room.go: the room a subscription has, and how publishers wait for it;
//   - wake.go: when a publisher or the bus clock wakes an idle worker;
//   - queue.go: the slots of events that must wait (behind their key, for a retry, or for
//     a waiting publisher), and the ready list;
//   - keys.go: how at most one event per key runs at a time;
//   - worker.go: the workers, which take, run and settle events;
//   - close.go: how the subscription and the bus shut down.
//
// Publishers put events into the intake, a ring of compact records, without taking the
// subscription's lock; workers take them from there straight into their batches.

// subscription is the typed half of a subscription: its handler, intake and slots.
type subscription[T any] struct {
	subCore
	topicState *topicState[T] // the topic it is subscribed to
	handler    func(context.Context, Event[T]) error
	chain      Handler // the handler wrapped in middleware, or nil without middleware
	plain      bool    // no handler timeout and no middleware: the worker calls handler itself

	intake ring.Ring[record[T]]
	// roomIsCell: the buffer fits in the intake, so room reserved within the buffer proves
	// a free intake cell; see commit.
	roomIsCell bool

	slots     []slot[T]
	free      int32 // head of the free list of slots, or -1
	readyHead int32 // head of the ready list, or -1
	readyTail int32
}

// subCore is the half of a subscription that does not depend on its payload type: its
// settings, lifecycle, counters, keys and the room accounting that publishers wait on.
// Plain fields are guarded by mu; atomic ones are written under mu too (except held, tail
// and published), so that publishers can read them without it.
type subCore struct {
	bus          *Bus
	topic, name  string
	sole         bool  // a request topic's handler: the topic's only subscriber (see Handle)
	capacity     int   // the buffer size: publishers wait while held >= capacity
	nearlyFull   int64 // nearlyFullPercent of capacity, rounded up; see noteFillLocked
	releaseBatch int64 // finished events a worker gives back at once; see releaseNLocked
	retry        RetryPolicy
	deadLetter   DeadLetterHandler
	timeout      time.Duration // of each attempt; 0 for none
	dedup        *idset.Set    // nil without de-duplication
	breaker      *breaker      // nil without a circuit breaker
	typed        typedSubscription

	// Written by publishers without the lock (held by workers too, in batches). The padding
	// keeps each group of fields off the others' cache lines, wherever the struct starts.
	_    [64]byte
	held atomic.Int64  // events accepted or reserved and not finished (but see unheld)
	tail atomic.Uint64 // the intake position the next publisher claims
	// published counts the events Publish accepted for the topic with this as the first
	// subscription it delivered to, on a line those publishers write anyway; see
	// topicState.published.
	published atomic.Uint64
	_         [64]byte

	// Read by publishers on every event, written seldom: a cache line of their own.
	state    atomic.Uint32 // a subState
	sleepers atomic.Int32  // idle workers, waiting on work
	live     atomic.Int32  // running worker goroutines
	waiters  atomic.Int32  // publishers waiting for room; see awaitRoom
	// wakePending is set by the publisher that wakes a worker and cleared by workers as they
	// go idle, so that publishers do not queue up on mu to wake a worker already woken.
	wakePending atomic.Bool
	watched     atomic.Bool // the bus clock will look at the subscription on its next tick
	removed     atomic.Bool // Subscription.Close took it off its topic; see rejection
	_           [64]byte

	// Written by workers on every take: read by the bus clock only.
	takes      atomic.Uint64 // counts workers' takes of events; see watchWorkers
	watchTakes uint64        // takes when watched was set, by the publisher that set it

	mu       sync.Mutex
	work     sync.Cond // idle workers wait here; L is &mu
	head     uint64    // the intake position the next worker takes
	roomCh   chan struct{}
	unheld   int64 // events finished but not yet subtracted from held; see releaseNLocked
	readyLen int   // events in the ready list
	running  int   // busy workers: running a batch's handlers or dead-letter hooks
	blocked  int   // of those, how many are blocked in a Publish; see stalledLocked
	backoff  int   // events waiting for their retry timer

	keys         map[string]int32 // keys with a slot of their own, to their chain's last slot
	keyCounts    [64]int32        // keys in keys by bit h%64 of their hash h; see mayHaveKeyLocked
	flights      []inflight       // per worker: keyed events running straight from the intake
	inflightKeys int              // live entries in flights
	keySeed      uint64           // of keyHash

	stats     subStats // guarded by mu
	fullSince int64    // when the buffer became nearly full (Unix ns), or 0; see noteFillLocked
	// filledAt is when a publisher's reservation last brought held up to nearlyFull (Unix
	// ns), or 0: written by that publisher, without the lock; see noteFillLocked.
	filledAt atomic.Int64

	ctx    context.Context // handlers' base context, cancelled by abort
	cancel context.CancelCauseFunc
	done   chan struct{} // closed when the last worker has exited
	timers sync.WaitGroup
}

// typedSubscription is what non-generic code calls of a subscription's typed half.
type typedSubscription interface {
	abort()
	detach() // takes the subscription off its topic; the bus's mu is held
}

type subState = uint32

const (
	stateOpen     subState = iota // accepting events
	stateSealed                   // Bus.Close drains: accepting events from handlers only
	stateClosing                  // rejecting new events, handling the accepted ones
	stateAborting                 // rejecting new events, dead-lettering the accepted ones
)

// accepts reports whether the subscription takes events from a publisher: from any while
// open, only from handlers (and dead-letter hooks) of the bus while sealed.
func (c *subCore) accepts(handler bool) bool {
	st := c.state.Load()
	return st == stateOpen || handler && st == stateSealed
}

func newSubscription[T any](b *Bus, ts *topicState[T], topic, name string, h func(context.Context, Event[T]) error, cfg subscribeConfig) *subscription[T] {
	s := &subscription[T]{
		topicState: ts,
		handler:    h,
		chain:      chain(h, b.middleware, cfg.middleware),
		intake:     ring.New[record[T]](min(cfg.buffer, maxIntake)),
		free:       -1,
		readyHead:  -1,
		readyTail:  -1,
	}
	s.plain = cfg.timeout == 0 && s.chain == nil
	s.roomIsCell = cfg.buffer <= s.intake.Len()
	c := &s.subCore
	c.bus = b
	c.topic, c.name, c.sole = topic, name, cfg.sole
	c.capacity = cfg.buffer
	c.nearlyFull = nearlyFullCount(cfg.buffer)
	c.releaseBatch = int64(min(max(cfg.buffer/16, 1), 32))
	c.retry = cfg.retry
	c.deadLetter = cfg.deadLetter
	c.timeout = cfg.timeout
	if cfg.dedupWindow > 0 {
		c.dedup = idset.New(cfg.dedupWindow, cfg.dedupMax)
	}
	if cfg.breakerFailures > 0 {
		c.breaker = &breaker{failures: cfg.breakerFailures, coolDown: cfg.breakerCoolDown}
	}
	c.typed = s
	c.keys = make(map[string]int32)
	c.flights = make([]inflight, cfg.concurrency)
	c.keySeed = rand.Uint64()
	c.done = make(chan struct{})
	c.work.L = &c.mu
	c.ctx, c.cancel = context.WithCancelCause(context.Background())
	return s
}

// maxIntake bounds the intake ring, which is as large as the buffer up to this many cells
// (256 KiB for a payload of 16 bytes). A subscription with a larger buffer holds the rest
// in its slots: publishers that find the ring full commit under the lock.
const maxIntake = 4096

// concurrency is the number of workers.
func (c *subCore) concurrency() int { return len(c.flights) }

// start launches the workers; they run until the subscription is closed and empty.
func (s *subscription[T]) start() {
	dlCtx := context.WithoutCancel(s.ctx)
	s.live.Store(int32(s.concurrency()))
	for i := range s.flights {
		w := &worker[T]{s: s, keys: &s.flights[i]}
		for j := range w.batch.scope {
			w.batch.scope[j] = handlerScope{Context: s.ctx, core: &s.subCore}
		}
		w.hookScope = handlerScope{Context: dlCtx, core: &s.subCore}
		if s.chain != nil {
			w.delivery = new(Delivery)
		}
		go w.run()
	}
}
