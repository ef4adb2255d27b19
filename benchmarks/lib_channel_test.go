package benchmarks

import "sync"

// channelLib is the reference: a buffered channel (queueDepth) per subscriber, each
// drained by one goroutine that calls the handler, and the publisher sending to every
// channel in turn. In scenario C, one channel and goroutine per shard. No envelope, no
// retries, nothing but the hand-off.
var channelLib = library{name: "channel", start: startChannels}

type channelInstance struct {
	chans   []chan Msg
	ordered bool
	wg      sync.WaitGroup
}

func startChannels(cfg config) (instance, error) {
	in := &channelInstance{ordered: cfg.ordered}
	consumers := cfg.subscribers
	if cfg.ordered {
		consumers = shardCount // every shard's consumer is subscriber 0
	}
	for c := range consumers {
		ch := make(chan Msg, queueDepth)
		in.chans = append(in.chans, ch)
		sub := c
		if cfg.ordered {
			sub = 0
		}
		in.wg.Go(func() {
			for m := range ch {
				cfg.deliver(sub, m)
			}
		})
	}
	return in, nil
}

func (in *channelInstance) publish(m Msg) error {
	if in.ordered {
		in.chans[shardOf(keyNames[m.Key])] <- m
		return nil
	}
	for _, ch := range in.chans {
		ch <- m
	}
	return nil
}

func (in *channelInstance) close() error {
	for _, ch := range in.chans {
		close(ch)
	}
	in.wg.Wait()
	return nil
}
