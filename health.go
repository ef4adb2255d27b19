package eventbus

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// HealthPolicy says when [Bus.Health] reports a subscription unhealthy. The zero value is
// the default policy, and each zero field takes its default.
type HealthPolicy struct {
	// FullFor is how long a subscription's buffer may stay at least 90% full: its handlers
	// cannot keep up, and publishers are about to wait, or wait already. Default 30s.
	FullFor time.Duration
	// DeadLetterRatio is the largest fraction of the events a subscription ended over the
	// last minute or two that may have been dead-lettered. Default 0.1.
	DeadLetterRatio float64
	// MinDeadLetters is how many dead letters over that time it takes before the ratio
	// counts, so that one failure among few events does not make a subscription unhealthy.
	// Default 10.
	MinDeadLetters int
}

const (
	defaultFullFor         = 30 * time.Second
	defaultDeadLetterRatio = 0.1
	defaultMinDeadLetters  = 10
	nearlyFullPercent      = 90
)

func (p HealthPolicy) withDefaults() (HealthPolicy, error) {
	switch {
	case p.FullFor < 0:
		return p, fmt.Errorf("eventbus: HealthPolicy: FullFor must be >= 0, got %v", p.FullFor)
	case p.DeadLetterRatio < 0 || p.DeadLetterRatio > 1 || p.DeadLetterRatio != p.DeadLetterRatio:
		return p, fmt.Errorf("eventbus: HealthPolicy: DeadLetterRatio must be within [0, 1], got %v", p.DeadLetterRatio)
	case p.MinDeadLetters < 0:
		return p, fmt.Errorf("eventbus: HealthPolicy: MinDeadLetters must be >= 0, got %d", p.MinDeadLetters)
	}
	if p.FullFor == 0 {
		p.FullFor = defaultFullFor
	}
	if p.DeadLetterRatio == 0 {
		p.DeadLetterRatio = defaultDeadLetterRatio
	}
	if p.MinDeadLetters == 0 {
		p.MinDeadLetters = defaultMinDeadLetters
	}
	return p, nil
}

// WithHealthPolicy sets when [Bus.Health] reports a subscription unhealthy; without it the
// zero [HealthPolicy] (the defaults) applies. It panics if a field is out of range.
func WithHealthPolicy(p HealthPolicy) Option {
	p, err := p.withDefaults()
	if err != nil {
		panic(err.Error())
	}
	return busOption(func(c *busConfig) { c.health = p })
}

// Health is a bus's health as [Bus.Health] judges it.
//
// Its JSON adds "healthy", the verdict of Err: {"healthy": false, "closed": false,
// "subscriptions": [{"topic": ..., "name": ..., "healthy": false, "problems": [...]}]}.
type Health struct {
	Closed bool `json:"closed"` // Close has begun
	// Subscriptions are every current subscription, healthy or not, sorted by topic and
	// name.
	Subscriptions []SubscriptionHealth `json:"subscriptions"`
}

// MarshalJSON writes h with its verdict, "healthy".
func (h Health) MarshalJSON() ([]byte, error) {
	type plain Health
	subs := h.Subscriptions
	if subs == nil {
		subs = []SubscriptionHealth{}
	}
	return json.Marshal(struct {
		Healthy bool `json:"healthy"`
		plain
	}{h.Err() == nil, plain{Closed: h.Closed, Subscriptions: subs}})
}

// SubscriptionHealth is one subscription's health. A subscription is unhealthy while its
// circuit breaker is open or probing, while its buffer has stayed nearly full for longer
// than the policy's FullFor, or while more than the policy's DeadLetterRatio of the events
// it ended recently were dead-lettered.
type SubscriptionHealth struct {
	Topic    string   `json:"topic"`
	Name     string   `json:"name"`
	Problems []string `json:"problems"` // why it is unhealthy; empty if it is healthy
}

// MarshalJSON writes h with its verdict, "healthy", and its problems as a list, empty if
// there are none.
func (h SubscriptionHealth) MarshalJSON() ([]byte, error) {
	type plain SubscriptionHealth
	p := plain(h)
	if p.Problems == nil {
		p.Problems = []string{}
	}
	return json.Marshal(struct {
		Topic   string `json:"topic"`
		Name    string `json:"name"`
		Healthy bool   `json:"healthy"`
		plain
	}{h.Topic, h.Name, h.Healthy(), p})
}

// Healthy reports whether the subscription has no problem.
func (h SubscriptionHealth) Healthy() bool { return len(h.Problems) == 0 }

// Err returns nil if the bus is open and every subscription healthy, or else an error that
// says what is wrong: what a readiness probe or a load balancer's health check wants.
func (h Health) Err() error {
	var errs []error
	if h.Closed {
		errs = append(errs, ErrClosed)
	}
	for _, s := range h.Subscriptions {
		if !s.Healthy() {
			errs = append(errs, fmt.Errorf("%s/%s: %s", s.Topic, s.Name, strings.Join(s.Problems, "; ")))
		}
	}
	return errors.Join(errs...)
}

// Health judges every subscription of the bus by its health policy (see
// [WithHealthPolicy]). It locks each subscription briefly and may be called as often as a
// probe likes.
func (b *Bus) Health() Health {
	b.mu.Lock()
	subs := make([]*Subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	h := Health{Closed: b.sd.closed.Load()}
	now := b.clock.nowNanos()
	for _, s := range subs {
		h.Subscriptions = append(h.Subscriptions, s.core.health(now, b.health))
	}
	slices.SortFunc(h.Subscriptions, func(a, b SubscriptionHealth) int {
		return strings.Compare(a.Topic+"\x00"+a.Name, b.Topic+"\x00"+b.Name)
	})
	return h
}

// Ready returns Health().Err(): nil when the bus is open and every subscription healthy.
func (b *Bus) Ready() error { return b.Health().Err() }

// health judges the subscription as of now (Unix nanoseconds).
func (c *subCore) health(now int64, p HealthPolicy) SubscriptionHealth {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := SubscriptionHealth{Topic: c.topic, Name: c.name}
	if st := c.circuit(); st != CircuitClosed {
		h.Problems = append(h.Problems, "circuit breaker "+st.String())
	}
	c.noteFillLocked(now)
	if since := c.fullSince; since != 0 && now-since >= int64(p.FullFor) {
		h.Problems = append(h.Problems, fmt.Sprintf("buffer at least %d%% full for %v", nearlyFullPercent, time.Duration(now-since).Round(time.Second)))
	}
	cur, prev := c.stats.outcomes.Recent(now)
	ended, dead := cur.ended+prev.ended, cur.dead+prev.dead
	if dead >= uint64(p.MinDeadLetters) && float64(dead) > p.DeadLetterRatio*float64(ended) {
		h.Problems = append(h.Problems, fmt.Sprintf("%d of the %d events ended recently were dead-lettered", dead, ended))
	}
	return h
}

// noteFillLocked records when the buffer became nearly full, or that it no longer is, as
// of now (Unix nanoseconds). Workers call it as they release finished events, publishers
// as they wait for room, and Health as it looks. Publishers that fill the buffer without
// waiting do not call it, so a buffer found nearly full has been since filledAt: held can
// rise to nearlyFull only one reservation at a time, and the last to get there set it.
func (c *subCore) noteFillLocked(now int64) {
	held := c.held.Load() - c.unheld
	switch {
	case held < c.nearlyFull:
		c.fullSince = 0
	case c.fullSince == 0:
		c.fullSince = now
		if at := c.filledAt.Load(); at != 0 && at < now {
			c.fullSince = at
		}
	}
}

// nearlyFullCount is nearlyFullPercent of capacity, rounded up, computed without overflow
// for any capacity.
func nearlyFullCount(capacity int) int64 {
	c := int64(capacity)
	const spare = 100 - nearlyFullPercent
	return c - (c/100*spare + c%100*spare/100)
}

// outcomeCounts are the events a subscription ended in one window of time, and how many
// of those it dead-lettered.
type outcomeCounts struct{ ended, dead uint64 }

func (o *outcomeCounts) add(ended, dead uint64) {
	o.ended += ended
	o.dead += dead
}
