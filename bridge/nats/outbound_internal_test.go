package natsbridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/cloudevents"
	"github.com/nats-io/nats.go"
)

// Outbound dead letters are counted by reason, and logged once per reason per minute, with
// the number left unlogged since the last line (Forward's doc).
func TestForwardDeadLettersLogOncePerReasonAMinute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf bytes.Buffer
		var handedOn int
		f := &forwardDeadLetters{
			logger: slog.New(slog.NewTextHandler(&buf, nil)),
			next: eventbus.DeadLetterFunc(func(context.Context, eventbus.DeadLetter) error {
				handedOn++
				return nil
			}),
		}
		dead := func(err error) {
			f.HandleDeadLetter(context.Background(), eventbus.DeadLetter{Err: err, Attempts: 1})
		}
		invalid := &cloudevents.Error{Kind: cloudevents.ErrInvalid, Attribute: "x", Reason: "bad"}
		for range 3 {
			dead(invalid)
		}
		dead(fmt.Errorf("publish: %w", nats.ErrMaxPayload))
		dead(errors.New("nats: timeout"))
		dead(eventbus.ErrClosed)
		time.Sleep(59 * time.Second)
		dead(invalid) // within the minute: counted, not logged
		time.Sleep(time.Second)
		dead(invalid) // a minute after the first line: logged, saying 3 went unlogged
		if got, want := f.stats(), (ForwardDeadLetters{Invalid: 5, TooLarge: 1, Failed: 1, Undelivered: 1}); got != want {
			t.Errorf("stats %+v; want %+v", got, want)
		}
		if handedOn != 8 {
			t.Errorf("%d dead letters handed on; want all 8", handedOn)
		}
		lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
		count := func(reason string) (n int) {
			for _, l := range lines {
				if strings.Contains(l, "reason="+reason+" ") {
					n++
				}
			}
			return n
		}
		if count(ReasonInvalid) != 2 || count(ReasonTooLarge) != 1 || count(ReasonFailed) != 1 || count(ReasonUndelivered) != 1 {
			t.Errorf("log lines:\n%s\nwant 2 invalid, 1 each of toolarge, failed, undelivered", buf.String())
		}
		if last := lines[len(lines)-1]; !strings.Contains(last, "not_logged_since_last=3") {
			t.Errorf("the minute's second line %q; want not_logged_since_last=3", last)
		}
	})
}
