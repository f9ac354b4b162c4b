package handoff

import (
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"
	"pgregory.net/rapid"

	"github.com/quorumkv/quorumkv/store"
)

// The scenarios of handoff_test.go and handoff_budget_test.go again, on the
// real store (pebble on an in-memory filesystem).

var (
	_ HintStore   = (*store.Store)(nil)
	_ HintCounter = (*store.Store)(nil) // hint metrics without a scan
)

// openHintStore opens a store on fs and closes it at the end of the test.
func openHintStore(t testing.TB, fs vfs.FS) *store.Store {
	t.Helper()
	cfg := store.DefaultConfig()
	cfg.Dir = "/db"
	cfg.FS = fs
	cfg.CacheSize = 1 << 20
	cfg.MemTableSize = 1 << 20
	st, err := store.Open(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return st
}

func TestHintsStoreReplay(t *testing.T) {
	testHintReplay(t, openHintStore(t, vfs.NewMem()))
}

func TestHintsStoreSecondReplayHarmless(t *testing.T) {
	testHintDoubleReplayHarmless(t, &hintFaulty{HintStore: openHintStore(t, vfs.NewMem())})
}

func TestHintsStoreHintUpdatedDuringReplay(t *testing.T) {
	testHintUpdatedDuringReplay(t, openHintStore(t, vfs.NewMem()))
}

func TestHintsStoreBudget(t *testing.T) {
	testHintBudget(t, openHintStore(t, vfs.NewMem()))
}

// Hints survive a restart of the node: the store is closed and reopened
// from the same filesystem, and a new Hints delivers them.
func TestHintsStoreHintsSurviveRestart(t *testing.T) {
	fs := vfs.NewMem()
	var cur *store.Store
	testHintsSurviveRestart(t, func() HintStore {
		if cur != nil {
			if err := cur.Close(); err != nil {
				t.Fatal(err)
			}
		}
		cur = openHintStore(t, fs) // its cleanup's second Close is a no-op
		return cur
	})
}

// The byte budget holds against the store's own accounting.
func TestHintsStoreBudgetProperty(t *testing.T) {
	st := openHintStore(t, vfs.NewMem())
	check := 0
	rapid.Check(t, func(rt *rapid.T) {
		check++
		hintBudgetProperty(rt, st, fmt.Sprintf("c%d-", check))
	})
}

// hintSize bounds the store's real growth, for new and merged hints.
func TestHintSizeBoundsStoreGrowth(t *testing.T) {
	st := openHintStore(t, vfs.NewMem())
	check := 0
	rapid.Check(t, func(rt *rapid.T) {
		check++
		hintSizeProperty(rt, st, fmt.Sprintf("c%d-", check))
	})
}

func TestHintsStoreTombstoneReplacesHintWhenFull(t *testing.T) {
	testTombstoneReplacesHintWhenFull(t, openHintStore(t, vfs.NewMem()))
}

func TestHintsStoreRetarget(t *testing.T) {
	testHintRetarget(t, openHintStore(t, vfs.NewMem()))
}
