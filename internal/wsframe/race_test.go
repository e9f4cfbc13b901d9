//go:build race

package wsframe

// raceEnabled: sync.Pool drops items at random under the race detector,
// so pooled allocations cannot be asserted.
const raceEnabled = true
