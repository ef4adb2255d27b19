package benchmarks

import (
	"context"
	"strconv"
	"sync/atomic"

	"github.com/mustafaturan/bus/v3"
)

// mustafaturanLib drives github.com/mustafaturan/bus/v3: a topic and a Handler per
// subscriber (RegisterTopics, RegisterHandler), Emit per event. Emit calls every handler
// synchronously, on the publisher's goroutine, so "handled" is Emit returning, and
// per-key order is publish order (scenario C still goes through a topic per shard, like
// the others). Every event gets an ID and a transaction ID from the generator the bus
// requires: here a counter in base 36, about the cheapest unique ID there is.
var mustafaturanLib = library{name: "mustafaturan-bus", start: startMustafaturan}

type mustafaturanInstance struct {
	b       *bus.Bus
	ordered bool
}

func startMustafaturan(cfg config) (instance, error) {
	var ids atomic.Uint64
	b, err := bus.NewBus(bus.Next(func() string { return strconv.FormatUint(ids.Add(1), 36) }))
	if err != nil {
		return nil, err
	}
	in := &mustafaturanInstance{b: b, ordered: cfg.ordered}
	err = cfg.consumers(func(sub, shard int, topic string) error {
		b.RegisterTopics(topic) // once per topic; again is a no-op
		b.RegisterHandler("handler-"+strconv.Itoa(sub)+"-"+strconv.Itoa(shard), bus.Handler{
			Handle:  func(_ context.Context, e bus.Event) { cfg.deliver(sub, e.Data.(Msg)) },
			Matcher: "^" + topic + "$",
		})
		return nil
	})
	if err != nil {
		return nil, abandon(in, err)
	}
	return in, nil
}

func (in *mustafaturanInstance) publish(m Msg) error {
	return in.b.Emit(context.Background(), topicOf(in.ordered, m), m)
}

// close has nothing to stop: the bus starts no goroutine.
func (in *mustafaturanInstance) close() error { return nil }
