package cloudevents

import (
	"encoding/json"
	"maps"
	"slices"

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
// Every Metadata entry travels: as an extension of its own when its key is a valid
// extension name and its value a non-empty CloudEvents String; "subject" and "dataschema"
// as those attributes when their values fit them; every other entry inside the
// [MetadataExtension] extension. So that a default [Decoder] reads every event FromEvent
// makes, no more than [DefaultMaxExtensions] extensions are written (partitionkey and
// eventbusmetadata counted): past that, the entries last by name move into
// eventbusmetadata too. FromEvent returns an [*Error] of kind [ErrInvalid] for a Metadata
// key or value that is not valid UTF-8, which no CloudEvent can carry, and for an envelope
// that makes an invalid event (see [Event.Validate]): the nil UUID, a Source that is not a
// URI reference, a control character in the Key. A payload that does not marshal gives
// an error of kind [ErrData]. The time attribute is always written, the zero Time as
// 0001-01-01T00:00:00Z.
func FromEvent[T any](ev eventbus.Event[T]) (Event, error) {
	e := Event{
		ID:      ev.ID.String(),
		Source:  ev.Source,
		Type:    ev.Type,
		Time:    ev.Time,
		timeSet: true,
	}
	if ev.ID == uuid.Nil {
		return Event{}, invalid(attrID, "the nil UUID")
	}
	if len(ev.Metadata) > 0 || ev.Key != "" {
		e.Extensions = make(map[string]string, len(ev.Metadata)+1)
	}
	var rest map[string]string
	for name, value := range ev.Metadata {
		switch {
		case name == attrSubject && value != "" && checkString(name, value) == nil:
			e.Subject = value
		case name == attrDataSchema && checkDataSchema(value) == nil:
			e.DataSchema = value
		case travelsAlone(name, value):
			e.Extensions[name] = value
		default:
			if rest == nil {
				rest = make(map[string]string)
			}
			rest[name] = value
		}
	}
	keyed := 0
	if ev.Key != "" {
		keyed = 1
	}
	if n := len(e.Extensions) + keyed; n > DefaultMaxExtensions || (rest != nil && n+1 > DefaultMaxExtensions) {
		// More extensions than a default Decoder takes: the first by name stay extensions,
		// the others join the rest, so that every receiver reads the event.
		if rest == nil {
			rest = make(map[string]string)
		}
		for _, name := range slices.Sorted(maps.Keys(e.Extensions))[DefaultMaxExtensions-keyed-1:] {
			rest[name] = e.Extensions[name]
			delete(e.Extensions, name)
		}
	}
	if rest != nil {
		v, err := encodeMetadata(rest)
		if err != nil {
			return Event{}, err
		}
		e.Extensions[MetadataExtension] = v
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
// The id must be a UUID in its 8-4-4-4-12 form (hex digits of either case, as RFC 9562
// reads them; FromEvent writes lower case), else ToEvent
// returns an [*Error] of kind [ErrInvalid]; data that does not decode gives one of kind
// [ErrData]. Metadata (nil if empty) holds the extensions other than partitionkey, the
// subject and dataschema attributes, and the members of the [MetadataExtension]
// extension; that extension must be a JSON object of strings, none of them a key that the
// others gave, else ToEvent returns an [*Error] of kind [ErrMalformed]. The Time is that
// of e (the zero Time if absent).
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
	if len(e.Extensions) == 0 && e.Subject == "" && e.DataSchema == "" {
		return ev, nil
	}
	md := make(eventbus.Metadata, len(e.Extensions)+2)
	for name, value := range e.Extensions {
		if name != PartitionKey && name != MetadataExtension {
			md[name] = value
		}
	}
	if e.Subject != "" {
		md[attrSubject] = e.Subject
	}
	if e.DataSchema != "" {
		md[attrDataSchema] = e.DataSchema
	}
	if rest, ok := e.Extensions[MetadataExtension]; ok {
		if err := decodeMetadata(rest, md); err != nil {
			return eventbus.Event[T]{}, err
		}
	}
	if len(md) > 0 {
		ev.Metadata = md
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
