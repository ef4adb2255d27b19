package natsbridge

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/ae30fb47/eventbus"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config configures a [Bridge]. Its zero value connects to nats.DefaultURL with the
// defaults below; every zero field takes its documented default.
//
// Every bridge that shares a stream must agree on SubjectPrefix and Partitions, and every
// bridge of one Group on the topics it receives and on AckWait: they share the durable
// consumers, whose configuration the last one to connect writes (see Rolling deploys in
// the package doc for what happens while they disagree).
type Config struct {
	// URL of the NATS server(s), comma-separated; default nats.DefaultURL
	// (nats://127.0.0.1:4222).
	URL string
	// Options are passed to nats.Connect as they are: credentials (nats.UserCredentials,
	// nats.UserInfo, nats.Token, nats.Nkey), TLS (nats.Secure, nats.RootCAs,
	// nats.ClientCert), reconnection (nats.MaxReconnects, nats.ReconnectWait), a name.
	// A nats.ClosedHandler is kept (the bridge runs its own after it). The bridge
	// adds nats.MaxReconnects(-1) first, so that it reconnects forever unless an option
	// says otherwise, and nats.ReconnectBufSize(-1) last, which no option overrides: a publish or an ack made while the connection is down fails at once,
	// instead of waiting in the client's buffer to be sent on reconnect, where a forward
	// that its retries had meanwhile dead-lettered would be stored after all.
	Options []nats.Option

	// Stream is the JetStream stream's name; default "EVENTBUS". If it does not exist,
	// Connect creates it with the settings below; if it exists, it is used as it is and
	// must capture SubjectPrefix+".>".
	Stream string
	// SubjectPrefix starts every subject of the bridge; default "eventbus". Events of
	// topic T with partition p go to "<prefix>.<p>.<T>", dead letters to
	// "<prefix>.deadletter.<p>.<T>".
	SubjectPrefix string
	// Partitions is the number of partitions, N: an event with key k goes to partition
	// Partition(k, N), one without a key to a partition picked by its ID. Default 8.
	// Changing it while events are in flight breaks the order of their keys.
	Partitions int
	// Storage of a stream Connect creates: jetstream.FileStorage (the default) or
	// jetstream.MemoryStorage.
	Storage jetstream.StorageType
	// Replicas of a stream Connect creates; default 1 (a cluster may use 3).
	Replicas int
	// MaxAge of a stream Connect creates: how long events are kept; default 0, which
	// keeps them until the stream's limits remove them (it has none by default, so set
	// one in production).
	MaxAge time.Duration
	// Duplicates is the stream's de-duplication window for Nats-Msg-Id, for a stream
	// Connect creates; default 2 minutes, the server's. A forwarded event retried after a
	// broker outage is stored once if its retries end within it.
	Duplicates time.Duration

	// Group names the durable consumers, "<Group>-<p>" for partition p; default
	// "eventbus". Bridges of one Group split the events among them; each Group receives
	// every event.
	Group string
	// AckWait is how long the server waits for the outcome of a delivery before it
	// redelivers; default 30s. The bridge reports progress every AckWait/3 while local
	// subscribers work, so it bounds only a bridge that stopped answering.
	AckWait time.Duration
	// Retry is the broker-level retry policy of received events: its MaxAttempts counts
	// deliveries by the server, and a failed delivery is redelivered after Backoff of its
	// delivery count (NakWithDelay). Each zero field takes its default: MaxAttempts 5,
	// InitialBackoff 1s, MaxBackoff 1 min, then the bus's Multiplier 2 and Jitter 0.2
	// (an InitialBackoff above 1 min raises the cap to it; a MaxBackoff below 1s lowers
	// the first backoff to it).
	Retry eventbus.RetryPolicy

	// PublishRetry is the retry policy of the local subscription that forwards events:
	// a publish that JetStream did not acknowledge (broker down, timeout) is retried by
	// it, then dead-lettered. Each zero field takes its default, as for Retry:
	// MaxAttempts 20, InitialBackoff 100ms, MaxBackoff 5s, Multiplier 2, Jitter 0.2.
	//
	// The outage it rides out is the sum of its waits: 71.3s for the default (57s to
	// 71.3s with jitter), since an attempt made while the client knows it is disconnected
	// fails at once. An attempt that reaches no answer (a server that hangs, a connection
	// not yet known to be dead) waits PublishTimeout instead: up to 20 × 5s more. Keep the
	// whole schedule within the stream's Duplicates window, so that a forward retried
	// after a lost ack is stored once. PublishRetry also paces the retries of a dead
	// letter that cannot be published (see the package doc).
	PublishRetry eventbus.RetryPolicy
	// PublishTimeout bounds one publish, from sending to JetStream's ack (forwards and
	// dead letters), and one wait for the server to confirm an ack; default 5s.
	PublishTimeout time.Duration
	// PublishConcurrency is the forwarding subscription's concurrency (see
	// eventbus.WithConcurrency): events of different keys forwarded at once; default 64.
	PublishConcurrency int
	// DeadLetter receives the events that could not be forwarded; default the bus's
	// dead-letter hook (see eventbus.WithDeadLetter).
	DeadLetter eventbus.DeadLetterHandler

	// MaxEventBytes bounds a received event: its body plus its CloudEvents headers.
	// A larger one is dead-lettered as invalid. Default cloudevents.DefaultMaxSize (1 MiB).
	MaxEventBytes int
	// Logger receives the bridge's reports; default slog.Default(). At Info: a delivery
	// sent back with a delay because its topic had no local subscriber or its type is
	// not received here. At Warn: each dead letter; a dead-letter publish that failed and
	// will be retried; an ack that the server did not confirm (it redelivers); a nak or
	// term that could not reach the server; a fetch that failed and is restarted. At
	// Error: an event dropped because its dead letter could not be published (with its
	// stream sequence), and a delivery without JetStream metadata. The connection's own
	// events (disconnects, reconnects) are nats.go's: see nats.DisconnectErrHandler and
	// the like in Options.
	Logger *slog.Logger
	// Subscriber is the name of the local subscriptions that forward events; default
	// "nats-bridge".
	Subscriber string
}

// withDefaults returns c with its zero fields set, or an error for an invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.URL == "" {
		c.URL = nats.DefaultURL
	}
	if c.Stream == "" {
		c.Stream = "EVENTBUS"
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = "eventbus"
	}
	if c.Partitions == 0 {
		c.Partitions = 8
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.Duplicates == 0 {
		c.Duplicates = 2 * time.Minute
	}
	if c.Group == "" {
		c.Group = "eventbus"
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	c.Retry = retryDefaults(c.Retry, 5, time.Second, time.Minute)
	c.PublishRetry = retryDefaults(c.PublishRetry, 20, 100*time.Millisecond, 5*time.Second)
	if c.PublishTimeout == 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.PublishConcurrency == 0 {
		c.PublishConcurrency = 64
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Subscriber == "" {
		c.Subscriber = "nats-bridge"
	}
	switch {
	case c.Partitions < 1:
		return c, fmt.Errorf("natsbridge: Partitions must be > 0, got %d", c.Partitions)
	case c.Replicas < 1:
		return c, fmt.Errorf("natsbridge: Replicas must be > 0, got %d", c.Replicas)
	case c.MaxAge < 0 || c.Duplicates < 0 || c.AckWait < 0 || c.PublishTimeout < 0:
		return c, errors.New("natsbridge: MaxAge, Duplicates, AckWait and PublishTimeout must not be negative")
	case c.PublishConcurrency < 1:
		return c, fmt.Errorf("natsbridge: PublishConcurrency must be > 0, got %d", c.PublishConcurrency)
	case c.MaxEventBytes < 0:
		return c, fmt.Errorf("natsbridge: MaxEventBytes must not be negative, got %d", c.MaxEventBytes)
	}
	if err := c.Retry.Validate(); err != nil {
		return c, fmt.Errorf("natsbridge: Retry: %w", err)
	}
	if err := c.PublishRetry.Validate(); err != nil {
		return c, fmt.Errorf("natsbridge: PublishRetry: %w", err)
	}
	if err := checkSubject(c.SubjectPrefix); err != nil {
		return c, fmt.Errorf("natsbridge: SubjectPrefix: %w", err)
	}
	if err := checkToken(c.Stream); err != nil || strings.ContainsAny(c.Stream, "./\\") {
		return c, fmt.Errorf("natsbridge: Stream %q is not a valid stream name", c.Stream)
	}
	if err := checkToken(c.Group); err != nil || strings.ContainsAny(c.Group, "./\\") {
		return c, fmt.Errorf("natsbridge: Group %q is not a valid consumer name", c.Group)
	}
	return c, nil
}

// retryDefaults gives the zero MaxAttempts, InitialBackoff and MaxBackoff of p the
// bridge's defaults, field by field, so that a policy that sets only some fields keeps the
// bridge's scale for the others, not the in-process bus's (100 ms, 10 s). The default
// backoff is lowered to a MaxBackoff set below it, and the default cap raised to an
// InitialBackoff set above it. Multiplier and Jitter keep the bus's defaults (2 and 0.2).
func retryDefaults(p eventbus.RetryPolicy, attempts int, initial, maxBackoff time.Duration) eventbus.RetryPolicy {
	if p.MaxAttempts == 0 {
		p.MaxAttempts = attempts
	}
	if p.InitialBackoff == 0 {
		p.InitialBackoff = initial
		if p.MaxBackoff > 0 {
			p.InitialBackoff = min(initial, p.MaxBackoff)
		}
	}
	if p.MaxBackoff == 0 {
		p.MaxBackoff = max(maxBackoff, p.InitialBackoff)
	}
	return p
}

// checkSubject returns nil if s is a literal NATS subject: dot-separated tokens, none
// empty, without white space or wildcards.
func checkSubject(s string) error {
	for tok := range strings.SplitSeq(s, ".") {
		if err := checkToken(tok); err != nil {
			return fmt.Errorf("%q is not a literal NATS subject: %w", s, err)
		}
	}
	return nil
}

// checkToken returns nil if tok may be one token of a literal subject.
func checkToken(tok string) error {
	if tok == "" {
		return errors.New("empty token")
	}
	if tok == "*" || tok == ">" || strings.ContainsFunc(tok, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return fmt.Errorf("token %q has a wildcard, white space or a control character", tok)
	}
	return nil
}
