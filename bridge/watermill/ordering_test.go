package watermillbus_test

import (
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	watermillbus "github.com/ae30fb47/eventbus/bridge/watermill"
)

// consumed is what consumeGroup saw.
type consumed struct {
	acked       []string // the payloads, in the order they were acked
	perChannel  []int    // how many messages each channel delivered and had acked
	maxInFlight int64    // the most messages in flight at once
}

// consumeGroup runs one goroutine per channel of chs until want messages were acked: each
// nacks a delivery with probability nackRate, and holds each message a little before it
// answers.
func consumeGroup(t *testing.T, chs []<-chan *message.Message, want int, nackRate float64) consumed {
	t.Helper()
	var (
		mu       sync.Mutex
		c        = consumed{perChannel: make([]int, len(chs))}
		inFlight atomic.Int64
		peak     atomic.Int64
		wg       sync.WaitGroup
		stopOnce sync.Once
	)
	done := make(chan struct{})
	stop := func() { stopOnce.Do(func() { close(done) }) }
	for i, ch := range chs {
		wg.Go(func() {
			for {
				var msg *message.Message
				select {
				case msg = <-ch:
				case <-done:
					return
				}
				n := inFlight.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				time.Sleep(50 * time.Microsecond)
				inFlight.Add(-1)
				if rand.Float64() < nackRate {
					msg.Nack()
					continue
				}
				mu.Lock()
				c.acked = append(c.acked, string(msg.Payload))
				c.perChannel[i]++
				all := len(c.acked) == want
				mu.Unlock()
				msg.Ack()
				if all {
					stop()
				}
			}
		})
	}
	timer := time.NewTimer(waitFor)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		stop()
	}
	wg.Wait()
	if len(c.acked) != want {
		t.Errorf("acked %d of %d messages within %v", len(c.acked), want, waitFor)
	}
	c.maxInFlight = peak.Load()
	return c
}

// TestKeyedOrderInAGroup publishes messages of eight keys to a group of four consumers
// that nack a fifth of their deliveries, and checks that each key's messages were acked
// once each, in publish order, while several keys were in flight at once.
func TestKeyedOrderInAGroup(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{Concurrency: 4})
	group := ps.NewSubscriber("group")
	var chs []<-chan *message.Message
	for range 4 {
		chs = append(chs, subscribe(t, group, "keyed"))
	}
	var want []string
	for i := range 400 {
		key := strconv.Itoa(i % 8)
		msg := newMsg(key+"-"+strconv.Itoa(i), watermillbus.KeyMetadata, key)
		publish(t, ps, "keyed", msg)
		want = append(want, string(msg.Payload))
	}
	c := consumeGroup(t, chs, len(want), 0.2)
	if !samePerKeyOrder(c.acked, want) {
		t.Errorf("acked %v; want every message once, in publish order per key", c.acked)
	}
	if c.maxInFlight < 2 {
		t.Errorf("at most %d message in flight; want keys handled in parallel", c.maxInFlight)
	}
}

// TestUnkeyedMessagesKeepPublishOrder checks DefaultKey: messages without a key are one
// ordered stream per topic, even for a group of three consumers that nack.
func TestUnkeyedMessagesKeepPublishOrder(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{})
	group := ps.NewSubscriber("group")
	chs := []<-chan *message.Message{subscribe(t, group, "unkeyed"), subscribe(t, group, "unkeyed"), subscribe(t, group, "unkeyed")}
	want := payloads(publishN(t, ps, "unkeyed", "m", 200))
	c := consumeGroup(t, chs, len(want), 0.2)
	if !slices.Equal(c.acked, want) {
		t.Errorf("acked %v; want %v", c.acked, want)
	}
	if c.maxInFlight != 1 {
		t.Errorf("%d messages in flight at once; want 1", c.maxInFlight)
	}
}

// TestEmptyKeyGivesUpOrder checks that a Config.Key that returns "" lets a group deliver
// the next message before the previous one is acked, where DefaultKey holds it back.
func TestEmptyKeyGivesUpOrder(t *testing.T) {
	for _, tt := range []struct {
		name     string
		key      func(string, *message.Message) string
		parallel bool
	}{
		{"DefaultKey", nil, false},
		{"no key", func(string, *message.Message) string { return "" }, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ps := newPubSub(t, watermillbus.Config{Key: tt.key, Concurrency: 2})
			group := ps.NewSubscriber("group")
			a, b := subscribe(t, group, "t"), subscribe(t, group, "t")
			publishN(t, ps, "t", "m", 2)
			var first *message.Message
			var other <-chan *message.Message
			select {
			case first = <-a:
				other = b
			case first = <-b:
				other = a
			case <-time.After(waitFor):
				t.Fatal("no message")
			}
			if tt.parallel {
				receive(t, other).Ack() // while first is in flight
			} else {
				expectNone(t, other, 100*time.Millisecond)
			}
			first.Ack()
		})
	}
}
