package main

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// results is what `go test -bench` printed, over one or more runs.
type results struct {
	config  map[string]string // "cpu", "goos", "goarch", "go", ...: the last value seen
	procs   int               // GOMAXPROCS, from the names' -N suffix (1 without one)
	order   []string          // benchmark names, in the order first seen
	samples map[string][]sample
	skipped map[string]string // benchmark name -> reason
	failed  []string          // the lines of every failure report
}

// sample is one result line of a benchmark: its value per unit.
type sample map[string]float64

// parse reads the output of one or more `go test -bench` runs. Lines it does not know are
// ignored, as benchstat does; a result line that is malformed is an error.
func parse(r io.Reader) (*results, error) {
	res := &results{
		config:  map[string]string{},
		procs:   1,
		samples: map[string][]sample{},
		skipped: map[string]string{},
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	// A skip or failure report goes on in the indented lines that follow it.
	var appendReport func(msg string)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if appendReport != nil && strings.HasPrefix(line, "    ") {
			appendReport(reportMessage(line))
			continue
		}
		appendReport = nil
		switch {
		case strings.HasPrefix(line, "--- SKIP: Benchmark"):
			name, _ := splitProcs(strings.Fields(strings.TrimPrefix(line, "--- SKIP: "))[0])
			res.note(name)
			res.skipped[name] = ""
			appendReport = func(msg string) { res.skipped[name] = strings.TrimSpace(res.skipped[name] + " " + msg) }
		case strings.HasPrefix(line, "--- FAIL: "):
			res.failed = append(res.failed, strings.TrimPrefix(line, "--- FAIL: "))
			i := len(res.failed) - 1
			appendReport = func(msg string) { res.failed[i] += "\n    " + msg }
		case strings.HasPrefix(line, "Benchmark"):
			if err := res.addResult(line); err != nil {
				return nil, fmt.Errorf("line %d: %w", lineNo, err)
			}
		default:
			if key, value, ok := configLine(line); ok {
				res.config[key] = value
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return res, nil
}

// addResult parses a result line: a name, an iteration count, then value-unit pairs. A
// name alone (a benchmark with sub-benchmarks, or one whose result follows its log) is not
// a result.
func (res *results) addResult(line string) error {
	f := strings.Fields(line)
	if len(f) < 2 {
		return nil
	}
	if _, err := strconv.ParseUint(f[1], 10, 64); err != nil {
		return nil // not a result line, such as "BenchmarkX	some log output"
	}
	if len(f)%2 != 0 {
		return fmt.Errorf("result %q: values and units do not pair up", line)
	}
	name, procs := splitProcs(f[0])
	s := sample{}
	for i := 2; i < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return fmt.Errorf("result %q: value %q: %w", line, f[i], err)
		}
		s[f[i+1]] = v
	}
	res.procs = procs
	res.note(name)
	res.samples[name] = append(res.samples[name], s)
	return nil
}

func (res *results) note(name string) {
	if _, seen := res.samples[name]; seen {
		return
	}
	if _, seen := res.skipped[name]; seen {
		return
	}
	res.order = append(res.order, name)
}

// splitProcs splits "BenchmarkX/y-2" into "BenchmarkX/y" and 2; a name without the suffix
// ran with GOMAXPROCS 1.
func splitProcs(name string) (string, int) {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name, 1
	}
	n, err := strconv.Atoi(name[i+1:])
	if err != nil || n < 1 {
		return name, 1
	}
	return name[:i], n
}

// configLine recognizes a "key: value" line of the benchmark format (goos, goarch, pkg,
// cpu, and the "go" line benchtable adds): a lower-case key without spaces.
func configLine(line string) (key, value string, ok bool) {
	key, value, ok = strings.Cut(line, ":")
	if !ok || key == "" || strings.ContainsAny(key, " \t") || strings.ToLower(key) != key {
		return "", "", false
	}
	return key, strings.TrimSpace(value), true
}

// reportMessage strips a test log line's indentation and "file.go:12: " prefix.
func reportMessage(line string) string {
	line = strings.TrimSpace(line)
	if file, rest, ok := strings.Cut(line, ": "); ok && strings.Contains(file, ".go:") && !strings.Contains(file, " ") {
		return rest
	}
	return line
}
