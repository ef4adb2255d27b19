package benchmarks

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/kelindar/event"
)

// kelindarLib drives github.com/kelindar/event: one event.SubscribeTo per subscriber,
// event.Publish per event. Each subscriber has its own goroutine, so its handler calls are
// in publish order; in scenario C, each shard is an event type of its own with one
// subscriber. "Handled" is the handler returning.
//
// Its consumers sleep on a condition variable that a ticker broadcasts every 500µs, not
// Publish: that is where its throughput comes from (batches of up to 50,000 events per
// wake-up), and why an idle event waits for the next tick (scenario D).
var kelindarLib = library{name: "kelindar-event", start: startKelindar}

// kelindarEvent carries a Msg as an event.Event of type typ (1, or 1 + the shard).
type kelindarEvent struct {
	Msg
	typ  uint32
	stop bool // asks the subscriber that handles it to unsubscribe (see close)
}

func (e kelindarEvent) Type() uint32 { return e.typ }

type kelindarInstance struct {
	d       *event.Dispatcher
	ordered bool
	types   []uint32
	stopped sync.WaitGroup // one per subscription, done when it unsubscribed
}

func startKelindar(cfg config) (instance, error) {
	in := &kelindarInstance{d: event.NewDispatcher(), ordered: cfg.ordered}
	err := cfg.consumers(func(sub, shard int, _ string) error {
		typ := uint32(1 + shard)
		if !slices.Contains(in.types, typ) {
			in.types = append(in.types, typ)
		}
		in.stopped.Add(1)
		var cancel context.CancelFunc
		cancel = event.SubscribeTo(in.d, typ, func(e kelindarEvent) {
			if e.stop {
				cancel()
				in.stopped.Done()
				return
			}
			cfg.deliver(sub, e.Msg)
		})
		return nil
	})
	if err != nil {
		return nil, abandon(in, err)
	}
	return in, nil
}

func (in *kelindarInstance) publish(m Msg) error {
	typ := uint32(1)
	if in.ordered {
		typ += uint32(shardOf(keyNames[m.Key]))
	}
	event.Publish(in.d, kelindarEvent{Msg: m, typ: typ})
	return nil
}

// close stops the subscribers' goroutines. Unsubscribing only flags a consumer, which
// then exits at its next wake-up, and the dispatcher's ticker (which does the waking)
// stops at Dispatcher.Close; so each subscriber is sent a last event that makes it
// unsubscribe itself from its handler, after which its goroutine finds its queue empty and
// exits without waiting again. Then the dispatcher is closed.
func (in *kelindarInstance) close() error {
	for _, typ := range in.types {
		event.Publish(in.d, kelindarEvent{typ: typ, stop: true})
	}
	done := make(chan struct{})
	go func() {
		in.stopped.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		return fmt.Errorf("kelindar/event subscribers did not take their stop event within 10s")
	}
	return in.d.Close()
}
