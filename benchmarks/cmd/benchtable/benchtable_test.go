package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// sampleOutput is two rounds of `go test -bench` as benchtable collects them, with a
// skipped benchmark, a latency scenario and a group of eventbus variants only.
const sampleOutput = `go: go1.26.8
goos: linux
goarch: amd64
pkg: github.com/ae30fb47/eventbus/benchmarks
cpu: AMD EPYC
BenchmarkA_OneSubscriber/eventbus-2         	 1535575	       150.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkA_OneSubscriber/channel-2          	 2234772	       100.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkA_OneSubscriber/kelindar-event-2   	 5692090	        40.0 ns/op	       2 B/op	       0 allocs/op
--- SKIP: BenchmarkA_OneSubscriber/other-2
    bench_test.go:12: cannot do
    this scenario
BenchmarkD_IdleLatency/eventbus-2           	  484407	       492.3 ns/op	       388.0 p50-ns	       696.0 p99-ns	       0 B/op	       0 allocs/op
BenchmarkD_IdleLatency/kelindar-event-2     	     212	   1137953 ns/op	   1097728 p50-ns	   2785280 p99-ns	      41 B/op	       0 allocs/op
BenchmarkE_Guarantees/eventbus-2            	 1720868	       120.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkE_Guarantees/eventbus-guarantees-2 	  431475	       600.0 ns/op	      51 B/op	       0 allocs/op
PASS
ok  	github.com/ae30fb47/eventbus/benchmarks	14.529s
goos: linux
goarch: amd64
pkg: github.com/ae30fb47/eventbus/benchmarks
cpu: AMD EPYC
BenchmarkA_OneSubscriber/eventbus-2         	 1535575	       170.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkA_OneSubscriber/channel-2          	 2234772	        80.0 ns/op	       0 B/op	       1 allocs/op
BenchmarkA_OneSubscriber/kelindar-event-2   	 5692090	        44.0 ns/op	       2 B/op	       0 allocs/op
--- SKIP: BenchmarkA_OneSubscriber/other-2
    bench_test.go:12: cannot do
    this scenario
BenchmarkD_IdleLatency/eventbus-2           	  484407	       507.7 ns/op	       412.0 p50-ns	       704.0 p99-ns	       0 B/op	       0 allocs/op
BenchmarkD_IdleLatency/kelindar-event-2     	     212	   1137953 ns/op	   1097728 p50-ns	   2785280 p99-ns	      41 B/op	       0 allocs/op
BenchmarkE_Guarantees/eventbus-2            	 1720868	       140.0 ns/op	       0 B/op	       0 allocs/op
BenchmarkE_Guarantees/eventbus-guarantees-2 	  431475	       600.0 ns/op	      51 B/op	       0 allocs/op
PASS
`

const wantTables = `
**A: one subscriber**

| library | ns/event | events/s | allocs/event | spread | × the fastest peer |
| --- | ---: | ---: | ---: | ---: | ---: |
| **eventbus** | 160 | 6.2M | 0 | ±6% | 3.81 |
| channel | 90.0 | 11.1M | 0.5 | ±11% | 2.14 |
| kelindar-event | 42.0 | 23.8M | 0 | ±5% | 1 |
| other | skipped: cannot do this scenario |  |  |  |  |

**D: idle latency (publish one event, wait until it is handled, repeat)**

| library | p50 | p99 | ns/event | events/s | allocs/event | spread | × the fastest peer, p50 |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| **eventbus** | 400 ns | 700 ns | 500 | 2.0M | 0 | ±2% | 0.00036 |
| kelindar-event | 1.1 ms | 2.79 ms | 1,137,953 | 879 | 0 | ±0% | 1 |

**E: eventbus with a retry policy, a dead-letter hook and de-duplication, nothing failing**

| library | ns/event | events/s | allocs/event | spread | × eventbus |
| --- | ---: | ---: | ---: | ---: | ---: |
| **eventbus** | 130 | 7.7M | 0 | ±8% | 1 |
| eventbus-guarantees | 600 | 1.7M | 0 | ±0% | 4.62 |
`

func TestTablesFromOutput(t *testing.T) {
	res, err := parse(strings.NewReader(sampleOutput))
	if err != nil {
		t.Fatal(err)
	}
	if res.config["go"] != "go1.26.8" || res.config["cpu"] != "AMD EPYC" || res.procs != 2 {
		t.Errorf("config = %v, procs %d; want go1.26.8, AMD EPYC, 2", res.config, res.procs)
	}
	var out bytes.Buffer
	writeTables(&out, res.groups())
	if out.String() != wantTables {
		t.Errorf("tables:\n%s\nwant:\n%s", out.String(), wantTables)
	}
}

func TestRunFromFile(t *testing.T) {
	in := filepath.Join(t.TempDir(), "out.txt")
	if err := os.WriteFile(in, []byte(sampleOutput), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := run(0, "", "", "", in, &out); err != nil {
		t.Fatalf("run(-in) = %v", err)
	}
	header := "Go go1.26.8, linux/amd64, AMD EPYC, GOMAXPROCS 2; medians of 2 runs"
	if !strings.HasPrefix(out.String(), header) || !strings.Contains(out.String(), "grain of salt") {
		t.Errorf("run(-in) printed:\n%s\nwant it to start with %q and carry the noise caveat", out.String(), header)
	}
}

func TestRunReportsFailures(t *testing.T) {
	failing := sampleOutput + `--- FAIL: BenchmarkC_KeysOrdered/foo-2
    scenario_test.go:40: subscriber 0, key 3: event 7 handled before 6 (missing or reordered)
FAIL
`
	in := filepath.Join(t.TempDir(), "out.txt")
	if err := os.WriteFile(in, []byte(failing), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := run(0, "", "", "", in, &out)
	if err == nil || !strings.Contains(err.Error(), "BenchmarkC_KeysOrdered/foo-2\n    subscriber 0, key 3: event 7 handled before 6") {
		t.Fatalf("run(failing output) = %v; want the failure reported", err)
	}
	if out.Len() != 0 {
		t.Errorf("run(failing output) printed a table:\n%s", out.String())
	}
}

func TestParseRejectsMalformedResults(t *testing.T) {
	for _, line := range []string{
		"BenchmarkX-2 100 12.5 ns/op 3",
		"BenchmarkX-2 100 twelve ns/op",
	} {
		if _, err := parse(strings.NewReader(line + "\n")); err == nil {
			t.Errorf("parse(%q) = nil error; want one", line)
		}
	}
	res, err := parse(strings.NewReader("BenchmarkParent\nBenchmarkX-2\tsome log\n"))
	if err != nil || len(res.order) != 0 {
		t.Errorf("parse(names without results) = %v, %v; want no results and no error", res.order, err)
	}
}

func TestSplitProcs(t *testing.T) {
	for _, tt := range []struct {
		in    string
		name  string
		procs int
	}{
		{"BenchmarkA/eventbus-2", "BenchmarkA/eventbus", 2},
		{"BenchmarkA/eventbus-guarantees-16", "BenchmarkA/eventbus-guarantees", 16},
		{"BenchmarkA/eventbus-guarantees", "BenchmarkA/eventbus-guarantees", 1},
		{"BenchmarkA/x-0", "BenchmarkA/x-0", 1},
	} {
		if name, procs := splitProcs(tt.in); name != tt.name || procs != tt.procs {
			t.Errorf("splitProcs(%q) = %q, %d; want %q, %d", tt.in, name, procs, tt.name, tt.procs)
		}
	}
}

// FuzzParse feeds parse arbitrary output: it must return an error or results that
// writeTables can print, never panic.
func FuzzParse(f *testing.F) {
	f.Add(sampleOutput)
	f.Add("--- SKIP: Benchmark\n    x\nBenchmarkA/b-1 1 NaN ns/op -Inf p50-ns\n")
	f.Add("--- FAIL: \n    \nBenchmark/-9 0 1e309 ns/op\n")
	f.Fuzz(func(t *testing.T, output string) {
		res, err := parse(strings.NewReader(output))
		if err != nil {
			return
		}
		var out bytes.Buffer
		writeTables(&out, res.groups())
		writeHeader(&out, res, "fuzz")
	})
}
