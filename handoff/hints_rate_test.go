package handoff

import (
	"fmt"
	"testing"
	"time"
)

// Replay honours the rate limit in fake time: H hints at R hints/s with a
// burst of b take at least (H-b)/R, and not much longer.
func TestHintsRateLimit(t *testing.T) {
	const value = 1000 // bytes per hint value
	tests := []struct {
		name    string
		hints   int // per owner
		owners  []string
		cfg     func(*HintConfig)
		atLeast time.Duration
	}{
		{
			name:   "hints per second",
			hints:  60,
			owners: []string{"n2"},
			cfg: func(c *HintConfig) {
				c.HintsPerSecond, c.HintBurst = 20, 1
			},
			atLeast: time.Duration(float64(60-1) / 20 * float64(time.Second)),
		},
		{
			name:   "hints per second, concurrent owners share the rate",
			hints:  30,
			owners: []string{"n2", "n3"},
			cfg: func(c *HintConfig) {
				c.HintsPerSecond, c.HintBurst = 20, 1
			},
			atLeast: time.Duration(float64(60-1) / 20 * float64(time.Second)),
		},
		{
			name:   "bytes per second",
			hints:  30,
			owners: []string{"n2"},
			cfg: func(c *HintConfig) {
				c.BytesPerSecond, c.ByteBurst = 10*value, 2*value
			},
			// every hint costs at least its value's bytes
			atLeast: time.Duration(float64(30*value-2*value) / (10 * value) * float64(time.Second)),
		},
		{
			name:   "serial delivery",
			hints:  25,
			owners: []string{"n2"},
			cfg: func(c *HintConfig) {
				c.HintsPerSecond, c.HintBurst, c.DeliverConcurrency, c.BatchSize = 50, 5, 1, 7
			},
			atLeast: time.Duration(float64(25-5) / 50 * float64(time.Second)),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := newHintHarness(t, nil, tt.cfg)
			owners := tt.owners
			total := 0
			for _, o := range owners {
				for i := 0; i < tt.hints; i++ {
					set := hintSet(t, "n1", fmt.Sprintf("%0*d", value, i))
					if ok, err := x.h.Store(o, i, hintKey(i), set); !ok || err != nil {
						t.Fatal(ok, err)
					}
					total++
				}
				x.setAvailable(o, true)
			}
			start := x.clk.Now()
			x.h.Kick()
			elapsed := x.drivePasses(start, owners...)
			if n := x.totalDeliveries(); n != total {
				t.Fatalf("%d deliveries, want %d", n, total)
			}
			t.Logf("%d hints in %v of fake time (lower bound %v)", total, elapsed, tt.atLeast)
			if elapsed < tt.atLeast {
				t.Fatalf("replay took %v, faster than the limit allows (%v)", elapsed, tt.atLeast)
			}
			// The limiter waits exactly for the tokens; allow the byte
			// estimate's overhead on top.
			if limit := tt.atLeast*13/10 + 10*time.Millisecond; elapsed > limit {
				t.Fatalf("replay took %v, more than %v", elapsed, limit)
			}
		})
	}
}
