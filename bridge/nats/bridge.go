package natsbridge

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/cloudevents"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Bridge connects a local bus to a NATS JetStream stream: it forwards the topics given with
// [Forward] and feeds the bus the topics given with [Receive]. Make one with [Connect] and
// stop it with [Bridge.Close]. Its methods are safe for concurrent use.
type Bridge struct {
	cfg Config
	bus *eventbus.Bus
	nc  *nats.Conn
	// connClosed is closed by the connection's ClosedHandler, if closedCallback: the
	// options may turn it off for a Close of ours (nats.NoCallbacksAfterClientClose),
	// which then closes the connection at once.
	connClosed     chan struct{}
	closedCallback bool
	js             jetstream.JetStream
	registry       *cloudevents.Registry
	decoder        cloudevents.Decoder
	stats          counters
	outbound       *forwardDeadLetters // the forwards' dead-letter hook

	maxAttempts int // deliveries of a received event, from cfg.Retry

	forwards []*eventbus.Subscription

	stop      context.CancelFunc // ends the receiving loops' fetches
	abort     context.CancelFunc // also ends the waits of in-flight deliveries
	loops     sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
	closed    chan struct{}
}

// Connect connects to NATS, makes sure the stream exists, creates or updates the durable
// consumers of the received topics (one per partition), and starts forwarding and
// receiving on bus b per routes. It returns an error, and leaves nothing running, for an
// invalid Config or route, a topic both forwarded and received (a loop), or a server that
// cannot be reached or refuses the stream or a consumer before ctx ends. ctx bounds the
// whole of it, the connection's dial and handshake included (nats.go's own connect
// timeout, nats.Timeout, 2s by default, still applies within it); once Connect has
// returned, ctx no longer matters: reconnections go on as the options say.
//
// The bridge does not own b: close the bridge first (which finishes forwarding what b
// accepted), then b.
func Connect(ctx context.Context, b *eventbus.Bus, cfg Config, routes ...Route) (*Bridge, error) {
	if b == nil {
		return nil, errors.New("natsbridge: Connect: nil bus")
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	br := &Bridge{
		cfg:      cfg,
		bus:      b,
		registry: cloudevents.NewRegistry(),
		decoder:  cloudevents.Decoder{MaxSize: cfg.MaxEventBytes},
		closed:   make(chan struct{}),
	}
	br.maxAttempts = cfg.Retry.MaxAttempts // set by withDefaults
	br.outbound = &forwardDeadLetters{next: cfg.DeadLetter, logger: cfg.Logger}
	if br.outbound.next == nil {
		br.outbound.next = b.DeadLetterHandler()
	}
	forwarded := map[string]bool{}
	var received []string
	for _, r := range routes {
		if r.topic == "" {
			return nil, errors.New("natsbridge: Connect: zero Route: make routes with Forward and Receive")
		}
		if err := checkSubject(r.topic); err != nil {
			return nil, fmt.Errorf("natsbridge: topic %q cannot be a subject: %w", r.topic, err)
		}
		if r.receive != nil {
			if err := r.receive(br.registry); err != nil {
				return nil, fmt.Errorf("natsbridge: Receive: %w", err)
			}
			received = append(received, r.topic)
		} else {
			if forwarded[r.topic] {
				return nil, fmt.Errorf("natsbridge: Forward: topic %q given twice", r.topic)
			}
			forwarded[r.topic] = true
		}
	}
	for _, t := range received {
		if forwarded[t] {
			return nil, fmt.Errorf("natsbridge: topic %q is both forwarded and received: its events would loop", t)
		}
	}

	if err := br.dial(ctx); err != nil {
		return nil, err
	}
	if v := br.serverVersion(); len(received) > 1 && !v.atLeast(filterSubjectsSince) {
		err := fmt.Errorf("natsbridge: receiving %d topics needs nats-server 2.10 or later (a consumer with several filter subjects), and %s runs %s: "+
			"upgrade it, or connect one bridge per received topic, each with a Group of its own",
			len(received), br.nc.ConnectedUrlRedacted(), br.nc.ConnectedServerVersion())
		br.closeConn(ctx)
		return nil, err
	}
	var made setup
	if br.js, err = jetstream.New(br.nc); err == nil {
		err = br.ensureStream(ctx, &made)
	}
	var consumers []jetstream.Consumer
	if err == nil && len(received) > 0 {
		consumers, err = br.ensureConsumers(ctx, received, &made)
	}
	if err != nil {
		br.undo(made)
		br.closeConn(ctx)
		return nil, err
	}

	for _, r := range routes {
		if r.forward == nil {
			continue
		}
		sub, err := r.forward(br)
		if err != nil {
			for _, s := range br.forwards {
				s.Close(ctx) // forwards what was published meanwhile, until ctx ends
			}
			br.undo(made)
			br.closeConn(ctx)
			return nil, fmt.Errorf("natsbridge: Forward: %w", err)
		}
		br.forwards = append(br.forwards, sub)
	}

	fetchCtx, stop := context.WithCancel(context.Background())
	deliverCtx, abort := context.WithCancel(context.Background())
	br.stop, br.abort = stop, abort
	for p, c := range consumers {
		br.loops.Go(func() { br.receive(fetchCtx, deliverCtx, p, c) })
	}
	return br, nil
}

// setup records what Connect created on the server, so that a Connect that fails can
// leave the server as it found it.
type setup struct {
	stream    bool     // the stream
	consumers []string // durable consumers that did not exist before
}

// undo deletes what a failed Connect created, within PublishTimeout: the stream if it
// made it (and the consumers with it), else the consumers it made. What cannot be deleted
// (the server went away) is adopted by the next Connect, which finds the stream and
// updates the consumers.
func (br *Bridge) undo(made setup) {
	if br.js == nil || (!made.stream && len(made.consumers) == 0) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), br.cfg.PublishTimeout)
	defer cancel()
	if made.stream {
		if err := br.js.DeleteStream(ctx, br.cfg.Stream); err != nil {
			br.cfg.Logger.Warn("natsbridge: Connect failed, and the stream it created stays", slog.String("stream", br.cfg.Stream), slog.Any("error", err))
		}
		return
	}
	for _, name := range made.consumers {
		if err := br.js.DeleteConsumer(ctx, br.cfg.Stream, name); err != nil {
			br.cfg.Logger.Warn("natsbridge: Connect failed, and a consumer it created stays", slog.String("consumer", name), slog.Any("error", err))
		}
	}
}

// ensureStream makes sure the stream exists and captures the bridge's subjects, noting in
// made whether it created it.
func (br *Bridge) ensureStream(ctx context.Context, made *setup) error {
	all := br.cfg.SubjectPrefix + ".>"
	s, err := br.js.Stream(ctx, br.cfg.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = br.js.CreateStream(ctx, jetstream.StreamConfig{
			Name:       br.cfg.Stream,
			Subjects:   []string{all},
			Storage:    br.cfg.Storage,
			Replicas:   br.cfg.Replicas,
			MaxAge:     br.cfg.MaxAge,
			Duplicates: br.cfg.Duplicates,
		})
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			err = nil // another bridge created it meanwhile
		}
		if err != nil {
			return fmt.Errorf("natsbridge: create stream %s: %w", br.cfg.Stream, err)
		}
		made.stream = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("natsbridge: stream %s: %w", br.cfg.Stream, err)
	}
	for _, subj := range s.CachedInfo().Config.Subjects {
		if subj == all || subj == ">" {
			return nil
		}
	}
	return fmt.Errorf("natsbridge: stream %s exists but does not capture %s (its subjects: %v)",
		br.cfg.Stream, all, s.CachedInfo().Config.Subjects)
}

// ensureConsumers creates or updates the durable consumer of each partition: explicit
// acks, one message pending at a time, no delivery limit (the bridge dead-letters by its
// retry policy), filtered on the received topics.
func (br *Bridge) ensureConsumers(ctx context.Context, topics []string, made *setup) ([]jetstream.Consumer, error) {
	consumers := make([]jetstream.Consumer, br.cfg.Partitions)
	for p := range consumers {
		cc := jetstream.ConsumerConfig{
			Durable:       br.cfg.Group + "-" + strconv.Itoa(p),
			Description:   "eventbus natsbridge, partition " + strconv.Itoa(p),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       br.cfg.AckWait,
			MaxAckPending: 1,
			MaxDeliver:    -1,
			DeliverPolicy: jetstream.DeliverAllPolicy,
		}
		if len(topics) == 1 {
			cc.FilterSubject = br.subject(p, topics[0])
		} else {
			for _, t := range topics {
				cc.FilterSubjects = append(cc.FilterSubjects, br.subject(p, t))
			}
		}
		_, err := br.js.Consumer(ctx, br.cfg.Stream, cc.Durable)
		isNew := errors.Is(err, jetstream.ErrConsumerNotFound) // never delete one that may have existed
		c, err := br.js.CreateOrUpdateConsumer(ctx, br.cfg.Stream, cc)
		if err != nil {
			return nil, fmt.Errorf("natsbridge: consumer %s: %w", cc.Durable, err)
		}
		if isNew {
			made.consumers = append(made.consumers, cc.Durable)
		}
		consumers[p] = c
	}
	return consumers, nil
}

// subject returns the subject of topic's events in partition p.
func (br *Bridge) subject(p int, topic string) string {
	return br.cfg.SubjectPrefix + "." + strconv.Itoa(p) + "." + topic
}

// Partition returns the partition of key among n: FNV-1a (32 bits) of the key, modulo n.
// Every bridge computes it the same way, so a key's events share one partition's
// subjects and consumer. It panics if n < 1.
func Partition(key string, n int) int {
	if n < 1 {
		panic("natsbridge: Partition: n must be > 0")
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(n))
}

// Close stops the bridge, in the manner of http.Server.Shutdown:
//
//  1. It stops fetching: no new event is received. It waits for each partition's last
//     pull to end (250 ms at most) and hands back at once what that pull brings, so that
//     the server holds no pull of this bridge to deliver into once it is gone (servers
//     before 2.10 keep a pull past its connection, and an event delivered into it would
//     wait out AckWait).
//  2. It waits for the events being delivered to local subscribers and settles each with
//     the server (ack, redelivery or dead letter); if ctx ends first, it stops waiting and
//     hands them back (they may then be handled twice: once here, once by whoever
//     receives them next), and the acks of events already handled are sent without
//     waiting for the server's confirmation.
//  3. It closes the forwarding subscriptions, which forward what the bus accepted, with
//     their retries, until ctx ends; what is left is dead-lettered by the bus (see
//     eventbus.Subscription.Close), never dropped silently.
//  4. It flushes the NATS connection, so that the acks it sent reach the server (for at
//     most PublishTimeout, and not once ctx has ended or while the connection is down),
//     and closes it; a ClosedHandler given in Config.Options runs then.
//
// Every wait above ends when ctx does: acks and dead letters waiting for the server's
// confirmation included. Close returns ctx.Err() if ctx ended first, and nil otherwise. No
// goroutine of the bridge is left when it returns, and its NATS connection is closed.
// Later calls return the first call's result.
func (br *Bridge) Close(ctx context.Context) error {
	br.closeOnce.Do(func() {
		defer close(br.closed)
		br.stop()
		done := make(chan struct{})
		go func() { br.loops.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			br.abort()
			<-done
		}
		br.abort()
		var errs []error
		for _, s := range br.forwards {
			errs = append(errs, s.Close(ctx))
		}
		br.closeConn(ctx)
		br.closeErr = errors.Join(errs...)
		if ctx.Err() != nil {
			br.closeErr = ctx.Err()
		}
	})
	<-br.closed
	return br.closeErr
}

// Stats are the bridge's counters since Connect. Outbound:
//
//   - Forwarded: events JetStream acknowledged.
//   - ForwardDuplicates: of those, acknowledged as duplicates of one already stored (a
//     retried publish).
//   - ForwardFailures: publishes that failed (each retried or dead-lettered by
//     PublishRetry).
//   - ForwardDeadLetters: events of forwarded topics dead-lettered on the bus instead of
//     forwarded, by reason (see [Forward]).
//
// Inbound, each delivery counts in Received and ends in exactly one of Handled,
// AckFailures, Retried, HandedBack, DeadLettered or Dropped:
//
//   - Received: deliveries received, redeliveries included; Redelivered: of those,
//     deliveries after the first of their event.
//   - Handled: events every local subscriber handled, whose ack the server confirmed
//     (or, once Close's ctx had ended, that were acked without waiting for the
//     confirmation: the ack is flushed as the connection closes).
//   - AckFailures: events every local subscriber handled, whose ack the server did not
//     confirm: it redelivers them after AckWait.
//   - Retried: deliveries sent back to be redelivered after the retry policy's delay
//     (NakWithDelay): a subscriber failed, the topic had no local subscriber, or the type
//     is not one this bridge receives.
//   - NoSubscribers, UnknownTypes: deliveries that found no local subscriber of their
//     topic, or had a type this bridge does not receive; each also ends in Retried, or,
//     on the last attempt, in DeadLettered (or Dropped or HandedBack, if its dead letter
//     cannot be published).
//   - HandedBack: deliveries handed back for immediate redelivery (Nak) because the bridge
//     or its bus was closing.
//   - DeadLettered: events published to the dead-letter subject, then terminated;
//     Invalid: of those, events that could not be decoded (never given to a handler).
//   - DeadLetterFailures: dead-letter publishes that failed, each retried by
//     PublishRetry.
//   - Dropped: events terminated without a dead letter, every attempt to publish it
//     having failed (logged at Error).
//
// A delivery without JetStream metadata, which a consumer never gives, is only logged.
type Stats struct {
	Forwarded, ForwardDuplicates, ForwardFailures uint64
	ForwardDeadLetters                            ForwardDeadLetters

	Received, Redelivered, Handled, AckFailures, Retried, NoSubscribers, UnknownTypes,
	HandedBack, DeadLettered, Invalid, DeadLetterFailures, Dropped uint64
}

// counters holds Stats atomically.
type counters struct {
	forwarded, forwardDuplicates, forwardFailures atomic.Uint64

	received, redelivered, handled, ackFailures, retried, noSubscribers, unknownTypes,
	handedBack, deadLettered, invalid, deadLetterFailures, dropped atomic.Uint64
}

// Stats returns the bridge's counters.
func (br *Bridge) Stats() Stats {
	c := &br.stats
	return Stats{
		Forwarded: c.forwarded.Load(), ForwardDuplicates: c.forwardDuplicates.Load(),
		ForwardFailures: c.forwardFailures.Load(), ForwardDeadLetters: br.outbound.stats(),

		Received: c.received.Load(), Redelivered: c.redelivered.Load(), Handled: c.handled.Load(),
		AckFailures: c.ackFailures.Load(), Retried: c.retried.Load(), NoSubscribers: c.noSubscribers.Load(),
		UnknownTypes: c.unknownTypes.Load(), HandedBack: c.handedBack.Load(), DeadLettered: c.deadLettered.Load(),
		Invalid: c.invalid.Load(), DeadLetterFailures: c.deadLetterFailures.Load(), Dropped: c.dropped.Load(),
	}
}
