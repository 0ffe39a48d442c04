//go:build !race

package udp

// raceEnabled is true when the race detector is on.
const raceEnabled = false
