// Package cloudevents encodes and decodes bus events as CloudEvents 1.0, so that they can
// cross a broker and land, typed, on another process's bus.
//
// # Model
//
// [Event] is one CloudEvent as it travels: its context attributes as strings and its data
// as bytes. [FromEvent] makes one from an [eventbus.Event], and [ToEvent] turns one back,
// with this mapping:
//
//	eventbus.Event   CloudEvent
//	ID               id (the UUID's canonical string)
//	Type             type (the topic name)
//	Source           source
//	Time             time (RFC 3339, UTC, nanoseconds)
//	Key              the partitionkey extension (CloudEvents' Partitioning extension)
//	Metadata         extensions, one per entry whose key is an extension name;
//	                 "subject" and "dataschema" become those optional attributes;
//	                 every other entry goes into the eventbusmetadata extension
//	Payload          data: JSON (datacontenttype application/json), or, for a []byte
//	                 payload, the bytes as they are (application/octet-stream)
//	                 specversion is always 1.0
//
// Every Metadata entry crosses a broker and comes back equal, in either mode. CloudEvents
// extension names are 1 to 20 characters of a-z and 0-9, as the specification recommends,
// and values are Strings without control characters or noncharacters; an entry whose key
// and non-empty value fit (traceparent, tenant, version) travels as the extension of that
// name, which every CloudEvents consumer reads. Every other entry (correlationId,
// x-request-id, a key named like a context attribute such as source, an empty value, a
// value with a newline) travels inside one extension, [MetadataExtension]
// ("eventbusmetadata"): a JSON object of strings, sorted by key, with the characters a
// String may not hold escaped, so the event stays conformant. Only a key or value that is
// not valid UTF-8 cannot travel: [FromEvent] refuses it with [ErrInvalid]. Extension values
// received from another producer are strings; a JSON integer (32 bits, the spec's
// Integer) or boolean is kept as its text ("42", "-0", "true"). The time attribute follows RFC 3339 to the letter (lower-case
// "t" and "z", leap seconds), and 0001-01-01T00:00:00Z is a time like any other
// ([Event.HasTime]).
//
// # Modes
//
// Structured mode puts the whole event in one JSON document (media type
// application/cloudevents+json): [Event.MarshalJSON] writes it, [Decoder.Structured]
// reads it. Data of a JSON media type is embedded as JSON ("data"); other data, a []byte
// payload included, is base64 ("data_base64"), and so is JSON that is not valid UTF-8,
// which a JSON document cannot hold as it is.
//
// Binary mode puts the attributes in the broker's message headers and the data, as is,
// in its body: [Event.WriteBinary] and [Decoder.Message]. A [Binding] names the header
// prefix of the broker and whether its header values are percent-encoded: "ce-" and
// percent-encoded values, as the HTTP binding requires, for NATS ([NATS]); "ce_" for
// Kafka ([Kafka]) and "cloudEvents:" for AMQP ([AMQP]), values as UTF-8. Binary mode on
// NATS is the draft of the NATS binding (1.0.3), which sdk-go implements too; the
// published binding (1.0.2) defines only structured mode. Decoder.Message also accepts a
// structured message, told apart by its content type.
//
// # Decoding untrusted input
//
// Decoding never panics: every fault is an [*Error] whose Kind is [ErrMalformed],
// [ErrInvalid], [ErrTooLarge], [ErrUnknownType] or [ErrData], with the attribute at fault
// and a reason. A [Decoder] bounds the size of an event and its number of extensions.
//
// # Typed topics
//
// A [Registry] maps the CloudEvents type (the topic name) to a typed topic, registered
// with [Register], so that an incoming event is decoded into the right payload type and
// re-published on a local bus with its ID, time, key, metadata and source intact:
//
//	reg := cloudevents.NewRegistry()
//	cloudevents.Register(reg, orderCreated)
//	ev, err := cloudevents.Decoder{}.Message(cloudevents.NATS, maps.All(msg.Header), msg.Data)
//	in, err := reg.Decode(ev)
//	err = in.Publish(ctx, bus, eventbus.WithWait())
package cloudevents
