package benchmarks

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/ae30fb47/eventbus"
)

var eventbusTopic = eventbus.NewTopic[Msg](benchTopic)

// eventbusLib drives this module's bus: one Subscribe per subscriber with its defaults
// (concurrency GOMAXPROCS, buffer DefaultBuffer), Publish per event, with WithKey in
// scenario C; "handled" is the handler returning nil. guarded adds what scenario E
// measures: a retry policy, a dead-letter hook (which fails the run if it is ever called)
// and de-duplication.
func eventbusLib(name string, guarded bool) library {
	return library{name: name, start: func(cfg config) (instance, error) {
		return startEventbus(cfg, guarded)
	}}
}

type eventbusInstance struct {
	bus     *eventbus.Bus
	ordered bool
	dead    atomic.Int64 // dead letters (guarded only)
}

func startEventbus(cfg config, guarded bool) (instance, error) {
	in := &eventbusInstance{bus: eventbus.New(), ordered: cfg.ordered}
	var opts []eventbus.SubscribeOption
	if guarded {
		opts = []eventbus.SubscribeOption{
			eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 5, InitialBackoff: 10 * time.Millisecond, MaxBackoff: time.Second}),
			eventbus.WithDeadLetter(eventbus.DeadLetterFunc(func(context.Context, eventbus.DeadLetter) error {
				in.dead.Add(1)
				return nil
			})),
			eventbus.WithDeduplication(2*time.Minute, 100_000), // JetStream's default window
		}
	}
	deliver := cfg.deliver
	for i := range cfg.subscribers {
		_, err := eventbus.Subscribe(in.bus, eventbusTopic, "sub-"+strconv.Itoa(i),
			func(_ context.Context, ev eventbus.Event[Msg]) error {
				deliver(i, ev.Payload)
				return nil
			}, opts...)
		if err != nil {
			return nil, abandon(in, err)
		}
	}
	return in, nil
}

func (in *eventbusInstance) publish(m Msg) error {
	if in.ordered {
		return eventbus.Publish(context.Background(), in.bus, eventbusTopic, m, eventbus.WithKey(keyNames[m.Key]))
	}
	return eventbus.Publish(context.Background(), in.bus, eventbusTopic, m)
}

func (in *eventbusInstance) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := in.bus.Close(ctx); err != nil {
		return err
	}
	if n := in.dead.Load(); n > 0 {
		return fmt.Errorf("%d events dead-lettered, with no handler failing", n)
	}
	return nil
}
