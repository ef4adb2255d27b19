package eventbus

import "sync/atomic"

// Topic names a stream of events whose payloads are of type T. Publishers and subscribers
// share one Topic value (typically a package-level variable), so a payload of the wrong type
// does not compile. A Topic carries no state and may be used with any number of buses.
//
// On one bus, a topic name is bound to the payload type of its first subscriber; publishing
// or subscribing to the same name with another type returns an error.
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
