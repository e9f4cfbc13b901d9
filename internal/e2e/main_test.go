package e2e

import (
	"testing"

	"github.com/pondsocket/pondsocket/internal/testenv"
)

// TestMain removes the programs testenv.Build compiled for this run.
func TestMain(m *testing.M) { testenv.Main(m) }
