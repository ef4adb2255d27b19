//go:build !race

package reliability

const raceDetector = false // see race_test.go
