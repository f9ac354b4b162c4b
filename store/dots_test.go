package store

import (
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/quorumkv/quorumkv/internal/clock"
)

// NextCounter never repeats a counter: not within a run, not after a
// clean restart, not after a crash that loses every unsynced write, and
// not when the clock goes back in between.
func TestNextCounterNeverRepeats(t *testing.T) {
	fs := vfs.NewCrashableMem()
	clk := clock.NewFake()
	clk.Set(clock.Epoch.Add(10 * time.Hour))
	open := func(fs vfs.FS) *Store {
		return openTest(t, fs, func(c *Config) { c.Clock = clk })
	}
	s := open(fs)
	first, err := s.NextCounter()
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(clk.Now().UnixMicro()); first != want {
		t.Fatalf("first counter %d, want the clock in microseconds %d", first, want)
	}
	seen := map[uint64]bool{first: true}
	issue := func(s *Store, n int) {
		t.Helper()
		var last uint64
		for range n {
			c, err := s.NextCounter()
			if err != nil {
				t.Fatal(err)
			}
			if seen[c] || c <= last {
				t.Fatalf("counter %d repeated or not increasing after %d", c, last)
			}
			seen[c], last = true, c
		}
	}
	issue(s, 1000)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	// A restart with the clock an hour back.
	clk2 := clock.NewFake() // at Epoch: 10 h before the first run
	s = openTest(t, fs, func(c *Config) { c.Clock = clk2 })
	issue(s, 1000)
	// A crash: only what was synced survives.
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	_ = s.Close()
	s = openTest(t, crashed, func(c *Config) { c.Clock = clk2 })
	issue(s, 1000)
}

// An acknowledged write survives a crash soon after the store was first
// created in a nested directory: the path's directory entries are synced
// too, not only the store's own directory.
func TestFirstStartSurvivesCrash(t *testing.T) {
	fs := vfs.NewCrashableMem()
	s := openTest(t, fs, func(c *Config) { c.Dir = "/data/n1/store" })
	k := tk("k")
	if _, _, err := s.Update(k, write("n1", "v")); err != nil {
		t.Fatal(err)
	}
	crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
	_ = s.Close()
	s = openTest(t, crashed, func(c *Config) { c.Dir = "/data/n1/store" })
	if got, err := s.Get(k); err != nil || len(got.Siblings) != 1 {
		t.Fatalf("after a crash: %+v %v; the acknowledged write is lost", got, err)
	}
}
