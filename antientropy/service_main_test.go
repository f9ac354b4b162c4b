package antientropy

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind. It is the
// package's only TestMain.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
