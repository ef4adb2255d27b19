// Package benchmarks compares eventbus with other in-process Go event buses, end to end:
// every scenario publishes events, waits until every subscriber has handled all of them,
// and checks each delivery, failing on a missing, duplicated or reordered event.
//
// The package holds no API: the libraries' adapters, the scenarios and the checks are in
// its test files, so that the peers stay out of the eventbus module's go.mod (the layout
// of zap's benchmarks module). Run the scenarios with
//
//	go test -run '^$' -bench . github.com/ae30fb47/eventbus/benchmarks
//
// and print the README's table, medians of several runs, with
//
//	go run ./cmd/benchtable
//
// from this directory. See README.md for the scenarios and how each library is driven.
package benchmarks
