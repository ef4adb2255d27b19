package natsbridge_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every test stops the embedded servers it starts and waits for their shutdown, and closes
// its bridges and buses, so no goroutine may be left.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
