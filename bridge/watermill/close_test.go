package watermillbus_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	watermillbus "github.com/ae30fb47/eventbus/bridge/watermill"
)

// TestSubscribeCtxClosesChannel checks that ending a Subscribe context closes its channel
// and, for a subscription of its own, removes it from the bus: the messages it held go to
// the dead-letter hook, with an error wrapping eventbus.ErrClosed.
func TestSubscribeCtxClosesChannel(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{})
	ctx, cancel := context.WithCancel(t.Context())
	ch, err := ps.Subscribe(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	publishN(t, ps, "t", "m", 3)
	if got := receiveAck(t, ch, 1); got[0] != "m0" {
		t.Fatalf("received %q; want m0", got[0])
	}
	cancel()
	expectClosed(t, ch)
	waitDeadLetters(t, ps.deadLetters, 2)
	for _, dl := range ps.deadLetters.all() {
		if !errors.Is(dl.Err, eventbus.ErrClosed) {
			t.Errorf("dead letter with %v; want eventbus.ErrClosed", dl.Err)
		}
	}
}

// waitDeadLetters waits until dls holds n dead letters, failing the test if that takes
// longer than waitFor or more arrive.
func waitDeadLetters(t *testing.T, dls *deadLetters, n int) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for len(dls.all()) < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := len(dls.all()); got != n {
		t.Fatalf("%d dead letters; want %d", got, n)
	}
}

// TestCloseWaitsForInFlightAck checks that closing a Subscriber closes its channel at once
// and cancels the in-flight message's context, and that an ack within CloseTimeout counts:
// the message is neither redelivered nor dead-lettered.
func TestCloseWaitsForInFlightAck(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{})
	sub := ps.NewSubscriber("group")
	ch := subscribe(t, sub, "t")
	publishN(t, ps, "t", "m", 1)
	msg := receive(t, ch)

	closed := make(chan struct{})
	go func() {
		sub.Close()
		close(closed)
	}()
	expectClosed(t, ch)
	select {
	case <-msg.Context().Done():
	case <-time.After(waitFor):
		t.Fatal("message context not cancelled by Close")
	}
	select {
	case <-closed:
		t.Fatal("Close returned before the message in flight was acked")
	case <-time.After(20 * time.Millisecond):
	}
	msg.Ack()
	select {
	case <-closed:
	case <-time.After(waitFor):
		t.Fatal("Close did not return after the ack")
	}
	expectNone(t, subscribe(t, ps.NewSubscriber("group"), "t"), 50*time.Millisecond)
	if dls := ps.deadLetters.all(); len(dls) != 0 {
		t.Errorf("%d dead letters; want none", len(dls))
	}
}

// TestInFlightNotAckedInTime checks what becomes of a message whose consumer left and
// which was not acked within CloseTimeout: it is redelivered to the group by the retry
// policy, or dead-lettered with ErrNotAcked once the policy's attempts are spent.
func TestInFlightNotAckedInTime(t *testing.T) {
	t.Run("redelivered", func(t *testing.T) {
		ps := newPubSub(t, watermillbus.Config{CloseTimeout: 10 * time.Millisecond})
		first := ps.NewSubscriber("group")
		ch := subscribe(t, first, "t")
		sent := publishN(t, ps, "t", "m", 1)[0]
		receive(t, ch) // and never answered
		first.Close()
		got := receive(t, subscribe(t, ps.NewSubscriber("group"), "t"))
		got.Ack()
		if got.UUID != sent.UUID {
			t.Errorf("next consumer got %q; want the unanswered message", got.Payload)
		}
	})
	t.Run("dead-lettered", func(t *testing.T) {
		dls := &deadLetters{}
		ps := newPubSub(t, watermillbus.Config{CloseTimeout: 10 * time.Millisecond, Retry: &eventbus.RetryPolicy{MaxAttempts: 1}, DeadLetter: dls})
		first := ps.NewSubscriber("group")
		ch := subscribe(t, first, "t")
		publishN(t, ps, "t", "m", 1)
		receive(t, ch)
		first.Close()
		waitDeadLetters(t, dls, 1)
		if dl := dls.all()[0]; !errors.Is(dl.Err, watermillbus.ErrNotAcked) || dl.Attempts != 1 {
			t.Errorf("dead letter after %d attempts with %v; want 1 and ErrNotAcked", dl.Attempts, dl.Err)
		}
	})
}

// TestPubSubClose checks Close: every channel closes, what the PubSub holds (a message in
// flight not acked in time, a group's queue, a retention) is dead-lettered, later calls
// return ErrClosed, concurrent calls all return once it is done, and the bus goes on.
func TestPubSubClose(t *testing.T) {
	dls := &deadLetters{}
	ps := newPubSub(t, watermillbus.Config{Retain: true, CloseTimeout: 10 * time.Millisecond, DeadLetter: dls})
	inFlight := subscribe(t, ps, "a")
	publishN(t, ps, "a", "a", 1)
	receive(t, inFlight) // and never answered
	grouped := subscribe(t, ps.NewSubscriber("g"), "b")
	publishN(t, ps, "b", "b", 3) // b0 in flight, unanswered; b1, b2 queued
	receive(t, grouped)
	publishN(t, ps, "c", "c", 2) // retained

	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			if err := ps.Close(); err != nil {
				t.Errorf("Close() = %v; want nil", err)
			}
		})
	}
	wg.Wait()
	expectClosed(t, inFlight)
	expectClosed(t, grouped)
	if got := len(dls.all()); got != 6 {
		t.Errorf("%d dead letters once Close returned; want 6", got)
	}
	for _, dl := range dls.all() {
		if !errors.Is(dl.Err, eventbus.ErrClosed) {
			t.Errorf("dead letter of %v with %v; want eventbus.ErrClosed", dl.Event.Metadata, dl.Err)
		}
	}

	if err := ps.Publish("a", newMsg("late")); !errors.Is(err, watermillbus.ErrClosed) {
		t.Errorf("Publish after Close = %v; want ErrClosed", err)
	}
	if _, err := ps.Subscribe(t.Context(), "a"); !errors.Is(err, watermillbus.ErrClosed) {
		t.Errorf("Subscribe after Close = %v; want ErrClosed", err)
	}
	if _, err := ps.NewSubscriber("g").Subscribe(t.Context(), "a"); !errors.Is(err, watermillbus.ErrClosed) {
		t.Errorf("Subscribe of a new Subscriber after Close = %v; want ErrClosed", err)
	}
	if err := eventbus.Publish(t.Context(), ps.bus, eventbus.NewTopic[[]byte]("a"), []byte("x")); err != nil {
		t.Errorf("bus Publish after the PubSub closed = %v; want nil", err)
	}
}

// TestPublishWaitsForRoom checks the backpressure of a full subscription: Publish waits
// until the message's context ends, or for a message whose context cannot end, until the
// PubSub closes.
func TestPublishWaitsForRoom(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{Buffer: 1})
	subscribe(t, ps.NewSubscriber("idle"), "t") // a group with no one reading
	publishN(t, ps, "t", "m", 1)

	msg := newMsg("deadline")
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	msg.SetContext(ctx)
	if err := ps.Publish("t", msg); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Publish to a full subscription = %v; want context.DeadlineExceeded", err)
	}

	errc := make(chan error, 1)
	go func() { errc <- ps.Publish("t", newMsg("background")) }()
	select {
	case err := <-errc:
		t.Fatalf("Publish to a full subscription = %v before Close; want it to wait", err)
	case <-time.After(20 * time.Millisecond):
	}
	ps.Close()
	if err := <-errc; !errors.Is(err, watermillbus.ErrClosed) {
		t.Errorf("Publish waiting when the PubSub closed = %v; want ErrClosed", err)
	}
}

// TestBlockPublishUntilSubscriberAck checks that option: Publish returns once the message
// was acked, and with the error of a subscription that gave up on it.
func TestBlockPublishUntilSubscriberAck(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{BlockPublishUntilSubscriberAck: true, Retry: &eventbus.RetryPolicy{MaxAttempts: 1}, DeadLetter: eventbus.DiscardDeadLetters})
	ch := subscribe(t, ps, "t")
	for _, ack := range []bool{true, false} {
		answered := make(chan struct{})
		go func() {
			msg := <-ch
			time.Sleep(20 * time.Millisecond)
			close(answered)
			if ack {
				msg.Ack()
			} else {
				msg.Nack()
			}
		}()
		err := ps.Publish("t", newMsg("m"))
		select {
		case <-answered:
		default:
			t.Fatal("Publish returned before the message was answered")
		}
		if ack && err != nil {
			t.Errorf("Publish of an acked message = %v; want nil", err)
		}
		if !ack && !errors.Is(err, watermillbus.ErrNacked) {
			t.Errorf("Publish of a message nacked and given up on = %v; want ErrNacked", err)
		}
	}
}

// The adapter's ErrClosed is the bus's, as the modules' one scheme of errors has it.
func TestErrClosedWrapsTheBuses(t *testing.T) {
	if !errors.Is(watermillbus.ErrClosed, eventbus.ErrClosed) {
		t.Error("errors.Is(watermillbus.ErrClosed, eventbus.ErrClosed) = false")
	}
}
