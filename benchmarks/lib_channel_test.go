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
	err := cfg.consumers(func(sub, _ int, _ string) error {
		ch := make(chan Msg, queueDepth) // the shard's channel is chans[shard]
		in.chans = append(in.chans, ch)
		cfg.drain(&in.wg, sub, ch)
		return nil
	})
	if err != nil {
		return nil, abandon(in, err)
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
