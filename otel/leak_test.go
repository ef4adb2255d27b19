package eventbusotel_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The SDK parts the tests use (a syncer span processor, a manual metric reader) start no
// goroutine, so nothing needs ignoring.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
