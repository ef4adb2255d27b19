package main

import (
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// want is the output of run: the same every time, whatever the scheduling.
const want = `trace T1
S1 POST /orders (server)
└─ S2 publish order.placed (producer) key=o-1 operation=send
   ├─ S3 process order.placed (consumer) subscriber=billing attempt=1 key=o-1 operation=process error.type=*errors.errorString ERROR "payment service unavailable" link→S2
   ├─ S4 process order.placed (consumer) subscriber=billing attempt=2 key=o-1 operation=process link→S2
   └─ S5 process order.placed (consumer) subscriber=inventory attempt=1 key=o-1 operation=process link→S2
      ├─ S6 publish stock.reserved (producer) key=o-1 operation=send
      │  └─ S7 process stock.reserved (consumer) subscriber=notification attempt=1 key=o-1 operation=process link→S6
      │     └─ S8 send email (internal)
      └─ S9 reserve stock (internal)

stock.reserved carried traceparent 00-T1-S6-01
`

func TestRunPrintsTheTrace(t *testing.T) {
	for range 3 {
		var b strings.Builder
		if err := run(&b); err != nil {
			t.Fatal(err)
		}
		if b.String() != want {
			t.Fatalf("run printed\n%s\nwant\n%s", b.String(), want)
		}
	}
}
