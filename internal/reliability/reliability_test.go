package reliability

import (
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestScenarios runs the suite: each scenario must lose, duplicate, reorder and invent no
// event, leave no goroutine, and meet its own bar. Under -short, or the race detector, the
// sizes shrink.
func TestScenarios(t *testing.T) {
	for _, sc := range Scenarios {
		t.Run(sc.Name, func(t *testing.T) {
			r, err := sc.Run(testing.Short() || raceDetector)
			t.Logf("events %d, attempted %d, accepted %d, handled %d, dead-lettered %d, lost %d, duplicated %d, reordered %d, unexpected %d, retries %d, panics %d, goroutines left %d, peak heap %.1f MiB, %v; %s",
				r.Events, r.Attempted, r.Accepted, r.Handled, r.DeadLettered, r.Lost, r.Duplicated, r.Reordered, r.Unexpected, r.Retries, r.Panics, r.GoroutinesLeft, float64(r.PeakHeap)/(1<<20), r.Duration.Round(1e6), r.Note)
			if err != nil {
				t.Error(err)
			}
			if err := r.Check(); err != nil {
				t.Error(err)
			}
		})
	}
}
