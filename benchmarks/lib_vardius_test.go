package benchmarks

import messagebus "github.com/vardius/message-bus"

// vardiusLib drives github.com/vardius/message-bus: MessageBus.Subscribe per subscriber
// (the library gives each handler a goroutine and a queue of queueDepth), Publish per
// event, which sends it to every handler's queue and blocks while one is full. Handlers
// are called by reflection, each on its own goroutine, in publish order. In scenario C, a
// topic per shard with one handler each. "Handled" is the handler returning.
var vardiusLib = library{name: "vardius-message-bus", start: startVardius}

type vardiusInstance struct {
	mb      messagebus.MessageBus
	ordered bool
	topics  []string
}

func startVardius(cfg config) (instance, error) {
	in := &vardiusInstance{mb: messagebus.New(queueDepth), ordered: cfg.ordered, topics: []string{benchTopic}}
	if cfg.ordered {
		in.topics = shardTopics
	}
	err := cfg.consumers(func(sub, _ int, topic string) error {
		return in.mb.Subscribe(topic, func(m Msg) { cfg.deliver(sub, m) })
	})
	if err != nil {
		return nil, abandon(in, err)
	}
	return in, nil
}

func (in *vardiusInstance) publish(m Msg) error {
	in.mb.Publish(topicOf(in.ordered, m), m)
	return nil
}

// close closes every topic, which closes the handlers' queues; each handler goroutine
// exits once its queue is empty, which it is by now. The library offers no way to wait
// for that: goleak's retries in TestMain see them gone.
func (in *vardiusInstance) close() error {
	for _, topic := range in.topics {
		in.mb.Close(topic)
	}
	return nil
}
