package eventbusotel_test

import (
	"context"
	"maps"
	"testing"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/cloudevents"
	"go.opentelemetry.io/otel/trace"
)

// message is an event on its way through a broker: headers and body.
type message struct {
	header map[string][]string
	body   []byte
}

// TestTraceContextCrossesABroker: an event published on one bus, encoded as a CloudEvent
// (binary or structured), decoded and published again on another bus, keeps its trace:
// traceparent and tracestate travel as extensions, the second bus's producer span is the
// child of the first's, and its consumer span the child of that.
func TestTraceContextCrossesABroker(t *testing.T) {
	encode := map[string]func(t *testing.T, ce cloudevents.Event) message{
		"binary": func(t *testing.T, ce cloudevents.Event) message {
			m := message{header: map[string][]string{}}
			body, err := ce.WriteBinary(cloudevents.NATS, func(name, value string) { m.header[name] = append(m.header[name], value) })
			if err != nil {
				t.Fatal(err)
			}
			m.body = body
			return m
		},
		"structured": func(t *testing.T, ce cloudevents.Event) message {
			body, err := ce.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			return message{header: map[string][]string{"content-type": {cloudevents.ContentTypeStructured}}, body: body}
		},
	}
	for mode, encode := range encode {
		t.Run(mode, func(t *testing.T) {
			tr := newTracer(t)
			sender, receiver := tr.tracedBus(t), tr.tracedBus(t)
			out := make(chan eventbus.Event[order], 1)
			mustSubscribe(t, sender, orderPlaced, "bridge-out", func(_ context.Context, ev eventbus.Event[order]) error {
				out <- ev
				return nil
			})
			got := newSeen()
			mustSubscribe(t, receiver, orderPlaced, "inventory", got.handler("inventory", nil))
			reg := cloudevents.NewRegistry()
			if err := cloudevents.Register(reg, orderPlaced); err != nil {
				t.Fatal(err)
			}

			state, err := trace.ParseTraceState("vendor=v1")
			if err != nil {
				t.Fatal(err)
			}
			ctx, root := tr.tp.Tracer("test").Start(trace.ContextWithRemoteSpanContext(context.Background(),
				trace.NewSpanContext(trace.SpanContextConfig{
					TraceID: trace.TraceID{1}, SpanID: trace.SpanID{1}, TraceFlags: trace.FlagsSampled, TraceState: state, Remote: true,
				})), "POST /orders")
			if err := eventbus.Publish(ctx, sender, orderPlaced, order{ID: "o-1"}); err != nil {
				t.Fatal(err)
			}
			root.End()

			sentCE, err := cloudevents.FromEvent(<-out)
			if err != nil {
				t.Fatal(err)
			}
			msg := encode(t, sentCE)
			ce, err := cloudevents.Decoder{}.Message(cloudevents.NATS, maps.All(msg.header), msg.body)
			if err != nil {
				t.Fatal(err)
			}
			in, err := reg.Decode(ce)
			if err != nil {
				t.Fatal(err)
			}
			if err := in.Publish(context.Background(), receiver); err != nil {
				t.Fatal(err)
			}
			closeBus(t, sender)
			closeBus(t, receiver)

			var sent, received trace.SpanContext
			for _, s := range tr.spans("publish order.placed") {
				if s.Parent.SpanID() == root.SpanContext().SpanID() {
					sent = s.SpanContext
				} else {
					received = s.SpanContext
				}
			}
			if ce.Extensions["traceparent"] != traceparent(sent) || ce.Extensions["tracestate"] != "vendor=v1" {
				t.Errorf("CloudEvent extensions = %v; want traceparent %s and tracestate vendor=v1", ce.Extensions, traceparent(sent))
			}
			var republish, process trace.SpanContext
			var republishParent, processParent trace.SpanContext
			for _, s := range tr.exp.GetSpans() {
				switch {
				case s.SpanContext.Equal(received):
					republish, republishParent = s.SpanContext, s.Parent
				case s.Name == "process order.placed" && attrs(s)["messaging.consumer.group.name"] == "inventory":
					process, processParent = s.SpanContext, s.Parent
				}
			}
			if republishParent.SpanID() != sent.SpanID() || !republishParent.IsRemote() || republish.TraceID() != root.SpanContext().TraceID() {
				t.Errorf("the receiver's producer span: parent %v in trace %v; want the sender's producer span %v, remote, in trace %v",
					republishParent, republish.TraceID(), sent, root.SpanContext().TraceID())
			}
			if processParent.SpanID() != republish.SpanID() || process.TraceID() != root.SpanContext().TraceID() {
				t.Errorf("the receiver's consumer span: parent %v in trace %v; want the receiver's producer span %v", processParent, process.TraceID(), republish)
			}
			if got := process.TraceState().String(); got != "vendor=v1" {
				t.Errorf("the receiver's consumer span tracestate = %q; want vendor=v1 from the sender", got)
			}
		})
	}
}
