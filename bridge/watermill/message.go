package watermillbus

import (
	"fmt"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/ae30fb47/eventbus"
)

// UUIDMetadata is the metadata field that carries a message's UUID across the bus when it
// is not a UUID the bus can take as the event's ID: not in canonical form (lower-case hex,
// 8-4-4-4-12), or the nil UUID, or any other string, the empty one included. Watermill's
// Kafka and AMQP marshalers use the same field. A subscriber takes the UUID back from it
// and removes it from the message's metadata, so a message's UUID arrives exactly as it
// was published. Publish rejects a message whose metadata already has this field.
const UUIDMetadata = "_watermill_message_uuid"

// envelope is what Publish sends to the bus for one message: the event's ID (uuid.Nil to
// let the bus make one) and its metadata, both chosen so that [toMessage] gives the
// message's UUID and metadata back exactly.
type envelope struct {
	id uuid.UUID
	md eventbus.Metadata
}

// toEnvelope maps msg's UUID and metadata onto an event's ID and metadata; see
// [UUIDMetadata]. The metadata is msg's own map unless the UUID needs the extra field;
// eventbus.WithMetadata copies it either way.
func toEnvelope(msg *message.Message) (envelope, error) {
	if _, taken := msg.Metadata[UUIDMetadata]; taken {
		return envelope{}, fmt.Errorf("watermillbus: message %q: metadata field %q is reserved for the message UUID", msg.UUID, UUIDMetadata)
	}
	md := eventbus.Metadata(msg.Metadata)
	if id, ok := canonicalUUID(msg.UUID); ok {
		return envelope{id: id, md: md}, nil
	}
	withUUID := make(eventbus.Metadata, len(md)+1)
	for k, v := range md {
		withUUID[k] = v
	}
	withUUID[UUIDMetadata] = msg.UUID
	return envelope{md: withUUID}, nil
}

// canonicalUUID parses s as a UUID that the bus can carry as an event ID and give back as
// the same string: a non-nil UUID in canonical form. (uuid.Parse takes a 36-character
// UUID in either case, so the canonical ones are those without upper-case letters.)
func canonicalUUID(s string) (uuid.UUID, bool) {
	if len(s) != 36 || strings.ContainsFunc(s, func(r rune) bool { return 'A' <= r && r <= 'F' }) {
		return uuid.Nil, false
	}
	id, err := uuid.Parse(s)
	if err != nil || id == uuid.Nil {
		return uuid.Nil, false
	}
	return id, true
}

// toMessage makes the Watermill message that delivers ev: its UUID (see [UUIDMetadata]),
// its payload, shared and not copied, and a copy of its metadata that the receiver may
// change.
func toMessage(ev *eventbus.Event[[]byte]) *message.Message {
	id, hasID := ev.Metadata[UUIDMetadata]
	if !hasID {
		id = ev.ID.String()
	}
	msg := message.NewMessage(id, ev.Payload)
	for k, v := range ev.Metadata {
		if k != UUIDMetadata {
			msg.Metadata[k] = v
		}
	}
	return msg
}

// MessageOf returns the Watermill message that a dead letter of a [PubSub]'s subscription
// stands for, with its UUID, payload and metadata as published, so that a dead-letter
// hook may inspect it or publish it elsewhere. It reports false if dl's payload is not a
// []byte, so not a message of a PubSub.
func MessageOf(dl eventbus.DeadLetter) (*message.Message, bool) {
	payload, ok := dl.Event.Payload.([]byte)
	if !ok {
		return nil, false
	}
	ev := eventbus.Event[[]byte]{ID: dl.Event.ID, Payload: payload, Metadata: dl.Event.Metadata}
	return toMessage(&ev), true
}
