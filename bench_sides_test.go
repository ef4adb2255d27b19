package eventbus

import (
	"context"
	"testing"
)

// The benchmarks in this file are not end to end: each times one side of the hand-off
// alone, while the other side does not run, so that neither waits for the other nor takes
// the cache lines they share. They show the floor of each side's cost per event, which
// bounds what the end-to-end figures can reach (see docs/PERFORMANCE.md).

// sideBuffer is the gated subscriber's buffer, and sideChunk how many events a side
// benchmark hands over per timed round: fewer, so that no publisher ever waits for room,
// and many, so that opening the gate (waking the blocked handler) costs little per event.
const (
	sideBuffer = maxIntake
	sideChunk  = sideBuffer - 96
)

// gatedSubscriber is a subscription with one worker whose handler, while the gate is
// closed, blocks in the first event it gets, so that published events stay in the intake.
type gatedSubscriber struct {
	bus     *Bus
	closed  bool          // the gate; read by the handler only while the worker is blocked or idle
	entered chan struct{} // the handler blocked at the gate
	open    chan struct{} // opens the gate for the blocked handler
	handled int           // events handled since the gate last opened; the one worker's
	want    int
	done    chan struct{} // handled reached want
}

func newGatedSubscriber(b *testing.B) *gatedSubscriber {
	g := &gatedSubscriber{
		bus:     New(),
		entered: make(chan struct{}),
		open:    make(chan struct{}),
		done:    make(chan struct{}, 1),
	}
	_, err := Subscribe(g.bus, benchTopic, "gated", func(_ context.Context, ev Event[benchPayload]) error {
		if g.closed {
			g.entered <- struct{}{}
			<-g.open
			return nil
		}
		if g.handled++; g.handled == g.want {
			g.done <- struct{}{}
		}
		return nil
	}, WithConcurrency(1), WithBuffer(sideBuffer))
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// closeGate blocks the worker in its handler: it publishes one event and waits for the
// handler to block on it.
func (g *gatedSubscriber) closeGate(b *testing.B) {
	g.closed = true
	if err := Publish(context.Background(), g.bus, benchTopic, benchPayload{}); err != nil {
		b.Fatal(err)
	}
	<-g.entered
}

// drain opens the gate and waits until the worker has handled the n events behind it.
func (g *gatedSubscriber) drain(n int) {
	g.closed, g.handled, g.want = false, 0, n
	g.open <- struct{}{}
	<-g.done
}

// publishChunk publishes sideChunk events to the gated subscriber.
func (g *gatedSubscriber) publishChunk(b *testing.B) {
	ctx := context.Background()
	for i := range sideChunk {
		if err := Publish(ctx, g.bus, benchTopic, benchPayload{N: i}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPublisherAlone times Publish to one subscriber whose worker is blocked: the
// publisher's work per event (stamping, reserving room, claiming and filling a cell) on
// lines no other core touches meanwhile.
func BenchmarkPublisherAlone(b *testing.B) { benchSide(b, true) }

// BenchmarkWorkerAlone times one worker draining a full intake while nothing is published:
// the worker's work per event (taking a batch, building the envelope, calling the handler,
// recording the outcome and giving the room back).
func BenchmarkWorkerAlone(b *testing.B) { benchSide(b, false) }

// benchSide runs rounds of: block the worker, publish sideChunk events, let the worker
// drain them; it times the publishing if publisher, else the draining.
func benchSide(b *testing.B, publisher bool) {
	g := newGatedSubscriber(b)
	defer g.bus.Close(context.Background())
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		g.closeGate(b)
		timeIf(b, publisher)
		g.publishChunk(b)
		timeIf(b, !publisher)
		g.drain(sideChunk)
		b.StartTimer()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*sideChunk), "ns/event")
}

// timeIf starts b's timer if on, and stops it otherwise.
func timeIf(b *testing.B, on bool) {
	if on {
		b.StartTimer()
	} else {
		b.StopTimer()
	}
}
