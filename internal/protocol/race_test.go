//go:build race

package protocol

// raceEnabled: sync.Pool drops items at random under the race detector,
// so pooled allocations cannot be asserted.
const raceEnabled = true
