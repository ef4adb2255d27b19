//go:build race

package reliability

// raceDetector: the race detector slows the suite five to ten times; under it the suite
// runs its reduced sizes, which find races as well, and the stress command (CI runs it
// without the detector) the full ones.
const raceDetector = true
