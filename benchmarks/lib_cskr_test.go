package benchmarks

import (
	"strconv"
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
	consume := func(sub int, ch chan Msg) {
		in.wg.Go(func() {
			for m := range ch {
				cfg.deliver(sub, m)
			}
		})
	}
	if cfg.ordered {
		for shard := range shardCount {
			consume(0, in.ps.Sub(shardTopics[shard]))
		}
	} else {
		for i := range cfg.subscribers {
			consume(i, in.ps.Sub("bench"))
		}
	}
	return in, nil
}

func (in *cskrInstance) publish(m Msg) error {
	if in.ordered {
		in.ps.Pub(m, shardTopics[shardOf(keyNames[m.Key])])
		return nil
	}
	in.ps.Pub(m, "bench")
	return nil
}

// close shuts the library's goroutine down, which closes every subscriber's channel, and
// waits for our goroutines to drain them.
func (in *cskrInstance) close() error {
	in.ps.Shutdown()
	in.wg.Wait()
	return nil
}

// shardTopics are the topic names of the ordered shards of scenario C.
var shardTopics = func() []string {
	topics := make([]string, shardCount)
	for i := range topics {
		topics[i] = "bench-shard-" + strconv.Itoa(i)
	}
	return topics
}()
