package eventbus

import (
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// CircuitState is the state of a subscription's circuit breaker; see [WithCircuitBreaker].
type CircuitState uint32

const (
	// CircuitClosed: events are handled as usual. Also the state of a subscription without
	// a circuit breaker.
	CircuitClosed CircuitState = iota
	// CircuitOpen: the handler failed too often in a row; no attempt starts until the
	// cool-down has passed. Events wait in the buffer, and publishers wait once it is full.
	CircuitOpen
	// CircuitHalfOpen: the cool-down has passed; one attempt, the probe, is running. Its
	// success closes the circuit, its failure opens it for another cool-down.
	CircuitHalfOpen
)

// String returns "closed", "open" or "half-open".
func (s CircuitState) String() string {
	switch s {
	case CircuitClosed:
		return "closed"
	case CircuitOpen:
		return "open"
	case CircuitHalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("CircuitState(%d)", uint32(s))
}

// MarshalText returns the state's String, so that JSON shows "open" rather than 1.
func (s CircuitState) MarshalText() ([]byte, error) {
	if s > CircuitHalfOpen {
		return nil, fmt.Errorf("eventbus: CircuitState(%d) has no name", uint32(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText parses "closed", "open" or "half-open".
func (s *CircuitState) UnmarshalText(b []byte) error {
	for _, c := range []CircuitState{CircuitClosed, CircuitOpen, CircuitHalfOpen} {
		if string(b) == c.String() {
			*s = c
			return nil
		}
	}
	return fmt.Errorf("eventbus: no circuit state %q", b)
}

// WithCircuitBreaker pauses the subscription after failures consecutive failed attempts (of
// any events): for coolDown no attempt starts, so a failing dependency is not hammered and
// retries are not burnt while it is down. Nothing is dropped: events wait in the buffer
// (and publishers wait once it is full), retries included. Then one attempt probes: if it
// succeeds the circuit closes and handling resumes; if it fails the circuit opens for
// another coolDown. Attempts already running when the circuit opened decide nothing while
// it is open or half-open: only the probe does. The state is visible with
// [Subscription.Circuit], and each change is logged by the bus's logger (opening at Warn,
// closing at Info).
//
// Closing the bus waits out a cool-down only while events are held, and only until its ctx
// ends: the events still held are then dead-lettered as usual. [Subscribe] returns an
// error if failures < 1 or coolDown <= 0.
func WithCircuitBreaker(failures int, coolDown time.Duration) SubscribeOption {
	return subscribeOption(func(c *subscribeConfig) {
		switch {
		case failures < 1:
			c.fail(fmt.Errorf("eventbus: WithCircuitBreaker: failures must be > 0, got %d", failures))
		case coolDown <= 0:
			c.fail(fmt.Errorf("eventbus: WithCircuitBreaker: coolDown must be > 0, got %v", coolDown))
		}
		c.breakerFailures, c.breakerCoolDown = failures, coolDown
	})
}

// breaker is a subscription's circuit breaker. Its fields are guarded by the subscription's
// mu; state is atomic so that Subscription.Circuit reads it without the lock.
type breaker struct {
	failures int // consecutive failures that open the circuit
	coolDown time.Duration
	state    atomicCircuitState
	failed   int         // consecutive failed attempts so far
	probing  bool        // the half-open probe has been taken
	timer    *time.Timer // ends the cool-down while open
}

// admitLocked returns how many events a worker may start now: none while the circuit is
// open or its probe runs, else one, so that the outcome of each attempt is known before
// the next starts on this worker.
func (c *subCore) admitLocked(want int) int {
	br := c.breaker
	if br == nil || c.state.Load() == stateAborting {
		return want
	}
	switch br.state.Load() {
	case CircuitOpen:
		return 0
	case CircuitHalfOpen:
		if br.probing {
			return 0
		}
	}
	return 1
}

// mayAdmitLocked reports whether the circuit breaker lets an idle worker start an event now
// or once a cool-down has passed: not while the half-open probe runs.
func (c *subCore) mayAdmitLocked() bool {
	br := c.breaker
	return br == nil || c.state.Load() == stateAborting || br.state.Load() != CircuitHalfOpen || !br.probing
}

// tookLocked records that a worker took n events under admitLocked, and reports whether
// they are the half-open probe.
func (c *subCore) tookLocked(n int) bool {
	if br := c.breaker; br != nil && n > 0 && br.state.Load() == CircuitHalfOpen {
		br.probing = true
		return true
	}
	return false
}

// attemptedLocked records the outcome of one attempt, the half-open probe if probe is set,
// and moves the circuit accordingly. While the circuit is half-open only the probe decides:
// an attempt that began before the circuit opened and ends now counts for nothing. The
// subscription must have a breaker.
func (c *subCore) attemptedLocked(ok, probe bool) {
	br := c.breaker
	switch st := br.state.Load(); {
	case st == CircuitHalfOpen && !probe:
	case ok:
		br.failed = 0
		if st == CircuitHalfOpen {
			br.probing = false
			c.setCircuitLocked(CircuitClosed)
		}
	case st == CircuitHalfOpen:
		br.probing = false
		c.openLocked()
	case st == CircuitClosed:
		br.failed++
		if br.failed >= br.failures {
			c.openLocked()
		}
	}
}

// judgeLocked records the outcome of an event of a batch taken under admitLocked: err is
// its attempt's error, or errNotRun or errDuplicate for an event that ran no attempt.
func (c *subCore) judgeLocked(err error, probe bool) {
	switch {
	case err != errNotRun && err != errDuplicate:
		c.attemptedLocked(err == nil, probe)
	case probe:
		c.probeNotAttemptedLocked()
	}
}

// probeNotAttemptedLocked records that the half-open probe ended without an attempt (a
// repeat that de-duplication skipped, or one not run as the subscription aborts): the next
// event taken probes instead.
func (c *subCore) probeNotAttemptedLocked() {
	if br := c.breaker; br.state.Load() == CircuitHalfOpen {
		br.probing = false
	}
}

// openLocked opens the circuit for a cool-down, after which a timer makes it half-open and
// wakes the workers.
func (c *subCore) openLocked() {
	br := c.breaker
	c.setCircuitLocked(CircuitOpen)
	c.timers.Add(1)
	br.timer = time.AfterFunc(br.coolDown, func() {
		c.mu.Lock()
		if br.timer != nil { // not stopped by abort
			br.timer = nil
			br.failed = 0
			c.setCircuitLocked(CircuitHalfOpen)
			c.work.Broadcast()
		}
		c.mu.Unlock()
		c.timers.Done()
	})
}

// stopBreakerLocked ends a cool-down early, for abort.
func (c *subCore) stopBreakerLocked() {
	if br := c.breaker; br != nil && br.timer != nil {
		if br.timer.Stop() {
			c.timers.Done()
		}
		br.timer = nil
	}
}

func (c *subCore) setCircuitLocked(to CircuitState) {
	from := c.breaker.state.Swap(to)
	if from == to {
		return
	}
	level := slog.LevelInfo
	if to == CircuitOpen {
		level = slog.LevelWarn
	}
	if to == CircuitClosed {
		c.work.Broadcast() // the workers that slept while it was not take the backlog again
	}
	c.bus.logger.LogAttrs(c.ctx, level, "eventbus: circuit breaker "+to.String(),
		slog.String("topic", c.topic),
		slog.String("subscriber", c.name),
		slog.String("from", from.String()),
	)
}

// Circuit returns the state of the subscription's circuit breaker, [CircuitClosed] if it
// has none. It is safe to call at any time, from any goroutine.
func (s *Subscription) Circuit() CircuitState { return s.core.circuit() }

func (c *subCore) circuit() CircuitState {
	if br := c.breaker; br != nil {
		return br.state.Load()
	}
	return CircuitClosed
}

// atomicCircuitState is a CircuitState read and written atomically.
type atomicCircuitState struct{ v atomic.Uint32 }

func (a *atomicCircuitState) Load() CircuitState { return CircuitState(a.v.Load()) }
func (a *atomicCircuitState) Swap(s CircuitState) CircuitState {
	return CircuitState(a.v.Swap(uint32(s)))
}
