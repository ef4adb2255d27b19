package watermillbus

import (
	"maps"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/ae30fb47/eventbus"
)

// FuzzMessageMapping checks that any UUID, payload and metadata survive the mapping of a
// message onto an event and back exactly, and that a UUID the bus takes as the event's ID
// is one that gives the same string back.
func FuzzMessageMapping(f *testing.F) {
	f.Add("0190b6e2-7c1e-7cc4-a3a3-0f4f4c8a3c11", []byte("p"), "k", "v")
	f.Add("0190B6E2-7C1E-7CC4-A3A3-0F4F4C8A3C11", []byte{}, "", "")
	f.Add("00000000-0000-0000-0000-000000000000", []byte(nil), "partitionkey", "a")
	f.Add("urn:uuid:0190b6e2-7c1e-7cc4-a3a3-0f4f4c8a3c11", []byte("\x00"), "k", "\xff")
	f.Add("", []byte("x"), UUIDMetadata, "spoof")
	f.Fuzz(func(t *testing.T, id string, payload []byte, key, value string) {
		msg := message.NewMessage(id, payload)
		msg.Metadata.Set(key, value)
		env, err := toEnvelope(msg)
		if key == UUIDMetadata {
			if err == nil {
				t.Fatalf("toEnvelope with metadata field %s = nil error; want one", UUIDMetadata)
			}
			return
		}
		if err != nil {
			t.Fatalf("toEnvelope(%q) = %v", id, err)
		}
		if env.id != uuid.Nil && env.id.String() != id {
			t.Fatalf("event ID %s for UUID %q; want the ID to spell the UUID", env.id, id)
		}
		ev := eventbus.Event[[]byte]{ID: env.id, Payload: payload, Metadata: maps.Clone(env.md)}
		if ev.ID == uuid.Nil {
			ev.ID = uuid.Must(uuid.NewV7()) // as the bus does
		}
		got := toMessage(&ev)
		if got.UUID != id || string(got.Payload) != string(payload) || !maps.Equal(got.Metadata, msg.Metadata) {
			t.Fatalf("round trip of (%q, %q, %v) gave (%q, %q, %v)", id, payload, msg.Metadata, got.UUID, got.Payload, got.Metadata)
		}
	})
}
