package watermillbus

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/ae30fb47/eventbus"
)

// topicState is what a hub knows of one topic while the topic has a subscription of the
// PubSub on the bus (see hub.topicLocked). Its fields other than name, topic and live are
// guarded by the hub's mu.
type topicState struct {
	name  string
	topic eventbus.Topic[[]byte]

	// live counts the topic's subscriptions on the bus: its groups, the subscriptions of
	// single Subscribe calls and the retention. Publish reads it without the lock to see
	// whether it must start a retention.
	live atomic.Int32

	groups   map[string]*group // the named consumer groups
	retained *group            // the retention, until a Subscribe call adopts it
}

// group is one subscription on the bus, shared by the consumers that receive its
// messages: a named consumer group, the subscription of a single Subscribe call, or the
// retention of a topic without subscribers. The bus holds its messages and hands them to
// handle, one per worker; handle offers each to the group's consumers and returns what
// the consumer that took it made of it.
type group struct {
	h  *hub
	ts *topicState

	sub    *eventbus.Subscription
	offers chan *delivery // unbuffered: a consumer takes a message only when it is free

	// deliveries recycles the deliveries whose consumer has answered, so that a steady
	// stream of messages allocates none. One pool per group, so that no channel crosses
	// from one bus to another (nor out of a testing/synctest bubble).
	deliveries sync.Pool

	name      string // the consumer group, "" for a single Subscribe call's; under h.mu
	consumers int    // under h.mu
}

// subscriptionSeq numbers the bus subscriptions of single Subscribe calls and retentions,
// process-wide, so that PubSubs sharing a bus never pick the same name.
var subscriptionSeq atomic.Uint64

// The prefixes of the names of the PubSubs' subscriptions on the bus, which bus
// subscribers of their own must not use: [GroupSubscriptionPrefix] and "watermill-"
// followed by a number, for the subscription of a single Subscribe call or a retention.
const (
	// GroupSubscriptionPrefix begins the name of a consumer group's subscription on the
	// bus: the group "billing" is the bus subscriber "watermill:billing", the Subscriber
	// of its dead letters, unless the group took over a topic's retention (see
	// Config.Retain), whose name, "watermill-" and a number, it keeps. So a group's name
	// never collides with that of a subscriber of the bus's own, unless that one takes
	// the prefix.
	GroupSubscriptionPrefix  = "watermill:"
	singleSubscriptionPrefix = "watermill-"
)

// newGroupLocked subscribes a new group named name ("" for one of its own) to ts on the
// bus. h.mu is held.
func (h *hub) newGroupLocked(ts *topicState, name string, concurrency int) (*group, error) {
	g := &group{h: h, ts: ts, name: name, offers: make(chan *delivery)}
	busName := GroupSubscriptionPrefix + name
	if name == "" {
		busName = singleSubscriptionPrefix + strconv.FormatUint(subscriptionSeq.Add(1), 10)
	}
	opts := []eventbus.SubscribeOption{
		eventbus.WithBuffer(h.cfg.Buffer),
		eventbus.WithConcurrency(concurrency),
		eventbus.WithRetry(*h.cfg.Retry),
	}
	if h.cfg.DeadLetter != nil {
		opts = append(opts, eventbus.WithDeadLetter(h.cfg.DeadLetter))
	}
	sub, err := eventbus.Subscribe(h.bus, ts.topic, busName, g.handle, opts...)
	if err != nil {
		if name != "" {
			return nil, fmt.Errorf("watermillbus: consumer group %q of topic %q: %w", name, ts.name, err)
		}
		return nil, err
	}
	g.sub = sub
	ts.live.Add(1)
	return g, nil
}

// joinLocked returns the group that a new consumer of consumer group name ("" for one of
// its own) receives ts's messages from, and counts the consumer in. A named group that
// exists is joined; otherwise the topic's retention is adopted if it has one, so the new
// group starts with the messages retained, or a new group subscribes. h.mu is held.
func (h *hub) joinLocked(ts *topicState, name string) (*group, error) {
	g := ts.groups[name] // never set for ""
	if g == nil {
		if name != "" {
			if err := h.claimGroup(ts.name, name); err != nil {
				return nil, err
			}
		}
		if g = ts.retained; g != nil {
			ts.retained = nil
			g.name = name
		} else {
			var err error
			if g, err = h.newGroupLocked(ts, name, h.concurrency(name)); err != nil {
				if name != "" {
					h.releaseGroup(ts.name, name)
				}
				return nil, err
			}
		}
		if name != "" {
			ts.groups[name] = g
		}
	}
	g.consumers++
	return g, nil
}

// concurrency returns the bus concurrency of a new subscription of consumer group name. A
// single Subscribe call's subscription has one consumer, so one message in flight is
// enough, unless it may become a retention (see leave) that a named group adopts.
func (h *hub) concurrency(name string) int {
	if name == "" && !h.cfg.Retain {
		return 1
	}
	return h.cfg.Concurrency
}

// leave counts a consumer of g out, and reports whether g must now leave the bus, with
// leaveBus: g is the subscription of a single Subscribe call, which ends with its consumer.
// With Config.Retain, though, the topic's last subscription of the PubSub does not leave:
// it becomes the topic's retention, with the messages it holds, so that no message
// published to the topic meanwhile reaches no subscription of the PubSub, and none is
// dead-lettered for a consumer that merely left.
func (h *hub) leave(g *group) (leaveBus bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g.consumers--
	if g.name != "" || g.consumers > 0 {
		return false
	}
	if h.cfg.Retain && !h.closed && g.ts.live.Load() == 1 {
		g.ts.retained = g // live counts g already; nothing else is retaining the topic
		return false
	}
	g.ts.live.Add(-1)
	h.forgetIfIdleLocked(g.ts)
	return true
}

// groupOwners records, process-wide, which PubSub has the consumer group of each name on
// each topic of each bus, so that another PubSub's Subscribe to that group fails rather
// than make a second group of the name, which would receive every message too. (The
// groups' names on the bus cannot tell: a group that took over a retention has the
// retention's.)
var groupOwners = struct {
	sync.Mutex
	m map[groupKey]*hub
}{m: make(map[groupKey]*hub)}

type groupKey struct {
	bus          *eventbus.Bus
	topic, group string
}

// claimGroup records h as the owner of consumer group group of topic, or returns an error
// if another PubSub on the bus owns it.
func (h *hub) claimGroup(topic, group string) error {
	k := groupKey{h.bus, topic, group}
	groupOwners.Lock()
	defer groupOwners.Unlock()
	if owner, ok := groupOwners.m[k]; ok && owner != h {
		return fmt.Errorf("watermillbus: consumer group %q of topic %q belongs to another PubSub on this bus", group, topic)
	}
	groupOwners.m[k] = h
	return nil
}

// releaseGroup forgets that h owns consumer group group of topic, which it failed to make.
func (h *hub) releaseGroup(topic, group string) {
	groupOwners.Lock()
	defer groupOwners.Unlock()
	delete(groupOwners.m, groupKey{h.bus, topic, group})
}

// releaseGroups forgets that h owns its consumer groups, once they have left the bus.
func (h *hub) releaseGroups() {
	groupOwners.Lock()
	defer groupOwners.Unlock()
	for k, owner := range groupOwners.m {
		if owner == h {
			delete(groupOwners.m, k)
		}
	}
}

// takeGroupsLocked returns the topic's named groups and retention and forgets them, for
// Close. h.mu is held.
func (ts *topicState) takeGroupsLocked() []*group {
	var gs []*group
	for name, g := range ts.groups {
		gs = append(gs, g)
		delete(ts.groups, name)
	}
	if ts.retained != nil {
		gs = append(gs, ts.retained)
		ts.retained = nil
	}
	ts.live.Add(-int32(len(gs)))
	return gs
}

// leaveBus removes g's subscription from the bus at once: its handlers' contexts are
// cancelled and every message it still holds is dead-lettered with an error wrapping
// eventbus.ErrClosed. It returns once the subscription's goroutines have exited.
func (g *group) leaveBus() {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no grace: no consumer is left to hand the messages to
	_ = g.sub.Close(ctx)
}

// delivery is one message that a group's handler offers to its consumers.
type delivery struct {
	ev eventbus.Event[[]byte]
	// handlerCtx is the bus handler's context: it ends if the bus gives up on the message
	// while a consumer holds it (when the bus or the subscription closes without grace).
	handlerCtx context.Context
	// result receives, once per offer taken, what became of the message: nil (acked),
	// ErrNacked, ErrNotAcked, or errNotDelivered (the consumer left before it could
	// deliver it; handle offers it again). Buffered, so a consumer never waits on it.
	result chan error
}

// handle is the group's handler on the bus: it offers ev to the group's consumers until
// one delivers it, and returns that consumer's verdict, which the bus's retry policy and
// dead-letter hook act on.
func (g *group) handle(ctx context.Context, ev eventbus.Event[[]byte]) error {
	d, _ := g.deliveries.Get().(*delivery)
	if d == nil {
		d = &delivery{result: make(chan error, 1)}
	}
	d.ev, d.handlerCtx = ev, ctx
	for {
		select {
		case g.offers <- d:
		case <-ctx.Done():
			d.ev, d.handlerCtx = eventbus.Event[[]byte]{}, nil
			g.deliveries.Put(d) // no consumer has it
			return context.Cause(ctx)
		}
		select {
		case err := <-d.result:
			if err == errNotDelivered {
				continue
			}
			// The consumer is done with d once it has answered.
			d.ev, d.handlerCtx = eventbus.Event[[]byte]{}, nil
			g.deliveries.Put(d)
			return err
		case <-ctx.Done():
			// A consumer that answered before it left, and so before its group could
			// leave the bus, has the last word: an ack counts. Otherwise the consumer may
			// still hold d, which is then left to the garbage collector.
			select {
			case err := <-d.result:
				if err != errNotDelivered {
					return err
				}
			default:
			}
			return context.Cause(ctx)
		}
	}
}
