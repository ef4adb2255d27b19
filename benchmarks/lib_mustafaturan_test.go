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
	register := func(sub int, topic, key string) {
		b.RegisterHandler(key, bus.Handler{
			Handle:  func(_ context.Context, e bus.Event) { cfg.deliver(sub, e.Data.(Msg)) },
			Matcher: "^" + topic + "$",
		})
	}
	if cfg.ordered {
		b.RegisterTopics(shardTopics...)
		for shard, topic := range shardTopics {
			register(0, topic, "shard-"+strconv.Itoa(shard))
		}
		return in, nil
	}
	b.RegisterTopics("bench")
	for i := range cfg.subscribers {
		register(i, "bench", "sub-"+strconv.Itoa(i))
	}
	return in, nil
}

func (in *mustafaturanInstance) publish(m Msg) error {
	if in.ordered {
		return in.b.Emit(context.Background(), shardTopics[shardOf(keyNames[m.Key])], m)
	}
	return in.b.Emit(context.Background(), "bench", m)
}

// close has nothing to stop: the bus starts no goroutine.
func (in *mustafaturanInstance) close() error { return nil }
