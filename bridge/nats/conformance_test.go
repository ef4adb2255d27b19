package natsbridge_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/bridge/bridgetest"
	natsbridge "github.com/ae30fb47/eventbus/bridge/nats"
	"github.com/nats-io/nats.go"
)

// The bridge passes the conformance kit that every bridge of this project passes, against
// the embedded server and, with NATSBRIDGE_TEST_SERVER, against an outside one.
func TestConformance(t *testing.T) {
	bridgetest.Run(t, func(t *testing.T) bridgetest.Harness {
		s := startServer(t)
		cfg := testConfig(s)
		var dls *deadLetters // watched from the first call, once the bridges made the stream
		var mu sync.Mutex
		proxies := map[bridgetest.Bridge]*proxy{}
		h := bridgetest.Harness{
			Forward: func(ctx context.Context, b *eventbus.Bus) (bridgetest.Bridge, error) {
				return natsbridge.Connect(ctx, b, cfg, natsbridge.Forward(bridgetest.Steps),
					natsbridge.Forward(bridgetest.Blobs), natsbridge.Forward(bridgetest.Notes))
			},
			Receive: func(ctx context.Context, b *eventbus.Bus, group string) (bridgetest.Bridge, error) {
				p := startProxy(t, s.hostPort()) // so that Crash can cut the connection
				c := cfg
				c.URL, c.Group = p.url(), group
				br, err := receiveAll(ctx, b, c, before210(serverVersion(t, s)))
				if err == nil {
					mu.Lock()
					proxies[br] = p
					mu.Unlock()
				}
				return br, err
			},
			Crash: func(br bridgetest.Bridge) {
				mu.Lock()
				p := proxies[br]
				mu.Unlock()
				p.close() // the connection is cut and cannot come back: the bridge settles nothing more
				t.Cleanup(func() {
					ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
					defer cancel()
					br.Close(ctx) // a crashed process's resources; the error does not matter
				})
			},
			PublishRaw: func(ctx context.Context, topic, key string, headers map[string]string, body []byte) error {
				msg := nats.NewMsg(s.subject(natsbridge.Partition(key, cfg.Partitions), topic))
				for k, v := range headers {
					msg.Header.Set(k, v)
				}
				msg.Data = body
				_, err := jsClient(t, s).PublishMsg(ctx, msg)
				return err
			},
			DeadLetters: func(context.Context) ([]bridgetest.DeadLetter, error) {
				mu.Lock()
				if dls == nil {
					dls = watchDeadLetters(t, s)
				}
				mu.Unlock()
				var out []bridgetest.DeadLetter
				for _, m := range dls.all() {
					out = append(out, bridgetest.DeadLetter{Reason: m.Headers().Get(natsbridge.HeaderReason), ID: m.Headers().Get("ce-id")})
				}
				return out, nil
			},
		}
		if s.external == "" {
			h.RestartBroker = func() error { s.restart(); return nil }
		}
		return h
	})
}

// receiveAll connects a bridge that receives the kit's three topics: one bridge, or, on a
// server before 2.10 (one filter subject per consumer), one per topic, each of a Group of
// its own, closed together.
func receiveAll(ctx context.Context, b *eventbus.Bus, cfg natsbridge.Config, perTopic bool) (bridgetest.Bridge, error) {
	if !perTopic {
		return natsbridge.Connect(ctx, b, cfg, natsbridge.Receive(bridgetest.Steps),
			natsbridge.Receive(bridgetest.Blobs), natsbridge.Receive(bridgetest.Notes))
	}
	var all bridges
	for _, r := range []struct {
		route natsbridge.Route
		name  string
	}{
		{natsbridge.Receive(bridgetest.Steps), "step"}, {natsbridge.Receive(bridgetest.Blobs), "blob"}, {natsbridge.Receive(bridgetest.Notes), "note"},
	} {
		c := cfg
		c.Group = cfg.Group + "-" + r.name
		br, err := natsbridge.Connect(ctx, b, c, r.route)
		if err != nil {
			all.Close(ctx)
			return nil, err
		}
		all = append(all, br)
	}
	return &all, nil
}

// bridges closes several bridges as one.
type bridges []*natsbridge.Bridge

func (bs *bridges) Close(ctx context.Context) error {
	var errs []error
	for _, br := range *bs {
		errs = append(errs, br.Close(ctx))
	}
	return errors.Join(errs...)
}
