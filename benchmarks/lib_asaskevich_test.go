package benchmarks

import eventbus "github.com/asaskevich/EventBus"

// asaskevichLib drives github.com/asaskevich/EventBus with asynchronous handlers: a
// SubscribeAsync per subscriber, Publish per event, which starts a goroutine per handler
// and event and returns. Non-transactional handlers run concurrently, in no order, and
// nothing bounds the goroutines waiting to run. In scenario C, a topic per shard with a
// transactional handler (the library's way to run a handler's calls serially: Publish
// waits until the handler's previous call has finished before it starts the next).
// "Handled" is the handler returning.
var asaskevichLib = library{name: "asaskevich-EventBus", start: startAsaskevich}

type asaskevichInstance struct {
	bus     eventbus.Bus
	ordered bool
}

func startAsaskevich(cfg config) (instance, error) {
	in := &asaskevichInstance{bus: eventbus.New(), ordered: cfg.ordered}
	err := cfg.consumers(func(sub, _ int, topic string) error {
		return in.bus.SubscribeAsync(topic, func(m Msg) { cfg.deliver(sub, m) }, cfg.ordered)
	})
	if err != nil {
		return nil, abandon(in, err)
	}
	return in, nil
}

func (in *asaskevichInstance) publish(m Msg) error {
	in.bus.Publish(topicOf(in.ordered, m), m)
	return nil
}

// close waits for every handler goroutine to return (WaitAsync).
func (in *asaskevichInstance) close() error {
	in.bus.WaitAsync()
	return nil
}
