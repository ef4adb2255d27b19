package cloudevents

import (
	"encoding/json"
	"maps"

	"github.com/ae30fb47/eventbus"
	"github.com/google/uuid"
)

// Media types of the data that FromEvent writes.
const (
	ContentTypeJSON  = "application/json"
	ContentTypeBytes = "application/octet-stream"
)

// FromEvent returns ev as a CloudEvent (see the package doc for the mapping). A []byte
// payload becomes the data as is, with datacontenttype application/octet-stream; any other
// payload is marshalled with encoding/json, with datacontenttype application/json (and so
// as encoding/json does it: invalid UTF-8 in a string becomes U+FFFD).
//
// FromEvent returns an [*Error] of kind [ErrInvalid] for a Metadata key that cannot be an
// extension's name (see the package doc), partitionkey included, for an empty "subject" or
// "dataschema" entry (CloudEvents has no empty value for either, and dropping it would
// change the envelope), or for an envelope that makes an invalid event (see
// [Event.Validate]): an empty Source, a control character in the Key. A payload that does not marshal gives an error of kind [ErrData].
func FromEvent[T any](ev eventbus.Event[T]) (Event, error) {
	e := Event{
		ID:     ev.ID.String(),
		Source: ev.Source,
		Type:   ev.Type,
		Time:   ev.Time,
	}
	if ev.ID == uuid.Nil {
		return Event{}, invalid(attrID, "the nil UUID")
	}
	if len(ev.Metadata) > 0 || ev.Key != "" {
		e.Extensions = make(map[string]string, len(ev.Metadata)+1)
	}
	for name, value := range ev.Metadata {
		switch name {
		case attrSubject, attrDataSchema:
			if value == "" { // the attribute would be absent, and the entry lost on the way back
				return Event{}, invalid(name, "empty; CloudEvents requires it to be non-empty when present")
			}
			if name == attrSubject {
				e.Subject = value
			} else {
				e.DataSchema = value
			}
			continue
		case PartitionKey:
			return Event{}, invalid(name, "is reserved for the event's Key")
		}
		if err := checkExtensionName(name); err != nil {
			return Event{}, err
		}
		e.Extensions[name] = value
	}
	if ev.Key != "" {
		e.Extensions[PartitionKey] = ev.Key
	}
	if b, ok := any(ev.Payload).([]byte); ok {
		e.DataContentType, e.Data = ContentTypeBytes, b
	} else {
		data, err := json.Marshal(ev.Payload)
		if err != nil {
			return Event{}, &Error{ErrData, memberData, err.Error()}
		}
		e.DataContentType, e.Data = ContentTypeJSON, data
	}
	if err := e.Validate(); err != nil {
		return Event{}, err
	}
	return e, nil
}

// ToEvent returns the envelope that e carries, its data decoded into a T: the inverse of
// [FromEvent]. For a []byte T, the data is taken as is (nil when absent); for any other
// T, the datacontenttype must be JSON (or absent) and the data is unmarshalled with
// encoding/json (absent data leaves the zero T).
//
// The id must be a UUID in its canonical form (as FromEvent writes it), else ToEvent
// returns an [*Error] of kind [ErrInvalid]; data that does not decode gives one of kind
// [ErrData]. The extensions other than partitionkey, and the subject and dataschema
// attributes, become Metadata (nil if there are none). The Time is that of e (the zero
// Time if absent).
func ToEvent[T any](e Event) (eventbus.Event[T], error) {
	var ev eventbus.Event[T]
	id, err := parseID(e.ID)
	if err != nil {
		return ev, err
	}
	if err := decodeData(e, &ev.Payload); err != nil {
		return ev, err
	}
	ev.ID, ev.Type, ev.Source, ev.Time = id, e.Type, e.Source, e.Time
	ev.Key = e.Extensions[PartitionKey]
	n := len(e.Extensions)
	if ev.Key != "" {
		n--
	}
	if e.Subject != "" {
		n++
	}
	if e.DataSchema != "" {
		n++
	}
	if n > 0 {
		ev.Metadata = make(eventbus.Metadata, n)
		maps.Copy(ev.Metadata, e.Extensions)
		delete(ev.Metadata, PartitionKey)
		if e.Subject != "" {
			ev.Metadata[attrSubject] = e.Subject
		}
		if e.DataSchema != "" {
			ev.Metadata[attrDataSchema] = e.DataSchema
		}
	}
	return ev, nil
}

// parseID parses an id in the canonical UUID form.
func parseID(s string) (uuid.UUID, error) {
	if len(s) != 36 {
		return uuid.Nil, invalid(attrID, "not a UUID in canonical form (8-4-4-4-12 hex digits)")
	}
	id, err := uuid.Parse(s)
	if err != nil || id == uuid.Nil {
		return uuid.Nil, invalid(attrID, "not a UUID in canonical form (8-4-4-4-12 hex digits)")
	}
	return id, nil
}

// decodeData decodes the data of e into *payload.
func decodeData[T any](e Event, payload *T) error {
	if b, ok := any(payload).(*[]byte); ok {
		*b = e.Data
		return nil
	}
	if !isJSON(e.DataContentType) {
		return &Error{ErrData, attrDataContentType, "a payload other than []byte needs JSON data, got " + e.DataContentType}
	}
	if e.Data == nil {
		return nil
	}
	if err := json.Unmarshal(e.Data, payload); err != nil {
		return &Error{ErrData, memberData, err.Error()}
	}
	return nil
}
