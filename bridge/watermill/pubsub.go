package watermillbus

import (
	"context"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/ae30fb47/eventbus"
)

// PubSub is an [eventbus.Bus] as a Watermill Pub/Sub: a message.Publisher and a
// message.Subscriber, and the place where the consumer groups and retained messages of
// the Publishers and Subscribers made from it live (see [PubSub.NewPublisher] and
// [PubSub.NewSubscriber]). Make one with [New]; it is safe for concurrent use.
//
// Each Watermill topic is the bus topic of that name with []byte payloads, so the bus's own
// publishers and subscribers of eventbus.NewTopic[[]byte](name) take part too. See the
// package documentation for how messages map onto events.
type PubSub struct {
	h   *hub
	pub *Publisher
	sub *Subscriber
}

var (
	_ message.Publisher  = (*PubSub)(nil)
	_ message.Subscriber = (*PubSub)(nil)
)

// New returns a PubSub over bus, configured by cfg. It panics if bus is nil or cfg is
// invalid (a negative number, an invalid retry policy, both PoisonTopic and DeadLetter
// set): programmer errors, caught at start-up. The bus stays the caller's: close the PubSub first, then the bus.
func New(bus *eventbus.Bus, cfg Config) *PubSub {
	if bus == nil {
		panic("watermillbus: New: bus must not be nil")
	}
	cfg = cfg.withDefaults()
	h := &hub{
		bus:         bus,
		cfg:         cfg,
		subscribers: make(map[*Subscriber]struct{}),
		done:        make(chan struct{}),
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	if cfg.PoisonTopic != "" {
		h.cfg.DeadLetter = PoisonQueue(&Publisher{h: h}, cfg.PoisonTopic)
	}
	return &PubSub{h: h, pub: &Publisher{h: h}, sub: h.newSubscriber(cfg.ConsumerGroup)}
}

// Publish publishes msgs to topic, in order; see [Publisher.Publish].
func (p *PubSub) Publish(topic string, msgs ...*message.Message) error {
	return p.pub.Publish(topic, msgs...)
}

// Subscribe returns a channel of the messages of topic, for the consumer group of the
// PubSub's Config; see [Subscriber.Subscribe].
func (p *PubSub) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	return p.sub.Subscribe(ctx, topic)
}

// NewPublisher returns another Publisher over the PubSub, for code that wants one of its
// own to close: closing it stops only its Publish calls.
func (p *PubSub) NewPublisher() *Publisher { return &Publisher{h: p.h} }

// NewSubscriber returns another Subscriber over the PubSub, whose Subscribe calls join
// consumer group group ("" gives each call a subscription of its own; see
// [Config.ConsumerGroup]). Closing it closes only its channels: the messages of a named
// group wait in the PubSub for the group's next consumer, as in a broker. Groups are the
// PubSub's: Subscribers that must share one are made by the same PubSub.
func (p *PubSub) NewSubscriber(group string) *Subscriber { return p.h.newSubscriber(group) }

// Close closes the PubSub and every Publisher and Subscriber made from it. Publish and
// Subscribe return [ErrClosed] from then on; every output channel is closed at once, and
// the messages in flight have their contexts cancelled and [Config.CloseTimeout] to be
// acked or nacked. Then every subscription leaves the bus, and the messages it still holds
// (not acked in time, queued, retained) go to the dead-letter hook with an error
// wrapping eventbus.ErrClosed: nothing is dropped without a word. Close returns once no
// goroutine of the PubSub is left. It does not close the bus. Close is idempotent and safe
// to call concurrently (Watermill's Router calls it once per handler); every call waits
// for the same shutdown and returns nil.
func (p *PubSub) Close() error {
	p.h.close()
	return nil
}

// hub is the state that a PubSub shares with its Publishers and Subscribers: the topics,
// with their consumer groups and retention, and the live Subscribers.
type hub struct {
	bus *eventbus.Bus
	cfg Config

	// ctx is cancelled when Close begins. Publish waits on it for room when the message's
	// own context cannot end.
	ctx    context.Context
	cancel context.CancelFunc

	// topics maps a topic name to its state while it has a subscription of the PubSub on
	// the bus; entries are stored and deleted under mu (see topicLocked).
	topics      sync.Map
	topicValues topicValues

	mu          sync.Mutex // guards what follows, and the groups of every topicState
	closed      bool
	subscribers map[*Subscriber]struct{}

	closeOnce sync.Once
	done      chan struct{} // closed when Close has finished
}

// newSubscriber returns a Subscriber whose Subscribe calls join group.
func (h *hub) newSubscriber(group string) *Subscriber {
	s := &Subscriber{h: h, group: group, consumers: make(map[*consumer]struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		s.closed = true
	} else {
		h.subscribers[s] = struct{}{}
	}
	return s
}

// close shuts the hub down; see PubSub.Close.
func (h *hub) close() {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		h.closed = true
		h.cancel()
		subs := make([]*Subscriber, 0, len(h.subscribers))
		for s := range h.subscribers {
			subs = append(subs, s)
		}
		h.mu.Unlock()

		// Consumers first, so that the messages in flight may still be acked; the
		// subscriptions of single Subscribe calls leave the bus with their consumers.
		var wg sync.WaitGroup
		for _, s := range subs {
			wg.Go(s.close)
		}
		wg.Wait()

		h.mu.Lock()
		var groups []*group
		h.topics.Range(func(_, ts any) bool {
			groups = append(groups, ts.(*topicState).takeGroupsLocked()...)
			return true
		})
		h.mu.Unlock()
		for _, g := range groups {
			wg.Go(g.leaveBus)
		}
		wg.Wait()
		h.releaseGroups()
		close(h.done)
	})
	<-h.done
}
