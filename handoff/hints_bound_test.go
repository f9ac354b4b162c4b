package handoff

import (
	"os"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestHintsDefaultBound measures the replay part of the handoff time
// bound with the default config: it fills one owner's default 64 MiB budget
// with 1 KiB hints in the real store and replays them on the fake clock.
// It takes a few seconds of wall time, so it runs only with
// QKV_HANDOFF_BOUND=1.
func TestHintsDefaultBound(t *testing.T) {
	if os.Getenv("QKV_HANDOFF_BOUND") == "" {
		t.Skip("set QKV_HANDOFF_BOUND=1 to measure the default replay time")
	}
	st := openHintStore(t, vfs.NewMem())
	def := DefaultConfig().Hints
	x := newHintHarness(t, st, func(c *HintConfig) {
		c.HintsPerSecond, c.BytesPerSecond = def.HintsPerSecond, def.BytesPerSecond
	})
	value := make([]byte, 1024)
	var stored, bytes int64
	for i := 0; ; i++ {
		set := hintSet(t, "n1", string(value))
		k := hintKey(i)
		ok, err := x.h.Store("n2", i, k, set)
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		stored++
		bytes += hintSize("n2", k, set)
	}
	pending := st.HintBytes("n2")
	if pending > def.MaxHintBytesPerOwner {
		t.Fatalf("%d pending bytes > budget", pending)
	}
	wantH := time.Duration(float64(stored-int64(def.hintBurst())) / def.HintsPerSecond * float64(time.Second))
	wantB := time.Duration(float64(bytes-int64(def.byteBurst())) / def.BytesPerSecond * float64(time.Second))
	x.setAvailable("n2", true)
	start := x.clk.Now()
	x.h.Kick()
	elapsed := x.drivePasses(start, "n2")
	t.Logf("budget %d MiB: %d hints of 1 KiB, %d B in the store, %d B charged to the byte limit; replay took %v of fake time (hint limit alone %v, byte limit alone %v)",
		def.MaxHintBytesPerOwner>>20, stored, pending, bytes, elapsed, wantH, wantB)
	if elapsed < max(wantH, wantB) {
		t.Fatalf("replay faster than the limits allow")
	}
	if n := x.totalDeliveries(); int64(n) != stored {
		t.Fatalf("%d delivered, %d stored", n, stored)
	}
}
