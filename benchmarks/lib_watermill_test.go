package benchmarks

import (
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
)

// watermillLib drives Watermill's GoChannel Pub/Sub: GoChannel.Subscribe per subscriber
// returns a channel (OutputChannelBuffer queueDepth) that a goroutine of ours drains into
// the handler, acking each message after it; Publish per event, of a message with a new
// UUID (watermill.NewUUID) and the Msg encoded in its payload. Publish starts a goroutine
// per message and one per subscriber, which waits for that subscriber's ack, so a
// subscriber's messages are not ordered; its own tests declare GuaranteedOrder: false.
// In scenario C, a topic per shard and BlockPublishUntilSubscriberAck, the configuration
// that keeps order: Publish returns once the message is acked. "Handled" is the handler
// returning (the ack follows).
var watermillLib = library{name: "watermill-gochannel", start: startWatermill}

type watermillInstance struct {
	gc      *gochannel.GoChannel
	ordered bool
	wg      sync.WaitGroup
}

func startWatermill(cfg config) (instance, error) {
	in := &watermillInstance{
		gc: gochannel.NewGoChannel(gochannel.Config{
			OutputChannelBuffer:            queueDepth,
			BlockPublishUntilSubscriberAck: cfg.ordered,
		}, watermill.NopLogger{}),
		ordered: cfg.ordered,
	}
	err := cfg.consumers(func(sub, _ int, topic string) error {
		msgs, err := in.gc.Subscribe(context.Background(), topic)
		if err != nil {
			return err
		}
		in.wg.Go(func() {
			for msg := range msgs {
				cfg.deliver(sub, decodeMsg(msg.Payload))
				msg.Ack()
			}
		})
		return nil
	})
	if err != nil {
		return nil, abandon(in, err)
	}
	return in, nil
}

func (in *watermillInstance) publish(m Msg) error {
	return in.gc.Publish(topicOf(in.ordered, m), message.NewMessage(watermill.NewUUID(), encodeMsg(m)))
}

// close closes the Pub/Sub, which closes the subscribers' channels once their pending
// sends are done, and waits for our goroutines to drain them. The goroutines Publish
// started end with the ack of their message, which every message has had by now.
func (in *watermillInstance) close() error {
	if err := in.gc.Close(); err != nil {
		return fmt.Errorf("watermill: %w", err)
	}
	in.wg.Wait()
	return nil
}

// encodeMsg and decodeMsg carry a Msg in a message's payload: 16 bytes, little-endian.
func encodeMsg(m Msg) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint64(b, m.Seq)
	binary.LittleEndian.PutUint32(b[8:], m.Pub)
	binary.LittleEndian.PutUint32(b[12:], m.Key)
	return b
}

func decodeMsg(b []byte) Msg {
	if len(b) != 16 {
		// A foreign payload: out of every range, so the sink reports it.
		return Msg{Seq: ^uint64(0), Pub: ^uint32(0), Key: ^uint32(0)}
	}
	return Msg{
		Seq: binary.LittleEndian.Uint64(b),
		Pub: binary.LittleEndian.Uint32(b[8:]),
		Key: binary.LittleEndian.Uint32(b[12:]),
	}
}
