//go:build !race

package quictun

// raceEnabled is true when the race detector is on.
const raceEnabled = false
