package eventbus

import (
	"testing"
	"testing/synctest"
	"time"
)

func TestClockTicksWhileUsedAndStopsWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var c clock
		if got, want := c.now(), time.Now(); !got.Equal(want) {
			t.Fatalf("first clock.now() = %v; want the system time %v", got, want)
		}
		for range 50 {
			time.Sleep(37 * time.Microsecond)
			got, want := c.now(), time.Now()
			if got.After(want) || want.Sub(got) > tick {
				t.Fatalf("clock.now() = %v at %v; want within one tick (%v) before", got, want, tick)
			}
		}
		time.Sleep(idleTicks*tick + 2*tick) // unused for idleTicks: the ticker stops
		synctest.Wait()
		if c.nanos.Load() != 0 || c.running {
			t.Fatalf("ticker still running after %d idle ticks", idleTicks)
		}
		if got, want := c.now(), time.Now(); !got.Equal(want) {
			t.Errorf("clock.now() after idling = %v; want the system time %v", got, want)
		}
		c.shutdown()
		if c.running {
			t.Errorf("ticker running after shutdown")
		}
		c.now() // after shutdown: the system time, and no ticker
		if c.running {
			t.Errorf("ticker restarted after shutdown")
		}
	})
}
