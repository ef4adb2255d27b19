package eventbus

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/*.golden.json from what the tests see")

// statsScene builds, in a synctest bubble, a bus whose Stats and Health hold one of each
// thing a person reads: a healthy subscription whose handler takes 1.5 ms, one whose
// circuit breaker is open after dead-lettering every event, and a topic's count of
// published events. The bubble's clock makes every figure the same on every run.
func statsScene(t *testing.T, look func(b *Bus)) {
	synctest.Test(t, func(t *testing.T) {
		b := New(WithDeadLetter(DiscardDeadLetters), WithLogger(discardLogger))
		defer b.Close(context.Background())
		mustSubscribe(t, b, orders, "billing", func(context.Context, Event[order]) error {
			time.Sleep(1500 * time.Microsecond)
			return nil
		}, WithConcurrency(1), WithBuffer(8))
		mustSubscribe(t, b, orders, "mailer", func(context.Context, Event[order]) error {
			return errors.New("smtp: connection refused")
		}, WithConcurrency(1), WithBuffer(8), WithRetry(RetryPolicy{MaxAttempts: 1}), WithCircuitBreaker(3, time.Minute))
		for i := range 5 {
			mustPublish(t, b, orders, order{ID: "o", Total: i})
		}
		time.Sleep(time.Second) // the bubble's clock: billing handles all five, the circuit stays open
		synctest.Wait()
		look(b)
	})
}

// TestStatsJSONIsReadable: the JSON of Stats and Health, against golden files. Names in
// lower camel case, the circuit by name, durations as strings, healthy as a verdict.
func TestStatsJSONIsReadable(t *testing.T) {
	statsScene(t, func(b *Bus) {
		for name, v := range map[string]any{"stats": b.Stats(), "health": b.Health()} {
			got, err := json.MarshalIndent(v, "", "  ")
			if err != nil {
				t.Fatalf("json.Marshal(%s) = %v", name, err)
			}
			checkGolden(t, "testdata/"+name+".golden.json", append(got, '\n'))
		}
		var back Stats
		raw, _ := json.Marshal(b.Stats())
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatalf("json.Unmarshal(Stats) = %v", err)
		}
		if sub := back.Topics[0].Subscriptions[1]; sub.Circuit != CircuitOpen || sub.Latency.Samples == 0 {
			t.Errorf("Stats back from JSON: %+v; want the mailer's circuit open and its latency sampled", sub)
		}
	})
}

func checkGolden(t *testing.T, file string, got []byte) {
	t.Helper()
	if *updateGolden {
		if err := os.WriteFile(file, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs; got:\n%s", file, got)
	}
}

// The first attempt of each worker is sampled: a subscription that handled a few events
// shows their latency (after 100 events across two workers, it used to show 0 samples).
func TestLatencySampledFromTheFirstAttempt(t *testing.T) {
	b := New()
	defer closeBus(t, b)
	sub := mustSubscribe(t, b, orders, "s", func(context.Context, Event[order]) error { return nil }, WithConcurrency(2))
	for range 3 {
		mustPublish(t, b, orders, order{}, WithWait())
	}
	if n := sub.Stats().Latency.Samples; n == 0 {
		t.Errorf("after 3 events, Latency.Samples = 0; want the first attempt sampled")
	}
}

func TestCircuitStateText(t *testing.T) {
	for _, s := range []CircuitState{CircuitClosed, CircuitOpen, CircuitHalfOpen} {
		text, err := s.MarshalText()
		var back CircuitState
		if err != nil || back.UnmarshalText(text) != nil || back != s {
			t.Errorf("%v: MarshalText = %q, %v; back %v", s, text, err, back)
		}
	}
	if _, err := CircuitState(7).MarshalText(); err == nil {
		t.Error("CircuitState(7).MarshalText() = nil error")
	}
	var s CircuitState
	if err := s.UnmarshalText([]byte("ajar")); err == nil {
		t.Error(`UnmarshalText("ajar") = nil error`)
	}
}

func TestHTTPHandler(t *testing.T) {
	statsScene(t, func(b *Bus) {
		h := HTTPHandler(b)
		for _, tt := range []struct {
			method, path string
			code         int
			want         string
		}{
			{"GET", "/eventbus/stats", 200, `"circuit": "open"`},
			{"GET", "/eventbus/health", 503, `"healthy": false`},
			{"GET", "/eventbus/ready", 503, "order.created/mailer: circuit breaker open"},
			{"GET", "/eventbus/", 503, `"stats": {`},
			{"HEAD", "/stats", 200, ""},
			{"POST", "/stats", 405, "method not allowed"},
		} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.code || !strings.Contains(rec.Body.String(), tt.want) {
				t.Errorf("%s %s = %d %q; want %d with %q", tt.method, tt.path, rec.Code, rec.Body.String(), tt.code, tt.want)
			}
		}
	})
	b := New()
	defer closeBus(t, b)
	rec := httptest.NewRecorder()
	HTTPHandler(b).ServeHTTP(rec, httptest.NewRequest("GET", "/ready", nil))
	if rec.Code != http.StatusOK || rec.Body.String() != "ok\n" {
		t.Errorf("GET /ready of a healthy bus = %d %q; want 200 ok", rec.Code, rec.Body.String())
	}
}
