package pondsocket

import (
	"errors"
	"strconv"
)

// ErrHandlersAbandoned is what errors.Is finds in the error of a shutdown
// that gave up on handlers still running at its deadline.
var ErrHandlersAbandoned = errors.New("handlers still running at the shutdown deadline were abandoned")

// AbandonedError is the error of a shutdown that abandoned Count running
// handlers (their contexts were cancelled; their goroutines leave when they
// return).
type AbandonedError struct {
	Count int
}

func (e *AbandonedError) Error() string {
	return strconv.Itoa(e.Count) + " handler(s) still running at the shutdown deadline were abandoned"
}

// Is makes errors.Is(err, ErrHandlersAbandoned) hold.
func (e *AbandonedError) Is(target error) bool { return target == ErrHandlersAbandoned }
