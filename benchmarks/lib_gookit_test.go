package benchmarks

import (
	"errors"

	"github.com/gookit/event"
)

// gookitLib drives github.com/gookit/event with Manager.FireAsync: a listener per
// subscriber (Manager.On), and per event a custom event (event.BasicEvent embedded, the
// library's documented way to carry typed data) put on the manager's channel
// (queueDepth). The manager's consumer goroutines (3, its default) each take events off
// that channel and call every listener in turn, so one subscriber's events run on three
// goroutines at once, in no set order. In scenario C, a manager per shard with a single
// consumer (WithConsumerNum(1)), which keeps the shard's order. "Handled" is the listener
// returning.
var gookitLib = library{name: "gookit-event", start: startGookit}

type gookitEvent struct {
	event.BasicEvent
	msg Msg
}

type gookitInstance struct {
	managers []*event.Manager // one, or one per shard
	ordered  bool
}

func startGookit(cfg config) (instance, error) {
	in := &gookitInstance{ordered: cfg.ordered}
	err := cfg.consumers(func(sub, shard int, _ string) error {
		if shard == len(in.managers) { // a manager per shard, or one for all subscribers
			opts := []event.OptionFn{event.WithChannelSize(queueDepth)}
			if cfg.ordered {
				opts = append(opts, event.WithConsumerNum(1))
			}
			in.managers = append(in.managers, event.NewManager(benchTopic, opts...))
		}
		in.managers[shard].On(benchTopic, event.ListenerFunc(func(e event.Event) error {
			cfg.deliver(sub, e.(*gookitEvent).msg)
			return nil
		}))
		return nil
	})
	if err != nil {
		return nil, abandon(in, err)
	}
	return in, nil
}

func (in *gookitInstance) publish(m Msg) error {
	e := &gookitEvent{msg: m}
	e.SetName(benchTopic)
	if in.ordered {
		in.managers[shardOf(keyNames[m.Key])].FireAsync(e)
		return nil
	}
	in.managers[0].FireAsync(e)
	return nil
}

// close closes each manager's channel and waits for its consumers to finish.
func (in *gookitInstance) close() error {
	var errs []error
	for _, em := range in.managers {
		if err := em.CloseWait(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
