package eventbus

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
)

// Topic names a stream of events whose payloads are of type T. Publishers and subscribers
// share one Topic value (typically a package-level variable), so a payload of the wrong type
// does not compile. A Topic carries no state and may be used with any number of buses.
//
// On one bus, a topic name is bound to the payload type of its first subscriber for as long
// as it has subscribers; publishing or subscribing to the same name with another type
// returns an error.
type Topic[T any] struct {
	name string
	id   uint32 // unique per NewTopic call: an index into each bus's topic cache
}

// topicIDs numbers the topics NewTopic makes, from 1, up to maxCachedTopicID; later topics
// get id 0, which no bus caches, so ids never wrap around to ones in use.
var topicIDs atomic.Uint32

func nextTopicID() uint32 {
	if topicIDs.Load() >= maxCachedTopicID {
		return 0
	}
	if id := topicIDs.Add(1); id < maxCachedTopicID {
		return id
	}
	return 0
}

// NewTopic returns the topic named name. It panics if name is empty, a programmer error
// caught when the package-level variable is initialized.
func NewTopic[T any](name string) Topic[T] {
	if name == "" {
		panic("eventbus: NewTopic: name must not be empty")
	}
	return Topic[T]{name: name, id: nextTopicID()}
}

// Name returns the topic's name, which is also the Type of its events.
func (t Topic[T]) Name() string { return t.name }

// topicEntry is a *topicState[T] of any T.
type topicEntry interface {
	payloadType() string
	published() uint64
}

// topicState is a topic on one bus: its subscriptions and its count of published events.
// The slice of subscriptions is replaced, never changed, so Publish reads it without a lock.
type topicState[T any] struct {
	subs    atomic.Pointer[[]*subscription[T]]
	retired atomic.Bool // its last subscriber left and the bus forgot it; see retire

	// A publish counts its event in the published counter of the first subscription it
	// delivered to, on a cache line the publisher writes anyway, so that parallel
	// publishers do not trade a line of the topic's on every event. counting holds the
	// subscriptions whose counts are still their own; a subscription's count moves into
	// folded once its workers have exited, when no publisher can add to it any more.
	mu       sync.Mutex
	counting []*subCore
	folded   uint64
}

func (*topicState[T]) payloadType() string { return typeName[T]() }

// typeName names the payload type T for an error: a request topic's as "requests of Req
// answered with Resp", not by the call type that carries them.
func typeName[T any]() string {
	if n, ok := any(*new(T)).(interface{ requestTypes() string }); ok {
		return n.requestTypes()
	}
	return fmt.Sprintf("%T", *new(T))
}

// published returns the events Publish accepted for the topic; see TopicStats.Published.
func (ts *topicState[T]) published() uint64 {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	n := ts.folded
	for _, c := range ts.counting {
		n += c.published.Load()
	}
	return n
}

// count adds c to the subscriptions whose published counts ts sums.
func (ts *topicState[T]) count(c *subCore) {
	ts.mu.Lock()
	ts.counting = append(ts.counting, c)
	ts.mu.Unlock()
}

// fold moves c's published count into the topic's, once c's workers have exited.
func (ts *topicState[T]) fold(c *subCore) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.folded += c.published.Load()
	ts.counting = slices.DeleteFunc(ts.counting, func(x *subCore) bool { return x == c })
}

// lookupTopic returns the state of topic t, nil if it has never had a subscriber, or an
// error if its subscribers take another payload type than T. Publish calls it for every
// event, so it first looks in the cache indexed by the Topic value's id, which spares
// hashing the name.
func lookupTopic[T any](b *Bus, t Topic[T]) (*topicState[T], error) {
	if cache := b.byID.Load(); cache != nil && int(t.id) < len(*cache) {
		if ts, ok := (*cache)[t.id].(*topicState[T]); ok && !ts.retired.Load() {
			return ts, nil
		}
	}
	e, ok := (*b.topics.Load())[t.name]
	if !ok {
		return nil, nil
	}
	ts, ok := e.(*topicState[T])
	if !ok {
		return nil, fmt.Errorf("eventbus: topic %q carries %s, not %s", t.name, e.payloadType(), typeName[T]())
	}
	b.cacheTopic(t.id, ts)
	return ts, nil
}

// maxCachedTopicID bounds the topic cache: a program that makes topics on the fly, one
// NewTopic per name, looks the later ones up by name only.
const maxCachedTopicID = 4096

// cacheTopic records ts as the state of the Topic value numbered id, copy-on-write.
func (b *Bus) cacheTopic(id uint32, ts topicEntry) {
	if id == 0 || id >= maxCachedTopicID {
		return
	}
	b.cacheMu.Lock()
	defer b.cacheMu.Unlock()
	var old []topicEntry
	if p := b.byID.Load(); p != nil {
		old = *p
	}
	if int(id) < len(old) && old[id] == ts {
		return
	}
	cache := make([]topicEntry, max(len(old), int(id)+1))
	copy(cache, old)
	cache[id] = ts
	b.byID.Store(&cache)
}

// topicFor returns the state of topic t, adding it to the bus if it has none. b.mu is held.
func topicFor[T any](b *Bus, t Topic[T]) (*topicState[T], error) {
	ts, err := lookupTopic(b, t)
	if err != nil || ts != nil {
		return ts, err
	}
	ts = &topicState[T]{}
	ts.subs.Store(&[]*subscription[T]{})
	topics := maps.Clone(*b.topics.Load())
	topics[t.name] = ts
	b.topics.Store(&topics)
	return ts, nil
}

// add appends s to the topic's subscriptions. b.mu is held.
func (ts *topicState[T]) add(s *subscription[T]) {
	subs := append(slices.Clip(*ts.subs.Load()), s)
	ts.subs.Store(&subs)
	ts.count(&s.subCore)
}

// remove takes s off the topic's subscriptions and, with its last subscriber gone, forgets
// the topic, so that a program that makes topics on the fly does not grow the bus without
// bound: Publish then treats the name as never subscribed, and a later Subscribe starts it
// afresh. b.mu is held.
func (ts *topicState[T]) remove(b *Bus, name string, s *subscription[T]) {
	subs := slices.DeleteFunc(slices.Clone(*ts.subs.Load()), func(x *subscription[T]) bool { return x == s })
	ts.subs.Store(&subs)
	if len(subs) > 0 || (*b.topics.Load())[name] != topicEntry(ts) {
		return
	}
	ts.retired.Store(true)
	topics := maps.Clone(*b.topics.Load())
	delete(topics, name)
	b.topics.Store(&topics)
}
