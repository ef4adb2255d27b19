package natsbridge_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
)

// An event dead-lettered on the way out, because every attempt failed while the broker
// was down, is not stored in the stream once the broker is back: no attempt waits in the
// client's reconnect buffer to be sent later. A dead letter means not forwarded.
func TestOutboundDeadLetterIsNotForwardedLater(t *testing.T) {
	s := startServer(t)
	dead := &busDeadLetters{}
	a := newBus(t, "bus-a")
	cfg := testConfig(s)
	cfg.PublishRetry = eventbus.RetryPolicy{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond}
	cfg.PublishTimeout = 200 * time.Millisecond
	cfg.DeadLetter = dead
	reconnected := make(chan struct{}, 1)
	cfg.Options = append(cfg.Options, nats.ReconnectHandler(func(*nats.Conn) {
		select {
		case reconnected <- struct{}{}:
		default:
		}
	}))
	br := connect(t, a, cfg, natsbridge.Forward(steps))

	s.stop()
	lostID := uuid.New()
	if err := eventbus.Publish(t.Context(), a, steps, step{Key: "k"}, eventbus.WithKey("k"), eventbus.WithID(lostID)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, func() bool { return len(dead.all()) == 1 },
		func() string { return fmt.Sprintf("no dead letter while the broker is down; stats %+v", br.Stats()) })

	// Once the client has reconnected, it has sent anything it had kept for the server (it
	// does so before it reports the reconnection): the stream must hold no copy of the
	// dead-lettered event, only the event forwarded next.
	s.start()
	select {
	case <-reconnected:
	case <-time.After(20 * time.Second):
		t.Fatal("the bridge did not reconnect within 20s")
	}
	laterID := uuid.New()
	if err := eventbus.Publish(t.Context(), a, steps, step{Key: "k", Seq: 1}, eventbus.WithKey("k"), eventbus.WithID(laterID)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 20*time.Second, func() bool { return br.Stats().Forwarded == 1 },
		func() string {
			return fmt.Sprintf("the later event was not forwarded after the restart; stats %+v", br.Stats())
		})

	stream, err := jsClient(t, s).Stream(t.Context(), s.stream)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for seq := uint64(1); ; seq++ {
		m, err := stream.GetMsg(t.Context(), seq)
		if err != nil {
			break
		}
		ids = append(ids, m.Header.Get(nats.MsgIdHdr))
	}
	if len(ids) != 1 || ids[0] != laterID.String() {
		t.Errorf("the stream holds events %v; want only the later one, %v (%v was dead-lettered)", ids, laterID, lostID)
	}
}
