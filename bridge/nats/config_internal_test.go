package natsbridge

import (
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
)

// A partial retry policy takes the bridge's defaults for the fields it leaves zero, not
// the core's (100 ms, 10 s), which the docs do not promise for the bridge.
func TestRetryPolicyDefaultsPerField(t *testing.T) {
	tests := []struct {
		name          string
		retry, public eventbus.RetryPolicy
		wantRetry     eventbus.RetryPolicy
		wantPublish   eventbus.RetryPolicy
	}{
		{
			name:        "zero",
			wantRetry:   eventbus.RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Second, MaxBackoff: time.Minute},
			wantPublish: eventbus.RetryPolicy{MaxAttempts: 20, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second},
		},
		{
			name:        "attempts only",
			retry:       eventbus.RetryPolicy{MaxAttempts: 10},
			public:      eventbus.RetryPolicy{MaxAttempts: 40},
			wantRetry:   eventbus.RetryPolicy{MaxAttempts: 10, InitialBackoff: time.Second, MaxBackoff: time.Minute},
			wantPublish: eventbus.RetryPolicy{MaxAttempts: 40, InitialBackoff: 100 * time.Millisecond, MaxBackoff: 5 * time.Second},
		},
		{
			name:        "backoff above the default cap",
			retry:       eventbus.RetryPolicy{InitialBackoff: 2 * time.Minute, Jitter: -1},
			public:      eventbus.RetryPolicy{InitialBackoff: 10 * time.Second, Multiplier: 3},
			wantRetry:   eventbus.RetryPolicy{MaxAttempts: 5, InitialBackoff: 2 * time.Minute, MaxBackoff: 2 * time.Minute, Jitter: -1},
			wantPublish: eventbus.RetryPolicy{MaxAttempts: 20, InitialBackoff: 10 * time.Second, MaxBackoff: 10 * time.Second, Multiplier: 3},
		},
		{
			name:        "cap below the default backoff",
			retry:       eventbus.RetryPolicy{MaxBackoff: 500 * time.Millisecond},
			public:      eventbus.RetryPolicy{MaxBackoff: 50 * time.Millisecond},
			wantRetry:   eventbus.RetryPolicy{MaxAttempts: 5, InitialBackoff: 500 * time.Millisecond, MaxBackoff: 500 * time.Millisecond},
			wantPublish: eventbus.RetryPolicy{MaxAttempts: 20, InitialBackoff: 50 * time.Millisecond, MaxBackoff: 50 * time.Millisecond},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Config{Retry: tt.retry, PublishRetry: tt.public}.withDefaults()
			if err != nil {
				t.Fatalf("withDefaults() = %v", err)
			}
			if cfg.Retry != tt.wantRetry || cfg.PublishRetry != tt.wantPublish {
				t.Errorf("Retry = %+v, PublishRetry = %+v; want %+v and %+v", cfg.Retry, cfg.PublishRetry, tt.wantRetry, tt.wantPublish)
			}
		})
	}
}

// The outage the default PublishRetry rides out, as the docs state it: the waits between
// its 20 attempts add up to 71.3 s (57 s to 71.3 s with the default jitter). While the
// client knows it is disconnected an attempt fails at once, so that is the whole budget.
// It must end within the default Duplicates window, or a retried forward could be stored
// twice.
func TestPublishRetryBudget(t *testing.T) {
	cfg, err := Config{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	p := cfg.PublishRetry
	p.Jitter = -1
	var total time.Duration
	for n := 1; n < p.MaxAttempts; n++ {
		total += p.Backoff(n)
	}
	if want := 71300 * time.Millisecond; total != want {
		t.Errorf("the waits of the default PublishRetry add up to %v; the docs say %v", total, want)
	}
	if total >= cfg.Duplicates {
		t.Errorf("PublishRetry's waits (%v) outlast the Duplicates window (%v)", total, cfg.Duplicates)
	}
}
