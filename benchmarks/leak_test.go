package benchmarks

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks, after the tests and after the benchmarks, that every goroutine of every
// library was stopped by its adapter's close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
