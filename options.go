package eventbus

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"
)

// An Option configures a [Bus] in [New].
type Option interface{ applyBus(*busConfig) }

// A SubscribeOption configures one subscription in [Subscribe].
type SubscribeOption interface{ applySubscribe(*subscribeConfig) }

type busConfig struct {
	source     string
	logger     *slog.Logger
	deadLetter DeadLetterHandler
	middleware []Middleware
	publishMW  []PublishMiddleware
	health     HealthPolicy
}

func defaultBusConfig() busConfig {
	health, _ := HealthPolicy{}.withDefaults()
	return busConfig{source: programName(), logger: slog.Default(), health: health}
}

// programName is the default Source: the base name of the running program.
func programName() string {
	if len(os.Args) > 0 && os.Args[0] != "" {
		return filepath.Base(os.Args[0])
	}
	return "eventbus"
}

type busOption func(*busConfig)

func (f busOption) applyBus(c *busConfig) { f(c) }

// WithSource sets the Source of every event the bus publishes; the default is the program's
// name. It panics if source is empty.
func WithSource(source string) Option {
	if source == "" {
		panic("eventbus: WithSource: source must not be empty")
	}
	return busOption(func(c *busConfig) { c.source = source })
}

// WithLogger sets the logger the bus reports to: dead letters (by the default hook) and
// failures of dead-letter hooks at level Error, a Close cut short at Warn, circuit changes
// at Warn and Info, and subscriptions, retries and a clean Close at Debug; nothing per
// handled event. The default is slog.Default(). It panics if l is nil.
func WithLogger(l *slog.Logger) Option {
	if l == nil {
		panic("eventbus: WithLogger: logger must not be nil")
	}
	return busOption(func(c *busConfig) { c.logger = l })
}

// DeadLetterOption is both an [Option] and a [SubscribeOption]; see [WithDeadLetter].
type DeadLetterOption struct {
	h   DeadLetterHandler
	err error // a nil hook: New panics with it, Subscribe returns it
}

func (o DeadLetterOption) applyBus(c *busConfig) {
	if o.err != nil {
		panic(o.err.Error())
	}
	c.deadLetter = o.h
}

func (o DeadLetterOption) applySubscribe(c *subscribeConfig) {
	if o.err != nil {
		if c.err == nil {
			c.err = o.err
		}
		return
	}
	c.deadLetter = o.h
}

// WithDeadLetter sets the hook that receives the events a subscriber gives up on. Given to
// [Subscribe] it applies to that subscription; given to [New] it is the default of every
// subscription that sets none. Without either, dead letters are logged. A nil h is a
// programmer error: New panics with it, Subscribe returns it; use [DiscardDeadLetters] to
// drop dead letters.
func WithDeadLetter(h DeadLetterHandler) DeadLetterOption {
	if h == nil {
		return DeadLetterOption{err: errors.New("eventbus: WithDeadLetter: handler must not be nil")}
	}
	return DeadLetterOption{h: h}
}

type subscribeConfig struct {
	sole        bool // the topic may have no other subscriber (see Handle)
	concurrency int
	buffer      int
	retry       RetryPolicy
	deadLetter  DeadLetterHandler
	middleware  []Middleware
	timeout     time.Duration
	dedupWindow time.Duration
	dedupMax    int

	breakerFailures int
	breakerCoolDown time.Duration

	err error // the first invalid option
}

// DefaultBuffer is the buffer capacity of a subscription that sets none with [WithBuffer].
const DefaultBuffer = 1024

func defaultSubscribeConfig() subscribeConfig {
	return subscribeConfig{concurrency: runtime.GOMAXPROCS(0), buffer: DefaultBuffer}
}

func (c *subscribeConfig) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

type subscribeOption func(*subscribeConfig)

func (f subscribeOption) applySubscribe(c *subscribeConfig) { f(c) }

// WithConcurrency sets how many events the subscription handles at once, each on its own
// worker goroutine; the default is runtime.GOMAXPROCS(0). Events with the same key are still
// handled one at a time. [Subscribe] returns an error if n < 1.
func WithConcurrency(n int) SubscribeOption {
	return subscribeOption(func(c *subscribeConfig) {
		if n < 1 {
			c.fail(fmt.Errorf("eventbus: WithConcurrency: n must be > 0, got %d", n))
		}
		c.concurrency = n
	})
}

// WithBuffer sets how many accepted events the subscription holds before [Publish] blocks:
// queued, waiting to retry, or being handled. The default is [DefaultBuffer]. [Subscribe]
// returns an error if n < 1.
func WithBuffer(n int) SubscribeOption {
	return subscribeOption(func(c *subscribeConfig) {
		if n < 1 {
			c.fail(fmt.Errorf("eventbus: WithBuffer: n must be > 0, got %d", n))
		}
		c.buffer = n
	})
}

// WithRetry sets the subscription's retry policy; without it the zero [RetryPolicy] (the
// default policy) applies. [Subscribe] returns an error for an invalid policy.
func WithRetry(p RetryPolicy) SubscribeOption {
	return subscribeOption(func(c *subscribeConfig) { c.retry = p })
}
