package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// labels replaces trace and span IDs with short labels, given in order of first use.
type labels struct {
	traces map[trace.TraceID]string
	spans  map[trace.SpanID]string
}

func newLabels() *labels {
	return &labels{traces: map[trace.TraceID]string{}, spans: map[trace.SpanID]string{}}
}

func (l *labels) trace(id trace.TraceID) string {
	if _, ok := l.traces[id]; !ok {
		l.traces[id] = fmt.Sprintf("T%d", len(l.traces)+1)
	}
	return l.traces[id]
}

func (l *labels) span(id trace.SpanID) string {
	if _, ok := l.spans[id]; !ok {
		l.spans[id] = fmt.Sprintf("S%d", len(l.spans)+1)
	}
	return l.spans[id]
}

// traceparent rewrites a W3C traceparent with labels in place of its IDs.
func (l *labels) traceparent(tp string) string {
	parts := strings.Split(tp, "-")
	if len(parts) != 4 {
		return tp
	}
	tid, err1 := trace.TraceIDFromHex(parts[1])
	sid, err2 := trace.SpanIDFromHex(parts[2])
	if err1 != nil || err2 != nil {
		return tp
	}
	return strings.Join([]string{parts[0], l.trace(tid), l.span(sid), parts[3]}, "-")
}

// shown are the attributes printed, in this order, with the names they are printed under.
var shown = []struct {
	key   attribute.Key
	label string
}{
	{"messaging.consumer.group.name", "subscriber"},
	{"messaging.eventbus.message.delivery_attempt", "attempt"},
	{"messaging.eventbus.message.key", "key"},
	{"messaging.operation.type", "operation"},
	{"error.type", "error.type"},
}

// printTree prints spans as trees, one per root, children in a fixed order (by name, then
// subscriber, then attempt), so that the output does not depend on scheduling.
func printTree(w io.Writer, spans tracetest.SpanStubs, l *labels) {
	children := map[trace.SpanID][]tracetest.SpanStub{}
	var roots []tracetest.SpanStub
	for _, s := range spans {
		if s.Parent.IsValid() {
			children[s.Parent.SpanID()] = append(children[s.Parent.SpanID()], s)
		} else {
			roots = append(roots, s)
		}
	}
	// Give every span its label in tree order first, so that links can name spans that come
	// later in the tree.
	var walk func(s tracetest.SpanStub)
	walk = func(s tracetest.SpanStub) {
		l.span(s.SpanContext.SpanID())
		for _, c := range sorted(children[s.SpanContext.SpanID()]) {
			walk(c)
		}
	}
	for _, r := range sorted(roots) {
		l.trace(r.SpanContext.TraceID())
		walk(r)
	}
	var print func(s tracetest.SpanStub, prefix, branch, indent string)
	print = func(s tracetest.SpanStub, prefix, branch, indent string) {
		fmt.Fprintf(w, "%s%s%s\n", prefix, branch, describe(s, l))
		kids := sorted(children[s.SpanContext.SpanID()])
		for i, c := range kids {
			if i == len(kids)-1 {
				print(c, prefix+indent, "└─ ", "   ")
			} else {
				print(c, prefix+indent, "├─ ", "│  ")
			}
		}
	}
	for _, r := range sorted(roots) {
		fmt.Fprintf(w, "trace %s\n", l.trace(r.SpanContext.TraceID()))
		print(r, "", "", "")
	}
}

// describe is one span's line: label, name, kind, the shown attributes, status and links.
func describe(s tracetest.SpanStub, l *labels) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s (%s)", l.span(s.SpanContext.SpanID()), s.Name, s.SpanKind)
	attrs := attribute.NewSet(s.Attributes...)
	for _, a := range shown {
		if v, ok := attrs.Value(a.key); ok {
			fmt.Fprintf(&b, " %s=%s", a.label, v.String())
		}
	}
	if s.Status.Code == codes.Error {
		fmt.Fprintf(&b, " ERROR %q", s.Status.Description)
	}
	for _, link := range s.Links {
		fmt.Fprintf(&b, " link→%s", l.span(link.SpanContext.SpanID()))
	}
	return b.String()
}

// sorted returns spans by name, then subscriber, then attempt.
func sorted(spans []tracetest.SpanStub) []tracetest.SpanStub {
	key := func(s tracetest.SpanStub) (string, string, int64) {
		set := attribute.NewSet(s.Attributes...)
		group, _ := set.Value("messaging.consumer.group.name")
		attempt, _ := set.Value("messaging.eventbus.message.delivery_attempt")
		return s.Name, group.AsString(), attempt.AsInt64()
	}
	return slices.SortedFunc(slices.Values(spans), func(a, b tracetest.SpanStub) int {
		an, ag, aa := key(a)
		bn, bg, ba := key(b)
		return cmp.Or(cmp.Compare(an, bn), cmp.Compare(ag, bg), cmp.Compare(aa, ba))
	})
}
