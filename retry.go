package eventbus

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// RetryPolicy says how often and how patiently a subscriber's handler is retried after it
// returns an error (or panics). Between attempts, an event waits in the subscription without
// holding a worker: only later events with the same key wait behind it.
//
// The zero value is the default policy, and each zero field takes its default:
// MaxAttempts 3, InitialBackoff 100ms, MaxBackoff 10s, Multiplier 2, Jitter 0.2. So the
// waits before the second and third attempts are about 100ms and 200ms.
//
// The wait before attempt n+1 is min(InitialBackoff × Multiplier^(n-1), MaxBackoff), then
// shortened by a random fraction of up to Jitter of itself, so waits spread out but never
// exceed MaxBackoff.
type RetryPolicy struct {
	// MaxAttempts counts every attempt, the first included: 1 means no retry.
	MaxAttempts int
	// InitialBackoff is the wait before the second attempt.
	InitialBackoff time.Duration
	// MaxBackoff caps every wait.
	MaxBackoff time.Duration
	// Multiplier (>= 1) grows the wait after each failed attempt (after the first 1024, the
	// wait grows no more).
	Multiplier float64
	// Jitter in [0, 1] is the largest fraction by which a wait is randomly shortened.
	// A negative Jitter turns jitter off.
	Jitter float64
}

// Defaults of a zero RetryPolicy field.
const (
	defaultMaxAttempts    = 3
	defaultInitialBackoff = 100 * time.Millisecond
	defaultMaxBackoff     = 10 * time.Second
	defaultMultiplier     = 2
	defaultJitter         = 0.2
)

// withDefaults returns p with its zero fields set to their defaults, or an error naming the
// first invalid field.
func (p RetryPolicy) withDefaults() (RetryPolicy, error) {
	switch {
	case p.MaxAttempts < 0:
		return p, fmt.Errorf("eventbus: RetryPolicy: MaxAttempts must be >= 0, got %d", p.MaxAttempts)
	case p.InitialBackoff < 0:
		return p, fmt.Errorf("eventbus: RetryPolicy: InitialBackoff must be >= 0, got %v", p.InitialBackoff)
	case p.MaxBackoff < 0:
		return p, fmt.Errorf("eventbus: RetryPolicy: MaxBackoff must be >= 0, got %v", p.MaxBackoff)
	case p.Multiplier != 0 && !(p.Multiplier >= 1): // also rejects NaN
		return p, fmt.Errorf("eventbus: RetryPolicy: Multiplier must be >= 1, got %v", p.Multiplier)
	case p.Jitter > 1 || p.Jitter != p.Jitter:
		return p, fmt.Errorf("eventbus: RetryPolicy: Jitter must be <= 1, got %v", p.Jitter)
	}
	if p.MaxAttempts == 0 {
		p.MaxAttempts = defaultMaxAttempts
	}
	if p.InitialBackoff == 0 {
		p.InitialBackoff = defaultInitialBackoff
	}
	if p.MaxBackoff == 0 {
		p.MaxBackoff = max(defaultMaxBackoff, p.InitialBackoff)
	}
	if p.MaxBackoff < p.InitialBackoff {
		return p, fmt.Errorf("eventbus: RetryPolicy: MaxBackoff %v is below InitialBackoff %v", p.MaxBackoff, p.InitialBackoff)
	}
	if p.Multiplier == 0 {
		p.Multiplier = defaultMultiplier
	}
	if p.Jitter == 0 {
		p.Jitter = defaultJitter
	}
	if p.Jitter < 0 {
		p.Jitter = 0
	}
	return p, nil
}

// Validate reports the first invalid field of p, as [Subscribe] would for [WithRetry]; nil
// means p is usable (zero fields take their defaults).
func (p RetryPolicy) Validate() error {
	_, err := p.withDefaults()
	return err
}

// Backoff returns the wait after failed attempt n (n >= 1) before attempt n+1, jitter
// included, as the bus computes it; zero fields take their defaults. Bridges use it to have a
// broker redeliver by the same policy (NATS JetStream's NakWithDelay, say). For an invalid
// policy (see [RetryPolicy.Validate]) it returns 0.
func (p RetryPolicy) Backoff(n int) time.Duration {
	p, err := p.withDefaults()
	if err != nil {
		return 0
	}
	return p.backoff(max(n, 1))
}

// baseBackoff is the wait after failed attempt n (n >= 1) before jitter: InitialBackoff grown
// by Multiplier per further attempt, for at most maxBackoffGrowth attempts, capped at
// MaxBackoff. It never decreases as n grows. p must have its defaults applied.
func (p RetryPolicy) baseBackoff(n int) time.Duration {
	d := float64(p.InitialBackoff)
	limit := float64(p.MaxBackoff)
	for i := 1; i < min(n, maxBackoffGrowth+1) && d < limit; i++ {
		d *= p.Multiplier
	}
	if d >= limit {
		return p.MaxBackoff
	}
	return time.Duration(d)
}

// maxBackoffGrowth bounds the work of baseBackoff, which runs under a subscription's lock
// and for brokers' delivery counts: a Multiplier of 1.02 already grows 600-million-fold in
// that many attempts, so only a Multiplier closer to 1 stops short of MaxBackoff.
const maxBackoffGrowth = 1024

// backoff is baseBackoff(n) shortened by a random fraction of up to Jitter, so it lies in
// [(1-Jitter)×base, base] and never exceeds MaxBackoff.
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.baseBackoff(n)
	if p.Jitter > 0 && d > 0 {
		d -= time.Duration(rand.Float64() * p.Jitter * float64(d))
	}
	return d
}

// Permanent marks err as not worth retrying: a handler that returns Permanent(err) has its
// event dead-lettered at once, whatever attempts remain. The dead letter's Err is still err
// for errors.Is and errors.As. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// IsPermanent reports whether err, or any error it wraps (a [*DeliveryError] or the errors
// joined by a [WithWait] publish included), was made by [Permanent]. Bridges use it to tell a
// failure that a broker must not redeliver from one it should retry.
func IsPermanent(err error) bool { return isPermanent(err) }

// isPermanent reports whether err, or any error it wraps, was made by Permanent.
func isPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}
