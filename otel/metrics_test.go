package eventbusotel_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ae30fb47/eventbus"
	eventbusotel "github.com/ae30fb47/eventbus/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// instrument is one collected metric: its kind, unit and points.
type instrument struct {
	kind, unit string
	points     []point
}

// point is one data point: its attributes, and its value (a histogram's sum), count and
// bounds (histograms only).
type point struct {
	attrs  map[string]string
	value  float64
	count  uint64
	bounds []float64
}

// collect reads every metric of r, by name.
func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]instrument {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]instrument{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != eventbusotel.ScopeName || sm.Scope.SchemaURL != eventbusotel.SchemaURL {
			t.Errorf("scope = %+v; want %s with %s", sm.Scope, eventbusotel.ScopeName, eventbusotel.SchemaURL)
		}
		for _, m := range sm.Metrics {
			in := instrument{unit: m.Unit}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				in.kind = "updowncounter"
				if d.IsMonotonic {
					in.kind = "counter"
				}
				for _, p := range d.DataPoints {
					in.points = append(in.points, point{attrs: attrMap(p.Attributes.ToSlice()), value: float64(p.Value)})
				}
			case metricdata.Gauge[int64]:
				in.kind = "gauge"
				for _, p := range d.DataPoints {
					in.points = append(in.points, point{attrs: attrMap(p.Attributes.ToSlice()), value: float64(p.Value)})
				}
			case metricdata.Gauge[float64]:
				in.kind = "gauge"
				for _, p := range d.DataPoints {
					in.points = append(in.points, point{attrs: attrMap(p.Attributes.ToSlice()), value: p.Value})
				}
			case metricdata.Histogram[float64]:
				in.kind = "histogram"
				for _, p := range d.DataPoints {
					in.points = append(in.points, point{attrs: attrMap(p.Attributes.ToSlice()), value: p.Sum, count: p.Count, bounds: p.Bounds})
				}
			default:
				t.Fatalf("metric %s: unexpected data %T", m.Name, m.Data)
			}
			out[m.Name] = in
		}
	}
	return out
}

// find returns the point whose attributes are exactly want.
func (in instrument) find(want map[string]string) (point, bool) {
	for _, p := range in.points {
		if maps.Equal(p.attrs, want) {
			return p, true
		}
	}
	return point{}, false
}

// with returns base plus the key-value pairs kv.
func with(base map[string]string, kv ...string) map[string]string {
	m := maps.Clone(base)
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// subscription returns the attributes every metric of a subscription has.
func subscription(topic, name string) map[string]string {
	return map[string]string{
		"messaging.system":              "eventbus",
		"messaging.destination.name":    topic,
		"messaging.consumer.group.name": name,
	}
}

// newMetrics returns a Metrics over a meter provider read by hand, with its reader.
func newMetrics(tb testing.TB) (*eventbusotel.Metrics, *sdkmetric.ManualReader) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	tb.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	m, err := eventbusotel.NewMetrics(eventbusotel.WithMeterProvider(mp))
	if err != nil {
		tb.Fatal(err)
	}
	return m, reader
}

// TestMetricsAfterAKnownWorkload: after 64 events to a subscriber that handles each in 1ms
// and one that fails each twice (2ms an attempt), every instrument reports the figures the
// workload implies, with its semantic-convention name, kind, unit and attributes.
func TestMetricsAfterAKnownWorkload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, reader := newMetrics(t)
		b := eventbus.New(eventbus.WithMiddleware(m.Middleware()), eventbus.WithDeadLetter(eventbus.DiscardDeadLetters))
		defer closeBus(t, b)
		reg, err := m.Observe(b)
		if err != nil {
			t.Fatal(err)
		}
		mustSubscribe(t, b, orderPlaced, "inventory", func(context.Context, eventbus.Event[order]) error {
			time.Sleep(time.Millisecond)
			return nil
		}, eventbus.WithConcurrency(1), eventbus.WithBuffer(64))
		mustSubscribe(t, b, orderPlaced, "billing", func(context.Context, eventbus.Event[order]) error {
			time.Sleep(2 * time.Millisecond)
			return errors.New("card declined")
		}, eventbus.WithConcurrency(1), eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond, Jitter: -1}))
		const n = 64
		for i := range n {
			if err := eventbus.Publish(context.Background(), b, orderPlaced, order{ID: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(time.Second) // every attempt and retry
		synctest.Wait()

		got := collect(t, reader)
		inv, bil := subscription("order.placed", "inventory"), subscription("order.placed", "billing")
		tests := []struct {
			name, kind, unit string
			attrs            map[string]string
			want             float64
		}{
			{"messaging.client.sent.messages", "counter", "{message}", map[string]string{
				"messaging.system": "eventbus", "messaging.destination.name": "order.placed", "messaging.operation.name": "publish",
			}, n},
			{"messaging.client.consumed.messages", "counter", "{message}", with(inv, "messaging.operation.name", "process"), n},
			{"messaging.client.consumed.messages", "counter", "{message}", with(bil, "messaging.operation.name", "process"), n},
			{"eventbus.subscription.handled", "counter", "{message}", inv, n},
			{"eventbus.subscription.handled", "counter", "{message}", bil, 0},
			{"eventbus.subscription.duplicates", "counter", "{message}", inv, 0},
			{"eventbus.subscription.failed_attempts", "counter", "{attempt}", inv, 0},
			{"eventbus.subscription.failed_attempts", "counter", "{attempt}", bil, 2 * n},
			{"eventbus.subscription.retries", "counter", "{attempt}", bil, n},
			{"eventbus.subscription.dead_lettered", "counter", "{message}", inv, 0},
			{"eventbus.subscription.dead_lettered", "counter", "{message}", bil, n},
			{"eventbus.subscription.in_flight", "updowncounter", "{message}", bil, 0},
			{"eventbus.subscription.queued", "updowncounter", "{message}", bil, 0},
			{"eventbus.subscription.capacity", "updowncounter", "{message}", inv, 64},
			{"eventbus.subscription.capacity", "updowncounter", "{message}", bil, eventbus.DefaultBuffer},
			{"eventbus.subscription.circuit", "gauge", "1", with(bil, "messaging.eventbus.circuit.state", "closed"), 1},
			{"eventbus.subscription.circuit", "gauge", "1", with(bil, "messaging.eventbus.circuit.state", "open"), 0},
			{"eventbus.subscription.circuit", "gauge", "1", with(bil, "messaging.eventbus.circuit.state", "half-open"), 0},
		}
		for _, tt := range tests {
			in, ok := got[tt.name]
			if !ok {
				t.Errorf("no metric %s", tt.name)
				continue
			}
			if in.kind != tt.kind || in.unit != tt.unit {
				t.Errorf("%s: %s in %q; want %s in %q", tt.name, in.kind, in.unit, tt.kind, tt.unit)
			}
			p, ok := in.find(tt.attrs)
			if !ok {
				t.Errorf("%s: no point with attributes %v; points: %v", tt.name, tt.attrs, in.points)
				continue
			}
			if p.value != tt.want {
				t.Errorf("%s%v = %v; want %v", tt.name, tt.attrs, p.value, tt.want)
			}
		}

		pd := got["messaging.process.duration"]
		if pd.kind != "histogram" || pd.unit != "s" || len(pd.points) != 2 {
			t.Fatalf("messaging.process.duration: %s in %q with %d points; want a histogram in s with 2", pd.kind, pd.unit, len(pd.points))
		}
		for _, w := range []struct {
			attrs map[string]string
			count uint64
			sum   float64
		}{
			{with(inv, "messaging.operation.name", "process"), n, n * 0.001},
			{with(bil, "messaging.operation.name", "process", "error.type", "*errors.errorString"), 2 * n, 2 * n * 0.002},
		} {
			p, ok := pd.find(w.attrs)
			if !ok {
				t.Errorf("messaging.process.duration: no point with %v; points: %v", w.attrs, pd.points)
				continue
			}
			if p.count != w.count || math.Abs(p.value-w.sum) > 1e-9 {
				t.Errorf("messaging.process.duration%v: count %d, sum %v; want %d, %v", w.attrs, p.count, p.value, w.count, w.sum)
			}
			want := []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}
			if !slices.Equal(p.bounds, want) {
				t.Errorf("messaging.process.duration bounds = %v; want the semantic conventions' %v", p.bounds, want)
			}
		}

		if err := reg.Unregister(); err != nil {
			t.Fatal(err)
		}
		var names []string
		for name, in := range collect(t, reader) {
			if len(in.points) > 0 {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		if want := []string{"messaging.process.duration"}; !slices.Equal(names, want) {
			t.Errorf("after Unregister, metrics %v have points; want only the middleware's %v", names, want)
		}
	})
}

// TestMetricsInFlightQueuedAndCircuit: the gauges report the state of the moment: events
// held by a stalled handler, and an open circuit.
func TestMetricsInFlightQueuedAndCircuit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, reader := newMetrics(t)
		b := eventbus.New(eventbus.WithDeadLetter(eventbus.DiscardDeadLetters))
		if _, err := m.Observe(b); err != nil {
			t.Fatal(err)
		}
		release := make(chan struct{})
		mustSubscribe(t, b, orderPlaced, "slow", func(context.Context, eventbus.Event[order]) error {
			<-release
			return nil
		}, eventbus.WithConcurrency(1))
		mustSubscribe(t, b, stockReserved, "breaker", func(context.Context, eventbus.Event[order]) error {
			return errors.New("down")
		}, eventbus.WithCircuitBreaker(1, time.Hour))
		for range 3 {
			if err := eventbus.Publish(context.Background(), b, orderPlaced, order{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := eventbus.Publish(context.Background(), b, stockReserved, order{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Second) // past the retry backoff, into the cool-down
		synctest.Wait()

		got := collect(t, reader)
		slow, breaker := subscription("order.placed", "slow"), subscription("stock.reserved", "breaker")
		for _, tt := range []struct {
			name  string
			attrs map[string]string
			want  float64
		}{
			{"eventbus.subscription.in_flight", slow, 1},
			{"eventbus.subscription.queued", slow, 2},
			{"eventbus.subscription.in_flight", breaker, 0},
			{"eventbus.subscription.queued", breaker, 1},
			{"eventbus.subscription.failed_attempts", breaker, 1},
			{"eventbus.subscription.circuit", with(breaker, "messaging.eventbus.circuit.state", "open"), 1},
			{"eventbus.subscription.circuit", with(breaker, "messaging.eventbus.circuit.state", "closed"), 0},
			{"eventbus.subscription.circuit", with(slow, "messaging.eventbus.circuit.state", "closed"), 1},
		} {
			p, ok := got[tt.name].find(tt.attrs)
			if !ok || p.value != tt.want {
				t.Errorf("%s%v = %v (found %v); want %v", tt.name, tt.attrs, p.value, ok, tt.want)
			}
		}
		if _, ok := got["messaging.process.duration"]; ok {
			t.Errorf("messaging.process.duration reported without the middleware")
		}

		close(release)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := b.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Close() = %v; want the deadline, cutting the cool-down short", err)
		}
	})
}

func TestObserveNilBus(t *testing.T) {
	m, err := eventbusotel.NewMetrics()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Observe(nil); err == nil || !strings.Contains(err.Error(), "nil Bus") {
		t.Errorf("Observe(nil) = %v; want an error naming the nil Bus", err)
	}
}

// TestProcessDurationOfFailedAttempts: attempts that panic or time out are timed too, with
// their error.type.
func TestProcessDurationOfFailedAttempts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, reader := newMetrics(t)
		b := eventbus.New(eventbus.WithMiddleware(m.Middleware()), eventbus.WithDeadLetter(eventbus.DiscardDeadLetters))
		once := eventbus.WithRetry(eventbus.RetryPolicy{MaxAttempts: 1})
		mustSubscribe(t, b, orderPlaced, "panics", func(context.Context, eventbus.Event[order]) error {
			time.Sleep(3 * time.Millisecond)
			panic("boom")
		}, once)
		mustSubscribe(t, b, orderPlaced, "stalls", func(ctx context.Context, _ eventbus.Event[order]) error {
			<-ctx.Done()
			return nil
		}, once, eventbus.WithHandlerTimeout(20*time.Millisecond))
		if err := eventbus.Publish(context.Background(), b, orderPlaced, order{}); err != nil {
			t.Fatal(err)
		}
		closeBus(t, b)

		pd := collect(t, reader)["messaging.process.duration"]
		for _, w := range []struct {
			sub, errType string
			sum          float64
		}{{"panics", "panic", 0.003}, {"stalls", "timeout", 0.020}} {
			attrs := with(subscription("order.placed", w.sub), "messaging.operation.name", "process", "error.type", w.errType)
			p, ok := pd.find(attrs)
			if !ok || p.count != 1 || math.Abs(p.value-w.sum) > 1e-9 {
				t.Errorf("messaging.process.duration%v: found %v, count %d, sum %v; want 1 attempt of %vs", attrs, ok, p.count, p.value, w.sum)
			}
		}
	})
}

// TestLatencyQuantiles: the latency gauge reports the quantiles of the subscription's
// Stats, each under its own quantile. Handling times grow with every block of 64 events,
// so that the sampled attempts (one in 64) give three different quantiles; all of them fit
// in the one minute that Stats keeps.
func TestLatencyQuantiles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, reader := newMetrics(t)
		b := eventbus.New()
		defer closeBus(t, b)
		if _, err := m.Observe(b); err != nil {
			t.Fatal(err)
		}
		sub := mustSubscribe(t, b, orderPlaced, "inventory", func(_ context.Context, ev eventbus.Event[order]) error {
			i, err := strconv.Atoi(ev.Payload.ID)
			if err != nil {
				return err
			}
			k := time.Duration(i/64 + 1)
			time.Sleep(k * k * 100 * time.Microsecond)
			return nil
		}, eventbus.WithConcurrency(1))
		for i := range 26 * 64 {
			if err := eventbus.Publish(context.Background(), b, orderPlaced, order{ID: fmt.Sprint(i)}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(45 * time.Second) // the 40s the handler takes, within one latency window
		synctest.Wait()

		lat := sub.Stats().Latency
		if lat.Samples != 26 || lat.P50 == lat.P95 || lat.P95 == lat.P99 {
			t.Fatalf("Stats().Latency = %+v; want 26 samples and three different quantiles", lat)
		}
		in := collect(t, reader)["eventbus.subscription.latency"]
		if in.kind != "gauge" || in.unit != "s" || len(in.points) != 3 {
			t.Fatalf("eventbus.subscription.latency: %s in %q, %d points; want a gauge in s with 3", in.kind, in.unit, len(in.points))
		}
		for q, d := range map[string]time.Duration{"0.5": lat.P50, "0.95": lat.P95, "0.99": lat.P99} {
			attrs := with(subscription("order.placed", "inventory"), "messaging.eventbus.latency.quantile", q)
			if p, ok := in.find(attrs); !ok || p.value != d.Seconds() {
				t.Errorf("eventbus.subscription.latency%v = %v (found %v); want %v", attrs, p.value, ok, d.Seconds())
			}
		}
	})
}
