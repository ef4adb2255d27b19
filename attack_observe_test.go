package eventbus_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
)

func a16Keys(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func a16Fields(t *testing.T, what string, v any, want ...string) map[string]any {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		t.Fatalf("%s: %T %v, not an object", what, v, v)
	}
	sort.Strings(want)
	if got := a16Keys(m); !reflect.DeepEqual(got, want) {
		t.Errorf("%s fields %v; want %v", what, got, want)
	}
	return m
}

// A bus with a handled topic, a failing topic whose circuit is open, and a topic without
// subscribers that was published to.
func a16ObsBus(t *testing.T) (*eventbus.Bus, *eventbus.Subscription) {
	bus := a16Bus()
	ok := eventbus.NewTopic[int]("a16.obs.ok")
	bad := eventbus.NewTopic[int]("a16.obs.bad")
	for i, name := range []string{"s1", "s2"} {
		d := time.Duration(i+1) * 200 * time.Microsecond
		eventbus.Subscribe(bus, ok, name, func(ctx context.Context, ev eventbus.Event[int]) error {
			time.Sleep(d)
			return nil
		})
	}
	sub, _ := eventbus.Subscribe(bus, bad, "failing", func(ctx context.Context, ev eventbus.Event[int]) error {
		return errors.New("down")
	}, eventbus.WithCircuitBreaker(1, time.Hour), eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 1}))
	for i := 0; i < 70; i++ {
		eventbus.Publish(context.Background(), bus, ok, i, eventbus.WithWait())
	}
	eventbus.Publish(context.Background(), bus, bad, 1, eventbus.WithWait())
	eventbus.Publish(context.Background(), bus, eventbus.NewTopic[int]("a16.obs.none"), 1)
	return bus, sub
}

func TestAttackStatsJSON(t *testing.T) {
	bus, sub := a16ObsBus(t)
	defer a16Close(t, bus)
	if sub.Circuit() != eventbus.CircuitOpen {
		t.Fatalf("circuit %v", sub.Circuit())
	}
	st := bus.Stats()
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", b)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	a16Fields(t, "stats", m, "topics")
	topics, _ := m["topics"].([]any)
	if len(topics) == 0 {
		t.Fatal("no topics")
	}
	var names []string
	for _, tv := range topics {
		tm := a16Fields(t, "topic", tv, "name", "published", "subscriptions")
		names = append(names, tm["name"].(string))
		subs, ok := tm["subscriptions"].([]any)
		if !ok {
			t.Errorf("topic %v: subscriptions = %#v; want a list ([] when empty)", tm["name"], tm["subscriptions"])
		}
		for _, sv := range subs {
			sm := a16Fields(t, "subscription", sv, "topic", "name", "delivered", "handled", "duplicates", "failedAttempts",
				"retries", "deadLettered", "inFlight", "queued", "capacity", "circuit", "latency")
			c, _ := sm["circuit"].(string)
			if c != "closed" && c != "open" && c != "half-open" {
				t.Errorf("circuit %#v", sm["circuit"])
			}
			if sm["topic"] == "a16.obs.bad" && c != "open" {
				t.Errorf("failing circuit %q; want open", c)
			}
			lm := a16Fields(t, "latency", sm["latency"], "samples", "p50", "p95", "p99")
			for _, q := range []string{"p50", "p95", "p99"} {
				s, ok := lm[q].(string)
				if !ok {
					t.Errorf("latency %s = %#v, not a string", q, lm[q])
					continue
				}
				if _, err := time.ParseDuration(s); err != nil {
					t.Errorf("latency %s = %q: %v", q, s, err)
				}
			}
		}
	}
	if !sort.StringsAreSorted(names) {
		t.Errorf("topics not sorted: %v", names)
	}
	// Round trip.
	var back eventbus.Stats
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if !reflect.DeepEqual(back, st) {
		t.Errorf("round trip differs:\n got %+v\nwant %+v", back, st)
	}
	var sawLatency bool
	for _, tp := range st.Topics {
		for _, s := range tp.Subscriptions {
			if s.Latency.Samples > 0 && s.Latency.P50 > 0 {
				sawLatency = true
			}
		}
	}
	if !sawLatency {
		t.Logf("note: no latency sample was non-zero")
	}
}

func TestAttackStatsJSONEmpty(t *testing.T) {
	bus := a16Bus()
	b, _ := json.Marshal(bus.Stats())
	if string(b) != `{"topics":[]}` {
		t.Errorf("empty bus stats JSON %s; want {\"topics\":[]}", b)
	}
	h, _ := json.Marshal(bus.Health())
	var hm map[string]any
	json.Unmarshal(h, &hm)
	a16Fields(t, "health", hm, "healthy", "closed", "subscriptions")
	if _, ok := hm["subscriptions"].([]any); !ok {
		t.Errorf("empty health subscriptions %s", h)
	}
	// A subscription with nothing: problems [] not null.
	eventbus.Subscribe(bus, eventbus.NewTopic[int]("a16.obs.empty"), "s", func(ctx context.Context, ev eventbus.Event[int]) error { return nil })
	h, _ = json.Marshal(bus.Health())
	if !strings.Contains(string(h), `"problems":[]`) || !strings.Contains(string(h), `"healthy":true`) {
		t.Errorf("health JSON %s", h)
	}
	var zero eventbus.Stats
	b, _ = json.Marshal(zero)
	t.Logf("zero Stats marshals to %s", b)
	var zl eventbus.Latency
	b, _ = json.Marshal(zl)
	var zlm map[string]any
	json.Unmarshal(b, &zlm)
	for _, q := range []string{"p50", "p95", "p99"} {
		s, _ := zlm[q].(string)
		if d, err := time.ParseDuration(s); err != nil || d != 0 {
			t.Errorf("zero latency %s = %q", q, s)
		}
	}
	a16Close(t, bus)
	h, _ = json.Marshal(bus.Health())
	if !strings.Contains(string(h), `"closed":true`) || !strings.Contains(string(h), `"healthy":false`) {
		t.Errorf("closed bus health %s", h)
	}
}

func TestAttackHealthJSON(t *testing.T) {
	bus, _ := a16ObsBus(t)
	defer a16Close(t, bus)
	h := bus.Health()
	b, err := json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s", b)
	var m map[string]any
	json.Unmarshal(b, &m)
	a16Fields(t, "health", m, "healthy", "closed", "subscriptions")
	if m["healthy"] != false || (h.Err() == nil) {
		t.Errorf("healthy %v with an open circuit; Err %v", m["healthy"], h.Err())
	}
	for _, sv := range m["subscriptions"].([]any) {
		sm := a16Fields(t, "subscription health", sv, "topic", "name", "healthy", "problems")
		ps, ok := sm["problems"].([]any)
		if !ok {
			t.Errorf("problems %#v", sm["problems"])
		}
		if sm["healthy"] != (len(ps) == 0) {
			t.Errorf("healthy %v with problems %v", sm["healthy"], ps)
		}
	}
}

func TestAttackCircuitStateText(t *testing.T) {
	for _, s := range []eventbus.CircuitState{eventbus.CircuitClosed, eventbus.CircuitOpen, eventbus.CircuitHalfOpen} {
		b, err := s.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back eventbus.CircuitState
		if err := back.UnmarshalText(b); err != nil || back != s {
			t.Errorf("%v -> %q -> %v, %v", s, b, back, err)
		}
		j, _ := json.Marshal(s)
		if string(j) != `"`+s.String()+`"` {
			t.Errorf("JSON %s", j)
		}
	}
	names := map[string]eventbus.CircuitState{"closed": eventbus.CircuitClosed, "open": eventbus.CircuitOpen, "half-open": eventbus.CircuitHalfOpen}
	for n, want := range names {
		var s eventbus.CircuitState
		if err := s.UnmarshalText([]byte(n)); err != nil || s != want {
			t.Errorf("UnmarshalText(%q) = %v, %v", n, s, err)
		}
	}
	for _, bad := range []string{"", "OPEN", "halfopen", "1", " open", "open\x00"} {
		s := eventbus.CircuitOpen
		if err := s.UnmarshalText([]byte(bad)); err == nil {
			t.Errorf("UnmarshalText(%q) accepted: %v", bad, s)
		}
	}
	var s eventbus.CircuitState
	if err := json.Unmarshal([]byte(`1`), &s); err == nil {
		t.Logf("note: JSON number 1 accepted as %v", s)
	}
}

func TestAttackLatencyJSON(t *testing.T) {
	for _, l := range []eventbus.Latency{
		{},
		{Samples: 12, P50: 1500 * time.Microsecond, P95: 3750 * time.Microsecond, P99: 3750 * time.Microsecond},
		{Samples: 1, P50: 63, P95: 1, P99: 999},
		{Samples: 1 << 60, P50: 4*time.Hour + 54*time.Minute, P95: time.Duration(1<<63 - 1), P99: -5},
	} {
		b, err := json.Marshal(l)
		if err != nil {
			t.Errorf("%+v: %v", l, err)
			continue
		}
		var m map[string]any
		json.Unmarshal(b, &m)
		for _, q := range []string{"p50", "p95", "p99"} {
			if _, err := time.ParseDuration(m[q].(string)); err != nil {
				t.Errorf("%s %q: %v", q, m[q], err)
			}
		}
		var back eventbus.Latency
		if err := json.Unmarshal(b, &back); err != nil || back != l {
			t.Errorf("round trip %s -> %+v, %v; want %+v", b, back, err, l)
		}
	}
	var l eventbus.Latency
	if err := json.Unmarshal([]byte(`{"samples":12,"p50":"1.5ms","p95":"3.75ms","p99":"3.75ms"}`), &l); err != nil ||
		l != (eventbus.Latency{12, 1500 * time.Microsecond, 3750 * time.Microsecond, 3750 * time.Microsecond}) {
		t.Errorf("doc example -> %+v, %v", l, err)
	}
	for _, bad := range []string{`{"p50":"fast"}`, `{"p50":12}`, `[]`, `"x"`, `{"samples":-1}`} {
		var l eventbus.Latency
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("Unmarshal(%s) panicked: %v", bad, r)
				}
			}()
			if err := json.Unmarshal([]byte(bad), &l); err == nil {
				t.Errorf("Unmarshal(%s) accepted: %+v", bad, l)
			}
		}()
	}
}

func a16Get(t *testing.T, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rr := httptest.NewRecorder()
	h.ServeHTTP(rr, httptest.NewRequest(method, path, nil))
	return rr
}

func TestAttackHTTPHandler(t *testing.T) {
	bus := a16Bus()
	eventbus.Subscribe(bus, eventbus.NewTopic[int]("a16.http.ok"), "s", func(ctx context.Context, ev eventbus.Event[int]) error { return nil })
	h := eventbus.HTTPHandler(bus)
	for _, p := range []string{"/stats", "/health", "/ready", "/", "/x/y/stats", "/stats?x=1"} {
		rr := a16Get(t, h, "GET", p)
		if rr.Code != 200 {
			t.Errorf("GET %s healthy: %d", p, rr.Code)
		}
		cc := rr.Header().Get("Cache-Control")
		if !strings.Contains(cc, "no-store") && !strings.Contains(cc, "no-cache") {
			t.Errorf("GET %s: Cache-Control %q; responses are not cached", p, cc)
		}
		if p != "/ready" {
			if ct := rr.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("GET %s: Content-Type %q", p, ct)
			}
			var v any
			if err := json.Unmarshal(rr.Body.Bytes(), &v); err != nil {
				t.Errorf("GET %s: body not JSON: %v %q", p, err, rr.Body.String())
			}
		}
	}
	if rr := a16Get(t, h, "GET", "/ready"); strings.TrimSpace(rr.Body.String()) != "ok" {
		t.Errorf("ready body %q", rr.Body.String())
	}
	var stats eventbus.Stats
	if err := json.Unmarshal(a16Get(t, h, "GET", "/x/stats").Body.Bytes(), &stats); err != nil || len(stats.Topics) != 1 {
		t.Errorf("stats via HTTP: %+v %v", stats, err)
	}
	var root map[string]any
	json.Unmarshal(a16Get(t, h, "GET", "/").Body.Bytes(), &root)
	a16Fields(t, "root", root, "health", "stats")
	for _, m := range []string{"POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT", "FOO"} {
		for _, p := range []string{"/stats", "/ready", "/"} {
			if rr := a16Get(t, h, m, p); rr.Code != 405 {
				t.Errorf("%s %s: %d; want 405", m, p, rr.Code)
			}
		}
	}
	rr := a16Get(t, h, "HEAD", "/stats")
	if rr.Code != 200 {
		t.Errorf("HEAD: %d", rr.Code)
	}
	// Via a real server, so that HEAD has no body and StripPrefix is exercised.
	mux := http.NewServeMux()
	mux.Handle("/eventbus/", http.StripPrefix("/eventbus", h))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, p := range []string{"/eventbus/stats", "/eventbus/health", "/eventbus/ready", "/eventbus/"} {
		resp, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d %s", p, resp.StatusCode, body)
		}
		if p == "/eventbus/stats" && !strings.HasPrefix(a16Compact(body), `{"topics":`) {
			t.Errorf("GET %s: %s", p, body)
		}
		if p == "/eventbus/ready" && strings.TrimSpace(string(body)) != "ok" {
			t.Errorf("GET %s: %q", p, body)
		}
	}
	// Now unhealthy: a closed bus.
	a16Close(t, bus)
	for _, p := range []string{"/health", "/ready", "/"} {
		rr := a16Get(t, h, "GET", p)
		if rr.Code != 503 {
			t.Errorf("closed bus GET %s: %d; want 503", p, rr.Code)
		}
		if p == "/ready" && strings.TrimSpace(rr.Body.String()) != bus.Health().Err().Error() {
			t.Errorf("ready body %q; want %q", rr.Body.String(), bus.Health().Err())
		}
	}
	if rr := a16Get(t, h, "GET", "/stats"); rr.Code != 200 {
		t.Errorf("closed bus stats: %d; want 200", rr.Code)
	}
}

func TestAttackHTTPHandlerOpenCircuit(t *testing.T) {
	bus, _ := a16ObsBus(t)
	defer a16Close(t, bus)
	h := eventbus.HTTPHandler(bus)
	for _, p := range []string{"/health", "/ready", "/"} {
		if rr := a16Get(t, h, "GET", p); rr.Code != 503 {
			t.Errorf("open circuit GET %s: %d; want 503", p, rr.Code)
		}
	}
	rr := a16Get(t, h, "GET", "/stats")
	if rr.Code != 200 || !strings.Contains(a16Compact(rr.Body.Bytes()), `"circuit":"open"`) {
		t.Errorf("stats %d %s", rr.Code, rr.Body.String())
	}
}

func TestAttackHTTPHandlerNilPanics(t *testing.T) {
	defer func() {
		r := recover()
		if r == nil || !strings.HasPrefix(errString(r), "eventbus:") {
			t.Fatalf("HTTPHandler(nil): recover %v", r)
		}
	}()
	eventbus.HTTPHandler(nil)
}

func errString(r any) string {
	if e, ok := r.(error); ok {
		return e.Error()
	}
	if s, ok := r.(string); ok {
		return s
	}
	return ""
}

func TestAttackHTTPHandlerConcurrent(t *testing.T) {
	bus := a16Bus()
	tp := eventbus.NewTopic[int]("a16.http.conc")
	srv := httptest.NewServer(eventbus.HTTPHandler(bus))
	defer srv.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				name := []string{"s", "f"}[j%2]
				sub, err := eventbus.Subscribe(bus, tp, name+string(rune('a'+i)), func(ctx context.Context, ev eventbus.Event[int]) error {
					if ev.Payload%3 == 0 {
						return errors.New("x")
					}
					return nil
				}, eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Microsecond}), eventbus.WithCircuitBreaker(5, time.Millisecond))
				if err != nil {
					t.Error(err)
					return
				}
				for k := 0; k < 50; k++ {
					eventbus.Publish(context.Background(), bus, tp, k)
				}
				sub.Close(context.Background())
			}
		}(i)
	}
	for i := 0; i < 60; i++ {
		for _, p := range []string{"/stats", "/health", "/ready", "/"} {
			resp, err := http.Get(srv.URL + p)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if p != "/ready" {
				var v any
				if err := json.Unmarshal(body, &v); err != nil {
					t.Errorf("%s: %v", p, err)
				}
			}
		}
	}
	close(stop)
	wg.Wait()
	a16Close(t, bus)
}

func a16Compact(b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return "not JSON: " + string(b)
	}
	return buf.String()
}

func TestAttackHTTPProbePaths(t *testing.T) {
	bus := a16Bus()
	defer a16Close(t, bus)
	eventbus.Publish(context.Background(), bus, eventbus.NewTopic[int]("a16.http.nosub"), 1)
	h := eventbus.HTTPHandler(bus)
	for _, p := range []string{"/stats/", "/STATS", "/ready/", "/foo", "/stats/x"} {
		rr := a16Get(t, h, "GET", p)
		t.Logf("GET %s -> %d %.60q", p, rr.Code, a16Compact(rr.Body.Bytes()))
	}
	t.Logf("stats with a published topic without subscribers: %+v", bus.Stats())
}
