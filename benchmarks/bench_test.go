package benchmarks

import "testing"

// Each benchmark runs its scenario against every library, as Benchmark<scenario>/<library>;
// see README.md for what each measures and how each library is driven.

func BenchmarkA_OneSubscriber(b *testing.B)      { scenarioA.bench(b) }
func BenchmarkB_TenSubscribers(b *testing.B)     { scenarioB.bench(b) }
func BenchmarkC_KeysOrdered(b *testing.B)        { scenarioC.bench(b) }
func BenchmarkD_IdleLatency(b *testing.B)        { scenarioD.bench(b) }
func BenchmarkE_Guarantees(b *testing.B)         { scenarioE.bench(b) }
func BenchmarkF_ParallelPublishers(b *testing.B) { scenarioF.bench(b) }

// TestScenarios runs every scenario against every library on a few events, so that
// `go test -race github.com/ae30fb47/eventbus/...` checks the adapters: every delivery
// verified, and (TestMain) no goroutine left behind.
func TestScenarios(t *testing.T) {
	for _, sc := range scenarios {
		for _, lib := range sc.libs {
			t.Run(sc.name+"/"+lib.name, func(t *testing.T) {
				if err := sc.run(newTestRun(sc.testEvents), lib); err != nil {
					if reason, ok := isSkip(err); ok {
						t.Skip(reason)
					}
					t.Fatal(err)
				}
			})
		}
	}
}
