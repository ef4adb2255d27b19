package watermillbus

import (
	"errors"
	"sync"

	"github.com/ae30fb47/eventbus"
)

var errEmptyTopic = errors.New("watermillbus: topic must not be empty")

// maxTopicValues bounds the topicValues cache: a program that publishes to ever new topic
// names holds at most this many of them.
const maxTopicValues = 4096

// topicValues caches an eventbus.Topic for each topic name the PubSub uses, so that it
// makes one per name, not one per message (eventbus.NewTopic numbers every Topic it
// makes). It forgets every name once it holds maxTopicValues of them.
type topicValues struct {
	m  sync.Map // name -> eventbus.Topic[[]byte]
	mu sync.Mutex
	n  int // names in m; under mu
}

// get returns the Topic of name.
func (c *topicValues) get(name string) eventbus.Topic[[]byte] {
	if t, ok := c.m.Load(name); ok {
		return t.(eventbus.Topic[[]byte])
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.m.Load(name); ok {
		return t.(eventbus.Topic[[]byte])
	}
	if c.n == maxTopicValues {
		c.m.Clear()
		c.n = 0
	}
	t := eventbus.NewTopic[[]byte](name)
	c.m.Store(name, t)
	c.n++
	return t
}

// topicLocked returns the state of the topic named name, making it if the topic has none:
// a topic has a state while it has a subscription of the PubSub on the bus, and loses it
// when its last one leaves (see forgetIfIdleLocked). h.mu is held.
func (h *hub) topicLocked(name string) *topicState {
	if ts, ok := h.topics.Load(name); ok {
		return ts.(*topicState)
	}
	ts := &topicState{name: name, topic: h.topicValues.get(name), groups: make(map[string]*group)}
	h.topics.Store(name, ts)
	return ts
}

// forgetIfIdleLocked drops the state of ts if the topic has no subscription of the PubSub
// left on the bus, so that a program whose topics come and go holds only those in use.
// h.mu is held.
func (h *hub) forgetIfIdleLocked(ts *topicState) {
	if ts.live.Load() == 0 {
		h.topics.CompareAndDelete(ts.name, ts)
	}
}

// publishTopic returns the Topic that Publish sends a message for topic name to. With
// Config.Retain, it first makes sure the topic has a subscription of the PubSub on the
// bus, making a retention if it has none; see Config.Retain.
func (h *hub) publishTopic(name string) (eventbus.Topic[[]byte], error) {
	if !h.cfg.Retain {
		return h.topicValues.get(name), nil
	}
	if ts, ok := h.topics.Load(name); ok && ts.(*topicState).live.Load() > 0 {
		return ts.(*topicState).topic, nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return h.topicValues.get(name), nil // Publish returns ErrClosed
	}
	ts := h.topicLocked(name)
	if ts.live.Load() > 0 {
		return ts.topic, nil
	}
	g, err := h.newGroupLocked(ts, "", h.cfg.Concurrency)
	if err != nil {
		h.forgetIfIdleLocked(ts)
		return eventbus.Topic[[]byte]{}, err
	}
	ts.retained = g
	return ts.topic, nil
}
