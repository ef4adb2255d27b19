package benchmarks

import (
	"context"
	"encoding/binary"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/ae30fb47/eventbus"
	watermillbus "github.com/ae30fb47/eventbus/bridge/watermill"
)

// The Router benchmarks run one Watermill program over two Pub/Subs: a Router whose one
// consumer handler counts the messages it handles, fed by a publisher that publishes b.N
// messages. Each measures from the first Publish until the handler has handled the last
// message, so ns/op is the cost of one message end to end, and then checks that every
// message was handled exactly once.

const routerTopic = "router-bench"

// routerPubSub is a Pub/Sub under benchmark and the function that closes it.
type routerPubSub struct {
	pub   message.Publisher
	sub   message.Subscriber
	close func()
}

func BenchmarkWatermillRouter(b *testing.B) {
	b.Run("gochannel", func(b *testing.B) {
		benchRouter(b, func() routerPubSub {
			ps := gochannel.NewGoChannel(gochannel.Config{}, watermill.NopLogger{})
			return routerPubSub{ps, ps, func() { ps.Close() }}
		})
	})
	b.Run("eventbus", func(b *testing.B) {
		benchRouter(b, func() routerPubSub {
			bus := eventbus.New()
			ps := watermillbus.New(bus, watermillbus.Config{})
			return routerPubSub{ps, ps, func() {
				ps.Close()
				bus.Close(context.Background())
			}}
		})
	})
}

// routerHandled records which of the published messages, numbered from 0, the handler saw,
// and how many times.
type routerHandled struct {
	mu    sync.Mutex
	times []uint8
	dups  int
	total atomic.Int64
	want  atomic.Int64
	done  chan struct{}
}

func (h *routerHandled) handle(msg *message.Message) error {
	i := binary.LittleEndian.Uint64(msg.Payload)
	h.mu.Lock()
	for uint64(len(h.times)) <= i {
		h.times = append(h.times, 0)
	}
	if h.times[i]++; h.times[i] > 1 {
		h.dups++
	}
	h.mu.Unlock()
	if h.total.Add(1) == h.want.Load() {
		close(h.done)
	}
	return nil
}

func benchRouter(b *testing.B, newPubSub func() routerPubSub) {
	ps := newPubSub()
	defer ps.close()
	router, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	handled := &routerHandled{done: make(chan struct{})}
	handled.want.Store(-1)
	router.AddConsumerHandler("count", routerTopic, ps.sub, handled.handle)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	routerDone := make(chan error, 1)
	go func() { routerDone <- router.Run(ctx) }()
	<-router.Running()

	b.ReportAllocs()
	n := 0
	for b.Loop() {
		payload := make([]byte, 8)
		binary.LittleEndian.PutUint64(payload, uint64(n))
		n++
		if err := ps.pub.Publish(routerTopic, message.NewMessage(watermill.NewUUID(), payload)); err != nil {
			b.Fatal(err)
		}
	}
	b.StartTimer() // b.Loop stopped it: the wait for the last messages is part of the cost
	handled.want.Store(int64(n))
	if handled.total.Load() != int64(n) {
		select {
		case <-handled.done:
		case <-time.After(time.Minute):
			b.Fatalf("handled %d of %d messages in a minute", handled.total.Load(), n)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/msg")

	if err := router.Close(); err != nil {
		b.Fatal(err)
	}
	if err := <-routerDone; err != nil {
		b.Fatal(err)
	}
	handled.mu.Lock()
	defer handled.mu.Unlock()
	missing := 0
	for i := range n {
		if i >= len(handled.times) || handled.times[i] == 0 {
			missing++
		}
	}
	if missing > 0 || handled.dups > 0 {
		b.Fatalf("of %d messages, %d not handled and %d handled more than once", n, missing, handled.dups)
	}
}
