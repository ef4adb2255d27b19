package cloudevents_test

import (
	"bytes"
	"fmt"
	"maps"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/cloudevents"
)

// decodeAll decodes a structured doc and, if it decodes, runs ToEvent; it returns the
// Metadata and the first error, after checking the error's type.
func atkDecodeForeign(t *testing.T, what string, doc []byte) (eventbus.Metadata, error) {
	t.Helper()
	var e cloudevents.Event
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("%s: PANIC %v", what, r)
			}
		}()
		e, err = cloudevents.Decoder{}.Structured(doc)
		if err == nil {
			var ev eventbus.Event[atkPayload]
			ev, err = cloudevents.ToEvent[atkPayload](e)
			if err == nil {
				if _, ferr := cloudevents.FromEvent(ev); ferr != nil {
					t.Errorf("%s: accepted event does not re-encode: %v", what, ferr)
				}
				return
			}
		}
	}()
	if err != nil {
		atkCheckErr(t, what, err, nil)
		return nil, err
	}
	ev, _ := cloudevents.ToEvent[atkPayload](e)
	return ev.Metadata, nil
}

func TestAttackForgedMetadataExtension(t *testing.T) {
	str := atkJSONString
	cases := []struct {
		name    string
		extra   string
		want    error // nil: must decode
		wantMD  eventbus.Metadata
		anyKind bool // any documented kind
	}{
		{"not JSON", `"eventbusmetadata":"abc"`, cloudevents.ErrMalformed, nil, false},
		{"empty string", `"eventbusmetadata":""`, cloudevents.ErrMalformed, nil, true},
		{"array", `"eventbusmetadata":` + str(`["a"]`), cloudevents.ErrMalformed, nil, false},
		{"null inside", `"eventbusmetadata":` + str(`null`), cloudevents.ErrMalformed, nil, true},
		{"number member", `"eventbusmetadata":` + str(`{"a":1}`), cloudevents.ErrMalformed, nil, false},
		{"bool member", `"eventbusmetadata":` + str(`{"a":true}`), cloudevents.ErrMalformed, nil, false},
		{"null member", `"eventbusmetadata":` + str(`{"a":null}`), cloudevents.ErrMalformed, nil, true},
		{"object member", `"eventbusmetadata":` + str(`{"a":{"b":"c"}}`), cloudevents.ErrMalformed, nil, false},
		{"trailing", `"eventbusmetadata":` + str(`{"a":"b"}x`), cloudevents.ErrMalformed, nil, false},
		{"two objects", `"eventbusmetadata":` + str(`{"a":"b"}{"c":"d"}`), cloudevents.ErrMalformed, nil, false},
		{"unterminated", `"eventbusmetadata":` + str(`{"a":"b"`), cloudevents.ErrMalformed, nil, false},
		{"bad escape", `"eventbusmetadata":` + str(`{"a":"\x"}`), cloudevents.ErrMalformed, nil, false},
		{"dup keys", `"eventbusmetadata":` + str(`{"a":"1","a":"2"}`), cloudevents.ErrMalformed, nil, true},
		{"dup keys same value", `"eventbusmetadata":` + str(`{"a":"1","a":"1"}`), nil, eventbus.Metadata{"a": "1"}, true},
		{"collides with ext", `"tenant":"t","eventbusmetadata":` + str(`{"tenant":"u"}`), cloudevents.ErrMalformed, nil, false},
		{"collides with ext same value", `"tenant":"t","eventbusmetadata":` + str(`{"tenant":"t"}`), cloudevents.ErrMalformed, nil, true},
		{"collides with subject", `"subject":"s","eventbusmetadata":` + str(`{"subject":"u"}`), cloudevents.ErrMalformed, nil, false},
		{"collides with dataschema", `"dataschema":"http://x/","eventbusmetadata":` + str(`{"dataschema":"u"}`), cloudevents.ErrMalformed, nil, false},
		{"partitionkey member with key", `"partitionkey":"k","eventbusmetadata":` + str(`{"partitionkey":"md"}`), nil, eventbus.Metadata{"partitionkey": "md"}, false},
		{"subject member alone", `"eventbusmetadata":` + str(`{"subject":"x"}`), nil, eventbus.Metadata{"subject": "x"}, false},
		{"eventbusmetadata member", `"eventbusmetadata":` + str(`{"eventbusmetadata":"{}"}`), nil, eventbus.Metadata{"eventbusmetadata": "{}"}, false},
		{"id member", `"eventbusmetadata":` + str(`{"id":"x","source":"y","specversion":"0.3"}`), nil, eventbus.Metadata{"id": "x", "source": "y", "specversion": "0.3"}, false},
		{"empty object", `"eventbusmetadata":` + str(`{}`), nil, nil, false},
		{"whitespace", `"eventbusmetadata":` + str(` { "a" : "b" } `), nil, eventbus.Metadata{"a": "b"}, true},
		{"escapes", `"eventbusmetadata":` + str(`{"a\u0000":"\ufffe\n\ud83d\ude00"}`), nil, eventbus.Metadata{"a\x00": "\ufffe\n\U0001F600"}, false},
		{"lone surrogate member", `"eventbusmetadata":` + str(`{"a":"\ud800"}`), nil, nil, true},
		{"unsorted", `"eventbusmetadata":` + str(`{"b":"1","a":"2"}`), nil, eventbus.Metadata{"a": "2", "b": "1"}, true},
		{"json object not string", `"eventbusmetadata":{"a":"b"}`, nil, nil, true},
		{"number extension", `"num":42`, nil, eventbus.Metadata{"num": "42"}, false},
		{"float extension", `"num":4.20e1`, nil, nil, true},
		{"huge number extension", `"num":1e400`, nil, nil, true},
		{"bool extension", `"flag":true`, nil, eventbus.Metadata{"flag": "true"}, false},
		{"false extension", `"flag":false`, nil, eventbus.Metadata{"flag": "false"}, false},
		{"null extension", `"flag":null`, nil, nil, false},
		{"object extension", `"obj":{"a":"b"}`, nil, nil, true},
		{"array extension", `"arr":["a"]`, nil, nil, true},
		{"bad number", `"num":01`, cloudevents.ErrMalformed, nil, true},
		{"upper ext name", `"Tenant":"x"`, cloudevents.ErrInvalid, nil, true},
		{"long ext name", `"abcdefghijklmnopqrstu":"x"`, cloudevents.ErrInvalid, nil, false},
		{"dash ext name", `"a-b":"x"`, cloudevents.ErrInvalid, nil, false},
		{"empty ext name", `"":"x"`, cloudevents.ErrInvalid, nil, true},
		{"data_base64 with data", `"data":{},"data_base64":"e30="`, cloudevents.ErrMalformed, nil, true},
	}
	for _, c := range cases {
		doc := atkDoc(c.extra)
		md, err := atkDecodeForeign(t, c.name, doc)
		switch {
		case c.anyKind:
			t.Logf("%s: %s -> md=%q err=%v", c.name, doc, md, err)
		case c.want != nil:
			if err == nil {
				t.Errorf("%s: %s decoded to Metadata %q, want %v", c.name, doc, md, c.want)
			} else {
				atkCheckErr(t, c.name, err, c.want)
			}
		default:
			if err != nil {
				t.Errorf("%s: %s: %v, want Metadata %q", c.name, doc, err, c.wantMD)
			} else if !maps.Equal(md, c.wantMD) {
				t.Errorf("%s: %s: Metadata %q, want %q", c.name, doc, md, c.wantMD)
			}
		}
	}
	// Binary: eventbusmetadata in a header, percent-encoded.
	for _, v := range []string{"%7B%22a%22%3A1%7D", "%7B", "not json", "%7B%22a%22%3A%22b%22%7D"} {
		h := map[string][]string{"ce-specversion": {"1.0"}, "ce-id": {atkID}, "ce-source": {"/s"}, "ce-type": {"attack.topic"}, "ce-eventbusmetadata": {v}}
		e, err := cloudevents.Decoder{}.Message(cloudevents.NATS, maps.All(h), nil)
		if err == nil {
			_, err = cloudevents.ToEvent[atkPayload](e)
		}
		if err != nil {
			atkCheckErr(t, "binary eventbusmetadata "+v, err, nil)
		}
	}
}

// Deep nesting inside eventbusmetadata and in data: no stack overflow, an *Error.
func TestAttackForgedDeepNesting(t *testing.T) {
	for _, depth := range []int{10_000, 100_000, 400_000} {
		inner := `{"a":` + strings.Repeat(`[`, depth) + strings.Repeat(`]`, depth) + `}`
		atkDecodeForeign(t, fmt.Sprintf("nested metadata %d", depth), atkDoc(`"eventbusmetadata":`+atkJSONString(inner)))
		atkDecodeForeign(t, fmt.Sprintf("nested data %d", depth), atkDoc(`"data":`+strings.Repeat(`[`, depth)+strings.Repeat(`]`, depth)))
		atkDecodeForeign(t, fmt.Sprintf("nested data open %d", depth), atkDoc(`"data":`+strings.Repeat(`{"a":`, depth/5)))
		atkDecodeForeign(t, fmt.Sprintf("nested ext %d", depth), atkDoc(`"ext":`+strings.Repeat(`[`, depth)+strings.Repeat(`]`, depth)))
		h := map[string][]string{"ce-specversion": {"1.0"}, "ce-id": {atkID}, "ce-source": {"/s"}, "ce-type": {"attack.topic"}, "content-type": {"application/json"}}
		body := []byte(strings.Repeat(`[`, depth) + strings.Repeat(`]`, depth))
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("Message nested body: PANIC %v", r)
				}
			}()
			e, err := cloudevents.Decoder{}.Message(cloudevents.NATS, maps.All(h), body)
			if err == nil {
				_, err = cloudevents.ToEvent[atkPayload](e)
			}
			if err != nil {
				atkCheckErr(t, "binary nested body", err, nil)
			}
		}()
	}
}

// A huge forged eventbusmetadata (many members) decodes linearly.
func TestAttackForgedHugeMetadata(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("{")
	n := 60_000
	for i := range n {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `"k%d":"v"`, i)
	}
	sb.WriteString("}")
	doc := atkDoc(`"eventbusmetadata":` + atkJSONString(sb.String()))
	t0 := time.Now()
	md, err := atkDecodeForeign(t, "huge metadata", doc)
	t.Logf("%d bytes: %d entries, err %v, %v", len(doc), len(md), err, time.Since(t0))
	if err == nil && len(md) != n {
		t.Errorf("got %d entries, want %d", len(md), n)
	}
	// The same keys duplicated many times.
	sb.Reset()
	sb.WriteString("{")
	for i := range 60_000 {
		if i > 0 {
			sb.WriteString(",")
		}
		fmt.Fprintf(&sb, `"k%d":"v"`, i%3)
	}
	sb.WriteString("}")
	md, err = atkDecodeForeign(t, "dup-heavy metadata", atkDoc(`"eventbusmetadata":`+atkJSONString(sb.String())))
	t.Logf("dup-heavy: md=%d entries err=%v", len(md), err)
}

// Decoder limits: exact boundaries.
func TestAttackDecoderLimits(t *testing.T) {
	// MaxExtensions exactly.
	for _, max := range []int{1, 3, 64} {
		d := cloudevents.Decoder{MaxExtensions: max}
		if max == 64 {
			d = cloudevents.Decoder{}
		}
		for _, n := range []int{max, max + 1} {
			var parts []string
			h := map[string][]string{"ce-specversion": {"1.0"}, "ce-id": {atkID}, "ce-source": {"/s"}, "ce-type": {"attack.topic"}}
			for i := range n {
				parts = append(parts, fmt.Sprintf(`"e%d":"v"`, i))
				h[fmt.Sprintf("ce-e%d", i)] = []string{"v"}
			}
			_, err := d.Structured(atkDoc(strings.Join(parts, ",")))
			_, berr := d.Message(cloudevents.NATS, maps.All(h), nil)
			if n == max {
				if err != nil || berr != nil {
					t.Errorf("MaxExtensions %d, %d extensions: %v / %v, want accepted", max, n, err, berr)
				}
			} else {
				atkCheckErr(t, fmt.Sprintf("structured MaxExtensions %d, %d", max, n), err, cloudevents.ErrTooLarge)
				atkCheckErr(t, fmt.Sprintf("binary MaxExtensions %d, %d", max, n), berr, cloudevents.ErrTooLarge)
			}
		}
	}
	// MaxSize exactly, structured.
	base := atkDoc(`"data_base64":""`)
	pad := 1000 - len(base)
	doc := atkDoc(`"datacontenttype":"text/plain","data_base64":"` + strings.Repeat("A", 0) + `"`)
	_ = doc
	// Build a doc of exactly 1000 bytes using a subject of the right length.
	mk := func(size int) []byte {
		b0 := atkDoc(`"subject":""`)
		return atkDoc(`"subject":"` + strings.Repeat("s", size-len(b0)) + `"`)
	}
	_ = pad
	d := cloudevents.Decoder{MaxSize: 1000}
	if b := mk(1000); len(b) != 1000 {
		t.Fatalf("len %d", len(b))
	} else if _, err := d.Structured(b); err != nil {
		t.Errorf("structured of exactly MaxSize bytes: %v", err)
	}
	_, err := d.Structured(mk(1001))
	atkCheckErr(t, "structured MaxSize+1", err, cloudevents.ErrTooLarge)
	// Binary: body plus header names and values.
	h := map[string][]string{"ce-specversion": {"1.0"}, "ce-id": {atkID}, "ce-source": {"/s"}, "ce-type": {"attack.topic"}, "content-type": {"text/plain"}}
	hsize := 0
	for k, v := range h {
		hsize += len(k) + len(v[0])
	}
	body := bytes.Repeat([]byte("x"), 1000-hsize)
	if _, err := d.Message(cloudevents.NATS, maps.All(h), body); err != nil {
		t.Errorf("binary of exactly MaxSize bytes (%d body + %d headers): %v", len(body), hsize, err)
	}
	_, err = d.Message(cloudevents.NATS, maps.All(h), append(body, 'x'))
	atkCheckErr(t, "binary MaxSize+1", err, cloudevents.ErrTooLarge)
	// Huge ignored headers don't bypass? (other headers are ignored) -- just no panic.
	h2 := maps.Clone(h)
	h2["X-Other"] = []string{strings.Repeat("o", 5000)}
	_, err = d.Message(cloudevents.NATS, maps.All(h2), nil)
	t.Logf("big foreign header: %v", err)
	// Negative limits: no panic.
	for _, dd := range []cloudevents.Decoder{{MaxSize: -1}, {MaxExtensions: -1}} {
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("Decoder %+v: PANIC %v", dd, r)
				}
			}()
			_, err := dd.Structured(atkDoc(`"ext":"v"`))
			t.Logf("Decoder %+v: %v", dd, err)
		}()
	}
	// Header given twice (two values, or two spellings).
	for _, hh := range []map[string][]string{
		{"ce-specversion": {"1.0"}, "ce-id": {atkID, atkID}, "ce-source": {"/s"}, "ce-type": {"t"}},
		{"ce-specversion": {"1.0"}, "ce-id": {atkID}, "CE-ID": {atkID}, "ce-source": {"/s"}, "ce-type": {"t"}},
		{"ce-specversion": {"1.0"}, "ce-id": {atkID}, "ce-source": {"/s"}, "ce-type": {"t"}, "ce-ext": {"a"}, "Ce-Ext": {"a"}},
		{"ce-specversion": {"1.0"}, "ce-id": {atkID}, "ce-source": {"/s"}, "ce-type": {"t"}, "content-type": {"text/plain"}, "Content-Type": {"text/plain"}},
		{"ce-specversion": {"1.0"}, "ce-id": {atkID}, "ce-source": {"/s"}, "ce-type": {"t"}, "content-type": {"text/plain"}, "ce-datacontenttype": {"text/plain"}},
	} {
		_, err := cloudevents.Decoder{}.Message(cloudevents.NATS, maps.All(hh), nil)
		if err == nil {
			t.Errorf("headers %v: accepted, want ErrMalformed (a header given twice)", hh)
		} else {
			atkCheckErr(t, fmt.Sprintf("headers %v", hh), err, nil)
		}
	}
	// Empty values slice.
	_, err = cloudevents.Decoder{}.Message(cloudevents.NATS, maps.All(map[string][]string{"ce-specversion": {"1.0"}, "ce-id": {}, "ce-source": {"/s"}, "ce-type": {"t"}}), nil)
	if err != nil {
		atkCheckErr(t, "empty value slice", err, nil)
	}
	// Bad extension header names.
	for _, name := range []string{"ce-a-b", "ce-abcdefghijklmnopqrstu", "ce-é", "ce-data", "ce-data_base64"} {
		hh := map[string][]string{"ce-specversion": {"1.0"}, "ce-id": {atkID}, "ce-source": {"/s"}, "ce-type": {"t"}, name: {"v"}}
		e, err := cloudevents.Decoder{}.Message(cloudevents.NATS, maps.All(hh), nil)
		if err == nil {
			t.Errorf("header %q accepted (extensions %q)", name, e.Extensions)
		} else {
			atkCheckErr(t, "header "+name, err, nil)
		}
	}
}

// Random mutations of valid events: no panic, errors are *Error.
func TestAttackDecodeMutations(t *testing.T) {
	ce, err := cloudevents.FromEvent(atkEnvelope("k", eventbus.Metadata{"correlationId": "c\n1", "tenant": "t é", "subject": "s"}))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := ce.MarshalJSON()
	r := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte(`{}[]":,\u0000%ae19 .-+tfn` + "\x00\xff\xed")
	deadline := time.Now().Add(3 * time.Second)
	n := 0
	for time.Now().Before(deadline) {
		b := bytes.Clone(js)
		for range 1 + r.IntN(4) {
			i := r.IntN(len(b))
			switch r.IntN(3) {
			case 0:
				b[i] = alphabet[r.IntN(len(alphabet))]
			case 1:
				b = append(b[:i], b[i+1:]...)
			case 2:
				b = append(b[:i], append([]byte{alphabet[r.IntN(len(alphabet))]}, b[i:]...)...)
			}
			if len(b) == 0 {
				break
			}
		}
		n++
		func() {
			defer func() {
				if rec := recover(); rec != nil {
					t.Fatalf("PANIC on %q: %v", b, rec)
				}
			}()
			e, err := cloudevents.Decoder{}.Structured(b)
			if err != nil {
				var ceErr *cloudevents.Error
				if !asErr(err, &ceErr) {
					t.Fatalf("non-*Error %T %v on %q", err, err, b)
				}
				return
			}
			if err := e.Validate(); err != nil {
				t.Errorf("decoded %q but Validate: %v", b, err)
			}
			if _, err := cloudevents.ToEvent[atkPayload](e); err != nil {
				var ceErr *cloudevents.Error
				if !asErr(err, &ceErr) {
					t.Fatalf("ToEvent non-*Error %T %v on %q", err, err, b)
				}
			}
		}()
	}
	t.Logf("%d mutations", n)
}

func asErr(err error, target **cloudevents.Error) bool {
	e, ok := err.(*cloudevents.Error)
	if ok {
		*target = e
	}
	return ok
}

// "a JSON number or boolean is kept as its text"
func TestAttackNumberExtensionKeptAsText(t *testing.T) {
	for _, n := range []string{"42", "-0", "0", "-2147483648", "2147483647"} {
		e, err := cloudevents.Decoder{}.Structured(atkDoc(`"num":` + n))
		if err != nil {
			t.Errorf("num %s: %v", n, err)
			continue
		}
		if e.Extensions["num"] != n {
			t.Errorf("extension num = JSON number %s came back as %q, want its text %q", n, e.Extensions["num"], n)
		}
	}
}

// Message: "an extension under an invalid name, is an error". A header that is the bare
// prefix names an extension "" (not 1 to 20 characters).
func TestAttackBinaryEmptyExtensionName(t *testing.T) {
	for _, b := range []cloudevents.Binding{cloudevents.NATS, cloudevents.Kafka, cloudevents.AMQP} {
		hh := map[string][]string{b.Prefix + "specversion": {"1.0"}, b.Prefix + "id": {atkID}, b.Prefix + "source": {"/s"}, b.Prefix + "type": {"t"}, b.Prefix: {"v"}}
		e, err := cloudevents.Decoder{}.Message(b, maps.All(hh), nil)
		if err == nil {
			t.Errorf("header %q: %q accepted and dropped (extensions %q), want an error", b.Prefix, "v", e.Extensions)
		}
	}
}
