//go:build race

package device

// raceEnabled is true when the race detector is on.
const raceEnabled = true
