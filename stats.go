package eventbus

import (
	"cmp"
	"slices"
	"time"

	"github.com/ae30fb47/eventbus/internal/window"
)

// subStats are a subscription's counters, guarded by its mu. Workers update them in the
// batch's closing pass, under the lock they take anyway, so they cost next to nothing.
type subStats struct {
	direct       uint64 // events accepted through the locked path; with tail, those delivered
	handled      uint64 // ended handled, repeats skipped by de-duplication included
	duplicates   uint64
	failed       uint64 // failed attempts
	retries      uint64 // failed attempts followed by a retry
	deadLettered uint64
	latency      latencies
	outcomes     window.Pair[outcomeCounts] // recent ended and dead-lettered events, for Health
}

// Stats is a snapshot of a bus's counters: per topic, and per subscription within it. Taking
// one locks each subscription briefly; the counters are kept whether or not anyone asks.
//
// Its JSON (encoding/json) is meant to be read by people and by programs alike: field names
// in lower camel case, the circuit state by name, durations as strings that
// time.ParseDuration reads ("1.5ms"); testdata/stats.golden.json shows it.
type Stats struct {
	Topics []TopicStats `json:"topics"` // sorted by name
}

// TopicStats are the counters of one topic.
type TopicStats struct {
	Name string `json:"name"`
	// Published counts the events Publish accepted for the topic (returned nil, or, with
	// WithWait, got past accepting), each once however many subscribers it reached.
	Published     uint64              `json:"published"`
	Subscriptions []SubscriptionStats `json:"subscriptions"` // sorted by name
}

// SubscriptionStats are the counters of one subscription. Counters count from the
// subscription's start; InFlight, Queued and Circuit are as of the snapshot.
//
// Every delivered event ends handled or dead-lettered, so Delivered - Handled - DeadLettered
// events are still held: queued, running or waiting to retry. A worker counts the events of
// a batch (up to 16 under a backlog) once the whole batch has run, so an event whose
// handler has returned counts as held until then. InFlight + Queued may exceed Capacity by
// the room publishers are reserving at that instant, and by the events that handlers
// publishing in a cycle were let in over it (see [Publish]).
type SubscriptionStats struct {
	Topic          string       `json:"topic"`
	Name           string       `json:"name"`
	Delivered      uint64       `json:"delivered"`      // events accepted into the subscription's buffer
	Handled        uint64       `json:"handled"`        // events that ended handled, Duplicates included
	Duplicates     uint64       `json:"duplicates"`     // repeats skipped by de-duplication (see WithDeduplication)
	FailedAttempts uint64       `json:"failedAttempts"` // attempts that returned an error, panicked or timed out
	Retries        uint64       `json:"retries"`        // failed attempts that were followed by another attempt
	DeadLettered   uint64       `json:"deadLettered"`   // events given to the dead-letter hook
	InFlight       int          `json:"inFlight"`       // events a worker holds: in a handler or a dead-letter hook
	Queued         int          `json:"queued"`         // events held and not in flight: waiting to run or to retry
	Capacity       int          `json:"capacity"`       // the buffer size (see WithBuffer)
	Circuit        CircuitState `json:"circuit"`
	Latency        Latency      `json:"latency"` // of handler attempts, sampled
}

// Stats returns a snapshot of the bus's counters, for every topic that has a subscriber and
// every current subscription. A topic whose last subscriber leaves is forgotten, with its
// counters.
func (b *Bus) Stats() Stats {
	b.mu.Lock()
	subs := make([]*Subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	topics := *b.topics.Load()
	b.mu.Unlock()

	byTopic := make(map[string]*TopicStats, len(topics))
	st := Stats{Topics: []TopicStats{}} // empty, not null, in JSON
	for name, e := range topics {
		st.Topics = append(st.Topics, TopicStats{Name: name, Published: e.published(), Subscriptions: []SubscriptionStats{}})
	}
	slices.SortFunc(st.Topics, func(a, b TopicStats) int { return cmp.Compare(a.Name, b.Name) })
	for i := range st.Topics {
		byTopic[st.Topics[i].Name] = &st.Topics[i]
	}
	now := time.Now().UnixNano()
	for _, s := range subs {
		ss := s.core.snapshot(now)
		if t := byTopic[ss.Topic]; t != nil {
			t.Subscriptions = append(t.Subscriptions, ss)
		}
	}
	for i := range st.Topics {
		slices.SortFunc(st.Topics[i].Subscriptions, func(a, b SubscriptionStats) int { return cmp.Compare(a.Name, b.Name) })
	}
	return st
}

// Stats returns a snapshot of the subscription's counters; see [Bus.Stats].
func (s *Subscription) Stats() SubscriptionStats { return s.core.snapshot(time.Now().UnixNano()) }

// snapshot returns the subscription's counters as of now (Unix nanoseconds).
func (c *subCore) snapshot(now int64) SubscriptionStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	held := int(c.held.Load() - c.unheld)
	return SubscriptionStats{
		Topic:          c.topic,
		Name:           c.name,
		Delivered:      c.tail.Load() + c.stats.direct,
		Handled:        c.stats.handled,
		Duplicates:     c.stats.duplicates,
		FailedAttempts: c.stats.failed,
		Retries:        c.stats.retries,
		DeadLettered:   c.stats.deadLettered,
		InFlight:       c.running,
		Queued:         max(held-c.running, 0),
		Capacity:       c.capacity,
		Circuit:        c.circuit(),
		Latency:        c.stats.latency.summary(now),
	}
}
