package cloudevents

import (
	"errors"
	"strconv"
)

// The kinds of [*Error]; test for them with errors.Is.
var (
	// ErrMalformed: the bytes are not a CloudEvent: not a JSON object, a duplicated member,
	// trailing bytes, invalid UTF-8, a header given twice, data that does not match its
	// datacontenttype (malformed JSON, bad base64), or an eventbusmetadata extension that
	// is not a JSON object of strings (see [MetadataExtension]).
	ErrMalformed = errors.New("cloudevents: malformed event")
	// ErrInvalid: an attribute is missing, empty or of the wrong form: a required attribute
	// absent, a specversion other than 1.0, an extension name outside [a-z0-9]{1,20}, a
	// time that is not RFC 3339, a control character in a string.
	ErrInvalid = errors.New("cloudevents: invalid attribute")
	// ErrTooLarge: the event is over the decoder's size limit, or has too many extensions.
	ErrTooLarge = errors.New("cloudevents: event too large")
	// ErrUnknownType: no topic is registered for the event's type (see [Registry]).
	ErrUnknownType = errors.New("cloudevents: unknown event type")
	// ErrData: the data does not fit the topic's payload type: it does not unmarshal into
	// it, or its datacontenttype is not JSON (for a payload other than []byte); or a
	// payload does not marshal.
	ErrData = errors.New("cloudevents: data does not fit the payload type")
)

// Error is the error of encoding or decoding one event: what kind of fault (one of the
// Err values of this package), at which attribute, and why. Every error the codec returns
// for bad input is an *Error; none of its functions panics on any input.
type Error struct {
	Kind      error  // ErrMalformed, ErrInvalid, ErrTooLarge, ErrUnknownType or ErrData
	Attribute string // the attribute at fault ("id", "data", an extension's name), or "" for the whole event
	Reason    string // what is wrong, for people: "missing", "must be 1.0, got \"0.3\""
}

// Error gives the kind, the attribute and the reason:
// `cloudevents: invalid attribute "id": missing`.
func (e *Error) Error() string {
	s := e.Kind.Error()
	if e.Attribute != "" {
		s += " " + strconv.Quote(e.Attribute)
	}
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	return s
}

// Unwrap returns the Kind, so errors.Is(err, ErrInvalid) works.
func (e *Error) Unwrap() error { return e.Kind }

func malformed(attr, reason string) error { return &Error{ErrMalformed, attr, reason} }
func invalid(attr, reason string) error   { return &Error{ErrInvalid, attr, reason} }
