package cloudevents_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ae30fb47/eventbus"
	"github.com/ae30fb47/eventbus/cloudevents"
)

var atkHostileValues = []string{
	"", " ", "  leading", "trailing  ", "\x00", "a\x00b", "\n", "a\r\nb", "\t", "\x7f", "\u0080", "\u0085", "\u009f", "\u00a0",
	"\ufdd0", "\ufdef", "\ufffe", "\uffff", "\U0001fffe", "\U0010ffff", "\U0010fffe", "\ufeff", "\ufeffbom", "e\u0301", "\u0301",
	"\u2028\u2029", "\U0001F600", "\ufffd", "%", "%%", "%25", "%zz", "%0a", "%00", "100%", "a%2", "+", "a+b", "\"", "'", "\\", "\\u0000",
	`\n`, "{}", `{"a":"b"}`, `{"correlationId":"x"}`, "[1,2]", "null", "true", "false", "42", "-0", "1e400", `"quoted"`,
	"<script>", "=?utf-8?q?x?=", "ce-id", "ü", "日本語", strings.Repeat("é", 1000), "\x1b[31m", "\u200b", "\u202e",
}

var atkHostileKeys = []string{
	"a", "tenant", "traceparent", "tracestate", "correlationId", "x-request-id", "UPPER", "a b", "",
	"id", "source", "type", "specversion", "time", "datacontenttype", "dataschema", "subject", "data", "data_base64",
	"partitionkey", "eventbusmetadata", "abcdefghijklmnopqrst", "abcdefghijklmnopqrstu", "ü", "\x00", "\n", "\ufdd0",
	"%41", "ce-id", "ce_id", "cloudEvents:id", "content-type", "Nats-Msg-Id", "0", "9999",
}

// Every single hostile key x value pair crosses alone, in every mode.
func TestAttackMetadataPairsCross(t *testing.T) {
	fails := 0
	for _, k := range atkHostileKeys {
		for _, v := range atkHostileValues {
			what := fmt.Sprintf("Metadata{%q:%q}", k, atkShort(v))
			if !atkRoundTrip(t, what, cloudevents.Decoder{}, atkEnvelope("k1", eventbus.Metadata{k: v})) {
				fails++
				if fails > 20 {
					t.Fatal("too many failures")
				}
			}
		}
	}
}

func atkShort(s string) string {
	if len(s) > 30 {
		return s[:30] + "..."
	}
	return s
}

// All hostile pairs at once, with key collisions.
func TestAttackMetadataAllAtOnce(t *testing.T) {
	md := eventbus.Metadata{}
	for i, k := range atkHostileKeys {
		md[k] = atkHostileValues[i%len(atkHostileValues)]
	}
	atkRoundTrip(t, "all hostile keys", cloudevents.Decoder{}, atkEnvelope("key", md))
	atkRoundTrip(t, "all hostile keys, no Key", cloudevents.Decoder{}, atkEnvelope("", md))
	// partitionkey in Metadata and Key empty / different.
	atkRoundTrip(t, "partitionkey md, empty Key", cloudevents.Decoder{}, atkEnvelope("", eventbus.Metadata{"partitionkey": "pk"}))
	atkRoundTrip(t, "partitionkey md == Key", cloudevents.Decoder{}, atkEnvelope("pk", eventbus.Metadata{"partitionkey": "pk"}))
	atkRoundTrip(t, "eventbusmetadata forged by publisher", cloudevents.Decoder{}, atkEnvelope("", eventbus.Metadata{"eventbusmetadata": `{"correlationId":"x"}`, "correlationId": "y"}))
	atkRoundTrip(t, "subject/dataschema that fit", cloudevents.Decoder{}, atkEnvelope("", eventbus.Metadata{"subject": "s", "dataschema": "https://x.example/s"}))
	atkRoundTrip(t, "dataschema relative", cloudevents.Decoder{}, atkEnvelope("", eventbus.Metadata{"dataschema": "relative/ref"}))
	atkRoundTrip(t, "dataschema with space", cloudevents.Decoder{}, atkEnvelope("", eventbus.Metadata{"dataschema": "http://x y/"}))
	atkRoundTrip(t, "dataschema urn", cloudevents.Decoder{}, atkEnvelope("", eventbus.Metadata{"dataschema": "urn:x"}))
	atkRoundTrip(t, "dataschema non-ascii", cloudevents.Decoder{}, atkEnvelope("", eventbus.Metadata{"dataschema": "http://é.example/"}))
	atkRoundTrip(t, "dataschema percent", cloudevents.Decoder{}, atkEnvelope("", eventbus.Metadata{"dataschema": "http://x/%zz"}))
	atkRoundTrip(t, "dataschema fragment only", cloudevents.Decoder{}, atkEnvelope("", eventbus.Metadata{"dataschema": "#frag"}))
	atkRoundTrip(t, "dataschema scheme only", cloudevents.Decoder{}, atkEnvelope("", eventbus.Metadata{"dataschema": "http:"}))
	atkRoundTrip(t, "dataschema bad scheme", cloudevents.Decoder{}, atkEnvelope("", eventbus.Metadata{"dataschema": "1http://x"}))
	atkRoundTrip(t, "subject noncharacter", cloudevents.Decoder{}, atkEnvelope("", eventbus.Metadata{"subject": "\ufffe"}))
	atkRoundTrip(t, "subject nul", cloudevents.Decoder{}, atkEnvelope("", eventbus.Metadata{"subject": "\x00"}))
	atkRoundTrip(t, "subject space", cloudevents.Decoder{}, atkEnvelope("", eventbus.Metadata{"subject": " "}))
}

// Many entries that are not extension names: all inside eventbusmetadata.
func TestAttackMetadataManyEntries(t *testing.T) {
	md := eventbus.Metadata{}
	for i := range 20000 {
		md[fmt.Sprintf("Key-%d", i)] = fmt.Sprintf("v\n%d", i)
	}
	atkRoundTrip(t, "20000 inner entries", cloudevents.Decoder{}, atkEnvelope("k", md))
}

// Entries that are extension names: each becomes an extension. The default decoder allows
// DefaultMaxExtensions; does the codec keep its promise with more?
func TestAttackMetadataManyExtensionNamedEntries(t *testing.T) {
	for _, n := range []int{62, 63, 64, 65, 100} {
		md := eventbus.Metadata{}
		for i := range n {
			md[fmt.Sprintf("ext%d", i)] = "v"
		}
		t.Run(fmt.Sprint(n, "-entries-with-key"), func(t *testing.T) {
			atkRoundTrip(t, fmt.Sprintf("%d extension-named entries + Key, default Decoder", n), cloudevents.Decoder{}, atkEnvelope("k", md))
		})
		t.Run(fmt.Sprint(n, "-entries-no-key"), func(t *testing.T) {
			atkRoundTrip(t, fmt.Sprintf("%d extension-named entries, default Decoder", n), cloudevents.Decoder{}, atkEnvelope("", md))
		})
	}
}

// Long values: just under the default MaxSize the event must still cross.
func TestAttackMetadataLongValues(t *testing.T) {
	for _, v := range []string{strings.Repeat("a", 200_000), strings.Repeat("é", 100_000), strings.Repeat("\n", 50_000), strings.Repeat("\ufffe", 50_000)} {
		atkRoundTrip(t, fmt.Sprintf("long ext value %d bytes", len(v)), cloudevents.Decoder{}, atkEnvelope("k", eventbus.Metadata{"long": v}))
		atkRoundTrip(t, fmt.Sprintf("long inner value %d bytes", len(v)), cloudevents.Decoder{}, atkEnvelope("k", eventbus.Metadata{"Long": v}))
	}
	// Very long key.
	atkRoundTrip(t, "long key", cloudevents.Decoder{}, atkEnvelope("k", eventbus.Metadata{strings.Repeat("K", 100_000): "v"}))
	// Over the limit: the decoder must say ErrTooLarge, not panic.
	ce, err := cloudevents.FromEvent(atkEnvelope("k", eventbus.Metadata{"long": strings.Repeat("a", 2<<20)}))
	if err != nil {
		t.Fatalf("FromEvent: %v", err)
	}
	for _, m := range atkModes {
		_, err := m.through(t, cloudevents.Decoder{}, ce)
		atkCheckErr(t, "2 MiB value via "+m.name, err, cloudevents.ErrTooLarge)
	}
}

// Invalid UTF-8 anywhere in Metadata: FromEvent refuses with ErrInvalid.
func TestAttackMetadataInvalidUTF8(t *testing.T) {
	bad := []string{"\xff", "\xed\xa0\x80", "\xed\xbf\xbf", "\xc0\x80", "a\xe2\x82", "\xf4\x90\x80\x80", "\xf8\x88\x80\x80\x80"}
	for _, b := range bad {
		for _, md := range []eventbus.Metadata{{"tenant": b}, {"Tenant": b}, {b: "v"}, {"subject": b}, {"dataschema": b}, {"partitionkey": b}} {
			_, err := cloudevents.FromEvent(atkEnvelope("k", md))
			atkCheckErr(t, fmt.Sprintf("FromEvent(%q)", md), err, cloudevents.ErrInvalid)
		}
	}
	// Key with invalid UTF-8 or control char.
	for _, k := range []string{"\xff", "\x00", "a\nb", "\x7f", "\u0085"} {
		_, err := cloudevents.FromEvent(atkEnvelope(k, nil))
		atkCheckErr(t, fmt.Sprintf("FromEvent(Key %q)", k), err, cloudevents.ErrInvalid)
	}
}

// A Key holding a noncharacter: the partitionkey extension would not be a String.
func TestAttackKeyNoncharacter(t *testing.T) {
	for _, k := range []string{"\ufffe", "\ufdd0", "\U0010ffff"} {
		ce, err := cloudevents.FromEvent(atkEnvelope(k, nil))
		if err != nil {
			atkCheckErr(t, fmt.Sprintf("FromEvent(Key %q)", k), err, cloudevents.ErrInvalid)
			continue
		}
		atkConformant(t, fmt.Sprintf("FromEvent(Key %q)", k), ce)
	}
}

// A topic name (type) or source with hostile characters.
func TestAttackTypeAndSourceConformance(t *testing.T) {
	for _, name := range []string{"t\ufffe", "t\ufdd0", "t\u0085", "t\x00", "t\n"} {
		ev := atkEnvelope("", nil)
		ev.Type = name
		ce, err := cloudevents.FromEvent(ev)
		if err != nil {
			atkCheckErr(t, fmt.Sprintf("FromEvent(Type %q)", name), err, cloudevents.ErrInvalid)
			continue
		}
		atkConformant(t, fmt.Sprintf("FromEvent(Type %q)", name), ce)
	}
	for _, src := range []string{"/s\ufffe", "/s\x00", "/s\n", "/a b", "%zz", "http://[::1", "/é"} {
		ev := atkEnvelope("", nil)
		ev.Source = src
		ce, err := cloudevents.FromEvent(ev)
		if err != nil {
			atkCheckErr(t, fmt.Sprintf("FromEvent(Source %q)", src), err, cloudevents.ErrInvalid)
			continue
		}
		atkConformant(t, fmt.Sprintf("FromEvent(Source %q)", src), ce)
	}
}

// Validate must refuse what the spec's String type forbids.
func TestAttackValidateStringRules(t *testing.T) {
	base := func() cloudevents.Event {
		ce, err := cloudevents.FromEvent(atkEnvelope("", nil))
		if err != nil {
			t.Fatal(err)
		}
		return ce
	}
	bad := []string{"\x00", "\x1f", "\x7f", "\u0080", "\u009f", "\ufdd0", "\ufdef", "\ufffe", "\uffff", "\U0001fffe", "\U0001ffff", "\U0010fffe", "\U0010ffff", "\xed\xa0\x80", "\xff"}
	for _, s := range bad {
		for _, field := range []string{"subject", "type", "ext", "id", "partitionkey"} {
			e := base()
			e.Extensions = map[string]string{}
			switch field {
			case "subject":
				e.Subject = "s" + s
			case "type":
				e.Type = "t" + s
			case "id":
				e.ID = "i" + s
			case "ext":
				e.Extensions["ext"] = "v" + s
			case "partitionkey":
				e.Extensions["partitionkey"] = "v" + s
			}
			err := e.Validate()
			if err == nil {
				t.Errorf("Validate() = nil for %s holding %q, which the spec's String type disallows", field, s)
				continue
			}
			atkCheckErr(t, fmt.Sprintf("Validate(%s %q)", field, s), err, cloudevents.ErrInvalid)
		}
	}
	// Allowed: BOM, combining marks, U+FFFD, private use, U+00A0, paired surrogate char.
	for _, s := range []string{"\ufeff", "e\u0301", "\ufffd", "\ue000", "\u00a0", "\U0001F600", "\ufdcf", "\ufdf0", "\ufffd"} {
		e := base()
		e.Subject = s
		e.Extensions = map[string]string{"ext": s}
		if err := e.Validate(); err != nil {
			t.Errorf("Validate(%q) = %v, want nil (allowed String)", s, err)
		}
	}
}

// Decoders on input with forbidden String characters.
func TestAttackDecodeStringRules(t *testing.T) {
	id := "0190a8a6-58b2-7c1e-8d6e-0123456789ab"
	bad := []string{`\u0000`, `\u001f`, `\u007f`, `\u0080`, `\u009f`, `\ufdd0`, `\ufffe`, `\uffff`, `\ud83f\udffe`, `\udbff\udfff`}
	for _, s := range bad {
		for _, attr := range []string{"subject", "ext", "type", "id"} {
			doc := map[string]string{"specversion": `"1.0"`, "id": `"` + id + `"`, "source": `"/s"`, "type": `"t"`}
			doc[attr] = `"x` + s + `"`
			var parts []string
			for k, v := range doc {
				parts = append(parts, fmt.Sprintf("%q:%s", k, v))
			}
			js := "{" + strings.Join(parts, ",") + "}"
			_, err := cloudevents.Decoder{}.Structured([]byte(js))
			if err == nil {
				t.Errorf("Structured(%s) = nil error; %s holds %s, which the String type disallows", js, attr, s)
				continue
			}
			atkCheckErr(t, "Structured("+js+")", err, nil)
		}
	}
	// Raw bytes: control chars in binary headers, noncharacters, percent-decoding to bad bytes.
	for _, v := range []string{"%00", "%1f", "%7f", "%c2%80", "%ef%bf%be", "%ef%b7%90", "%ed%a0%80", "%ff", "%zz", "%", "%4", "a%g1"} {
		h := map[string][]string{"ce-specversion": {"1.0"}, "ce-id": {id}, "ce-source": {"/s"}, "ce-type": {"t"}, "ce-ext": {"x" + v}}
		_, err := cloudevents.Decoder{}.Message(cloudevents.NATS, atkSeq(h), nil)
		if err == nil {
			t.Errorf("Message(NATS ce-ext: %q) = nil error", "x"+v)
			continue
		}
		atkCheckErr(t, "Message(NATS ce-ext "+v+")", err, nil)
	}
	for _, v := range []string{"\x00", "\x1f", "\x7f", "\u0080", "\ufffe", "\ufdd0", "\xed\xa0\x80", "\xff"} {
		for _, b := range []cloudevents.Binding{cloudevents.Kafka, cloudevents.AMQP, cloudevents.NATS} {
			h := map[string][]string{b.Prefix + "specversion": {"1.0"}, b.Prefix + "id": {id}, b.Prefix + "source": {"/s"}, b.Prefix + "type": {"t"}, b.Prefix + "ext": {"x" + v}}
			_, err := cloudevents.Decoder{}.Message(b, atkSeq(h), nil)
			if err == nil {
				t.Errorf("Message(%s ext: %q) = nil error", b.Prefix, "x"+v)
				continue
			}
			atkCheckErr(t, fmt.Sprintf("Message(%s ext %q)", b.Prefix, v), err, nil)
		}
	}
}

func atkSeq(h map[string][]string) func(yield func(string, []string) bool) {
	return func(yield func(string, []string) bool) {
		for k, v := range h {
			if !yield(k, v) {
				return
			}
		}
	}
}

var _ = errors.New

// Spec: surrogates are disallowed "unless used properly in pairs. Thus (in JSON notation)
// "\uDEAD" is invalid".
func TestAttackDecodeLoneSurrogate(t *testing.T) {
	for _, s := range []string{`\ud800`, `\udead`, `\udc00`, `\ud800x`, `\udc00\ud800`} {
		for _, attr := range []string{"subject", "ext", "type", "id"} {
			doc := map[string]string{"specversion": `"1.0"`, "id": `"0190a8a6-58b2-7c1e-8d6e-0123456789ab"`, "source": `"/s"`, "type": `"t"`}
			doc[attr] = `"x` + s + `"`
			js := fmt.Sprintf(`{"specversion":%s,"id":%s,"source":%s,"type":%s`, doc["specversion"], doc["id"], doc["source"], doc["type"])
			if attr == "subject" || attr == "ext" {
				js += fmt.Sprintf(`,%q:%s`, attr, doc[attr])
			}
			js += "}"
			e, err := cloudevents.Decoder{}.Structured([]byte(js))
			if err == nil {
				got := map[string]string{"subject": e.Subject, "type": e.Type, "id": e.ID, "ext": e.Extensions["ext"]}[attr]
				t.Errorf("Structured(%s) accepted; %s read as %q", js, attr, got)
			}
		}
	}
}
