package benchmarks

import (
	"sync"

	"github.com/cskr/pubsub/v2"
)

// cskrLib drives github.com/cskr/pubsub/v2: PubSub.Sub per subscriber returns a channel
// (capacity queueDepth) that a goroutine of ours drains into the handler; PubSub.Pub per
// event, which hands the event to the library's goroutine, which sends it to every
// subscriber's channel. In scenario C, a topic per shard with one subscriber each.
// "Handled" is the handler returning.
var cskrLib = library{name: "cskr-pubsub", start: startCskr}

type cskrInstance struct {
	ps      *pubsub.PubSub[string, Msg]
	ordered bool
	wg      sync.WaitGroup
}

func startCskr(cfg config) (instance, error) {
	in := &cskrInstance{ps: pubsub.New[string, Msg](queueDepth), ordered: cfg.ordered}
	err := cfg.consumers(func(sub, _ int, topic string) error {
		cfg.drain(&in.wg, sub, in.ps.Sub(topic))
		return nil
	})
	if err != nil {
		return nil, abandon(in, err)
	}
	return in, nil
}

func (in *cskrInstance) publish(m Msg) error {
	in.ps.Pub(m, topicOf(in.ordered, m))
	return nil
}

// close shuts the library's goroutine down, which closes every subscriber's channel, and
// waits for our goroutines to drain them.
func (in *cskrInstance) close() error {
	in.ps.Shutdown()
	in.wg.Wait()
	return nil
}
