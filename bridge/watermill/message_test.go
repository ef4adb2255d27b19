package watermillbus_test

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/ae30fb47/eventbus"
	watermillbus "github.com/ae30fb47/eventbus/bridge/watermill"
)

// TestMessageRoundTrip publishes messages with all kinds of UUIDs and checks what a
// Watermill subscriber and a bus subscriber of the topic receive: the UUID exactly, as the
// event ID when the bus can carry it as one, the payload and the metadata.
func TestMessageRoundTrip(t *testing.T) {
	v7 := uuid.Must(uuid.NewV7()).String()
	tests := []struct {
		name string
		uuid string
		asID bool // the event's ID is the UUID, and no metadata field carries it
	}{
		{"watermill.NewUUID", watermill.NewUUID(), true},
		{"UUIDv7", v7, true},
		{"upper case", strings.ToUpper(v7), false},
		{"braces", "{" + v7 + "}", false},
		{"urn", "urn:uuid:" + v7, false},
		{"nil UUID", uuid.Nil.String(), false},
		{"empty", "", false},
		{"ULID", watermill.NewULID(), false},
		{"short UUID", watermill.NewShortUUID(), false},
		{"arbitrary", "order-42/ünïcode\x00", false},
	}
	ps := newPubSub(t, watermillbus.Config{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := "roundtrip-" + tt.name
			events := make(chan eventbus.Event[[]byte], 1)
			_, err := eventbus.Subscribe(ps.bus, eventbus.NewTopic[[]byte](topic), "native", func(_ context.Context, ev eventbus.Event[[]byte]) error {
				events <- ev
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			ch := subscribe(t, ps, topic)

			msg := message.NewMessage(tt.uuid, []byte("payload of "+tt.name))
			msg.Metadata.Set("trace", "abc")
			msg.Metadata.Set("empty", "")
			publish(t, ps, topic, msg)

			got := receive(t, ch)
			got.Ack()
			if got.UUID != tt.uuid {
				t.Errorf("UUID = %q; want %q", got.UUID, tt.uuid)
			}
			if string(got.Payload) != string(msg.Payload) {
				t.Errorf("Payload = %q; want %q", got.Payload, msg.Payload)
			}
			if !maps.Equal(got.Metadata, msg.Metadata) {
				t.Errorf("Metadata = %v; want %v", got.Metadata, msg.Metadata)
			}

			ev := <-events
			_, inMetadata := ev.Metadata[watermillbus.UUIDMetadata]
			if tt.asID {
				if ev.ID.String() != tt.uuid || inMetadata {
					t.Errorf("event ID %v, metadata %v; want ID %s and no %s field", ev.ID, ev.Metadata, tt.uuid, watermillbus.UUIDMetadata)
				}
			} else if ev.Metadata[watermillbus.UUIDMetadata] != tt.uuid || ev.ID == uuid.Nil {
				t.Errorf("event ID %v, metadata %v; want a new ID and %s=%q", ev.ID, ev.Metadata, watermillbus.UUIDMetadata, tt.uuid)
			}
			if ev.Key != topic {
				t.Errorf("event Key = %q; want the topic %q (DefaultKey of a message without a key)", ev.Key, topic)
			}
		})
	}
}

// TestBusEventToMessage checks what a Watermill subscriber receives of an event that a
// bus publisher published to the topic.
func TestBusEventToMessage(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{})
	ch := subscribe(t, ps, "native-in")
	id := uuid.Must(uuid.NewV7())
	err := eventbus.Publish(t.Context(), ps.bus, eventbus.NewTopic[[]byte]("native-in"), []byte("from the bus"),
		eventbus.WithID(id), eventbus.WithKey("k"), eventbus.WithMetadata(eventbus.Metadata{"a": "1"}))
	if err != nil {
		t.Fatal(err)
	}
	got := receive(t, ch)
	got.Ack()
	if got.UUID != id.String() || string(got.Payload) != "from the bus" || !maps.Equal(got.Metadata, message.Metadata{"a": "1"}) {
		t.Errorf("got UUID %q, payload %q, metadata %v; want %q, %q, map[a:1]", got.UUID, got.Payload, got.Metadata, id, "from the bus")
	}
}

func TestPublishRejectsReservedMetadata(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{})
	ch := subscribe(t, ps, "reserved")
	ok := newMsg("first")
	bad := newMsg("second", watermillbus.UUIDMetadata, "spoof")
	err := ps.Publish("reserved", ok, bad)
	if err == nil || !strings.Contains(err.Error(), watermillbus.UUIDMetadata) {
		t.Fatalf("Publish() = %v; want an error naming %s", err, watermillbus.UUIDMetadata)
	}
	if got := receiveAck(t, ch, 1); got[0] != "first" {
		t.Errorf("received %q; want the message before the bad one", got[0])
	}
	expectNone(t, ch, 50*time.Millisecond)
}

// TestMetadataIsCopiedPerDelivery checks that a handler changing a message's metadata
// changes no other subscription's copy, nor the copy a redelivery brings.
func TestMetadataIsCopiedPerDelivery(t *testing.T) {
	ps := newPubSub(t, watermillbus.Config{})
	first, second := subscribe(t, ps, "md"), subscribe(t, ps, "md")
	publish(t, ps, "md", newMsg("x", "k", "original"))

	msg := receive(t, first)
	msg.Metadata.Set("k", "changed")
	msg.Nack()
	again := receive(t, first)
	again.Ack()
	other := receive(t, second)
	other.Ack()
	for name, m := range map[string]*message.Message{"redelivery": again, "other subscription": other} {
		if v := m.Metadata.Get("k"); v != "original" {
			t.Errorf("%s: metadata k = %q; want %q", name, v, "original")
		}
	}
}
