package cloudevents_test

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/cloudevents"
	"github.com/google/uuid"
)

// An envelope written in structured mode, then in binary mode with NATS headers.
func ExampleFromEvent() {
	ev := eventbus.Event[order]{
		ID:       uuid.MustParse("0196b1f4-7c2a-7d3e-9f00-0123456789ab"),
		Type:     "order.created",
		Source:   "/shop",
		Time:     time.Date(2026, 11, 23, 16, 30, 0, 0, time.UTC),
		Key:      "o-1001",
		Payload:  order{ID: "o-1001", Total: 42.5},
		Metadata: eventbus.Metadata{"tenant": "acme"},
	}
	e, err := cloudevents.FromEvent(ev)
	if err != nil {
		fmt.Println(err)
		return
	}
	data, _ := e.MarshalJSON()
	fmt.Println(string(data))

	header := map[string]string{}
	body, _ := e.WriteBinary(cloudevents.NATS, func(name, value string) { header[name] = value })
	for _, name := range slices.Sorted(maps.Keys(header)) {
		fmt.Printf("%s: %s\n", name, header[name])
	}
	fmt.Println(string(body))
	// Output:
	// {"specversion":"1.0","id":"0196b1f4-7c2a-7d3e-9f00-0123456789ab","source":"/shop","type":"order.created","time":"2026-11-23T16:30:00Z","datacontenttype":"application/json","partitionkey":"o-1001","tenant":"acme","data":{"id":"o-1001","total":42.5}}
	// ce-id: 0196b1f4-7c2a-7d3e-9f00-0123456789ab
	// ce-partitionkey: o-1001
	// ce-source: /shop
	// ce-specversion: 1.0
	// ce-tenant: acme
	// ce-time: 2026-11-23T16:30:00Z
	// ce-type: order.created
	// content-type: application/json
	// {"id":"o-1001","total":42.5}
}

// Metadata names that are not valid extension names are rejected, not rewritten.
// Metadata keys that are not valid extension names (upper case, dashes, a context
// attribute's name) travel inside the eventbusmetadata extension; the others as
// extensions of their own.
func ExampleFromEvent_metadata() {
	ev := eventbus.Event[order]{ID: uuid.MustParse("0196b1f4-7c2a-7d3e-9f00-0123456789ab"),
		Type: "order.created", Source: "/shop", Time: time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC),
		Metadata: eventbus.Metadata{"correlationId": "c-42", "source": "checkout", "version": "2"}}
	e, err := cloudevents.FromEvent(ev)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e.Extensions["version"])
	fmt.Println(e.Extensions[cloudevents.MetadataExtension])
	back, _ := cloudevents.ToEvent[order](e)
	fmt.Println(back.Metadata)
	// Output:
	// 2
	// {"correlationId":"c-42","source":"checkout"}
	// map[correlationId:c-42 source:checkout version:2]
}

// An incoming event is decoded for its registered topic and published on a local bus
// with its envelope intact.
func ExampleRegistry() {
	reg := cloudevents.NewRegistry()
	if err := cloudevents.Register(reg, orderCreated); err != nil {
		fmt.Println(err)
		return
	}
	bus := eventbus.New(eventbus.WithSource("/warehouse"))
	defer bus.Close(context.Background())
	eventbus.Subscribe(bus, orderCreated, "print", func(_ context.Context, ev eventbus.Event[order]) error {
		fmt.Printf("%s from %s, key %s: %+v\n", ev.Type, ev.Source, ev.Key, ev.Payload)
		return nil
	})

	wire := []byte(`{"specversion":"1.0","id":"0196b1f4-7c2a-7d3e-9f00-0123456789ab","source":"/shop",` +
		`"type":"order.created","partitionkey":"o-1001","data":{"id":"o-1001","total":42.5}}`)
	e, err := cloudevents.Decoder{}.Structured(wire)
	if err != nil {
		fmt.Println(err)
		return
	}
	in, err := reg.Decode(e)
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := in.Publish(context.Background(), bus, eventbus.WithWait()); err != nil {
		fmt.Println(err)
	}

	e.Type = "order.shipped"
	_, err = reg.Decode(e)
	fmt.Println(err)
	// Output:
	// order.created from /shop, key o-1001: {ID:o-1001 Total:42.5}
	// cloudevents: unknown event type "type": no topic registered for "order.shipped"
}
