package handoff

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
	"pgregory.net/rapid"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

// testHintBudget fills one owner's budget: writes keep succeeding, the
// partitions of refused hints are prioritized, overflow is counted, and
// the owner's pending bytes never pass the budget.
func testHintBudget(t *testing.T, st HintStore) {
	const budget = 4000
	x := newHintHarness(t, st, func(c *HintConfig) { c.MaxHintBytesPerOwner = budget })
	var refused []int
	stored := 0
	for i := 0; i < 40; i++ {
		set := hintSet(t, "n1", strings.Repeat("v", 300))
		ok, err := x.h.Store("n2", 100+i, hintKey(i), set)
		if err != nil {
			t.Fatalf("Store %d: %v", i, err)
		}
		if ok {
			stored++
		} else {
			refused = append(refused, 100+i)
		}
		if b := st.HintBytes("n2"); b > budget {
			t.Fatalf("after %d stores: %d pending bytes > budget %d", i+1, b, budget)
		}
	}
	if stored == 0 || len(refused) == 0 {
		t.Fatalf("stored %d, refused %d: the budget should allow some and refuse some", stored, len(refused))
	}
	t.Logf("budget %d B: stored %d hints (%d B), refused %d", budget, stored, st.HintBytes("n2"), len(refused))
	x.mu.Lock()
	if fmt.Sprint(x.prioritized) != fmt.Sprint(refused) {
		t.Fatalf("prioritized %v, want %v", x.prioritized, refused)
	}
	x.mu.Unlock()
	m := x.h.Metrics()
	if m.Overflowed != uint64(len(refused)) || m.Stored != uint64(stored) || m.PendingHints != int64(stored) {
		t.Fatalf("metrics %+v, want %d overflowed, %d stored", m, len(refused), stored)
	}
	if p := x.h.Pending()["n2"]; p.Overflowed != uint64(len(refused)) || p.PendingBytes != st.HintBytes("n2") {
		t.Fatalf("pending[n2] = %+v", p)
	}

	// Merging into a hint already held is charged too.
	grow := hintSet(t, "n1", "x")
	for i := 0; i < 20; i++ {
		next := grow.Clone()
		if _, err := next.Update(version.Write{Node: fmt.Sprintf("w%d", i), Value: []byte(strings.Repeat("y", 200))}); err != nil {
			t.Fatal(err)
		}
		if _, err := x.h.Store("n2", 7, hintKey(0), next); err != nil {
			t.Fatal(err)
		}
		grow = next
		if b := st.HintBytes("n2"); b > budget {
			t.Fatalf("merge %d: %d pending bytes > budget %d", i, b, budget)
		}
	}

	// The budget is per owner.
	if ok, err := x.h.Store("n3", 1, hintKey(0), hintSet(t, "n1", "v")); !ok || err != nil {
		t.Fatalf("other owner refused: %v %v", ok, err)
	}

	// Replay frees the budget.
	x.setAvailable("n2", true)
	x.tick()
	if r := x.waitPass("n2"); r.err != nil {
		t.Fatal(r.err)
	}
	if ok, err := x.h.Store("n2", 1, hintKey(1000), hintSet(t, "n1", "v")); !ok || err != nil {
		t.Fatalf("after replay: %v %v", ok, err)
	}
}

func TestHintsBudgetOverflow(t *testing.T) {
	testHintBudget(t, newHintFakeStore())
}

// Concurrent Stores to one owner cannot overrun the budget together.
func TestHintsBudgetConcurrent(t *testing.T) {
	const budget, workers, each = 20000, 8, 50
	st := newHintFakeStore()
	x := newHintHarness(t, st, func(c *HintConfig) { c.MaxHintBytesPerOwner = budget })
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored, refused := 0, 0
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				set := hintSet(t, "n1", strings.Repeat("v", 100+i))
				ok, err := x.h.Store("n2", i, hintKey(w*1000+i), set)
				if err != nil {
					t.Error(err)
					return
				}
				if b := st.HintBytes("n2"); b > budget {
					t.Errorf("%d pending bytes > budget", b)
				}
				mu.Lock()
				if ok {
					stored++
				} else {
					refused++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if stored+refused != workers*each || refused == 0 {
		t.Fatalf("stored %d + refused %d != %d", stored, refused, workers*each)
	}
	m := x.h.Metrics()
	x.mu.Lock()
	defer x.mu.Unlock()
	if m.Overflowed != uint64(refused) || m.Stored != uint64(stored) || len(x.prioritized) != refused {
		t.Fatalf("metrics %+v, prioritized %d, refused %d", m, len(x.prioritized), refused)
	}
	t.Logf("stored %d (%d B of %d), refused %d", stored, st.HintBytes("n2"), budget, refused)
}

// Property: under any sequence of hint stores (new keys and merges, of any
// size), replays and deletes, no owner's pending bytes pass the budget,
// every refused hint prioritizes its partition, and no Store fails.
func TestHintsBudgetProperty(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) { hintBudgetProperty(rt, newHintFakeStore(), "") })
}

// hintBudgetProperty runs one check on st, with owners named after prefix
// so that checks sharing a store do not see each other's hints.
func hintBudgetProperty(rt *rapid.T, st HintStore, prefix string) {
	budget := rapid.Int64Range(200, 6000).Draw(rt, "budget")
	var prioritized []int
	cfg := DefaultConfig().Hints
	cfg.MaxHintBytesPerOwner = budget
	cfg.Available = func(string) bool { return false }
	cfg.Deliver = func(context.Context, string, []byte, version.Set) error { return nil }
	cfg.Prioritize = func(p int) { prioritized = append(prioritized, p) }
	h, err := NewHints(cfg, st, clock.NewFake(), zerolog.Nop())
	if err != nil {
		rt.Fatal(err)
	}
	defer h.Close()
	owners := []string{prefix + "a", prefix + "b"}
	sets := map[string]version.Set{}
	refused := 0
	for i, n := 0, rapid.IntRange(1, 60).Draw(rt, "ops"); i < n; i++ {
		owner := rapid.SampledFrom(owners).Draw(rt, "owner")
		key := hintKey(rapid.IntRange(0, 3).Draw(rt, "key"))
		if rapid.IntRange(0, 4).Draw(rt, "op") == 0 {
			// the owner acked this hint: delete it
			if cur, ok := hintsOf(rt, st, owner)[string(key)]; ok {
				if _, err := st.DeleteHint(owner, key, cur); err != nil {
					rt.Fatal(err)
				}
			}
			continue
		}
		set := sets[owner+string(key)]
		w := version.Write{
			Node:    rapid.SampledFrom([]string{"n1", "n2", "n3"}).Draw(rt, "node"),
			Value:   make([]byte, rapid.IntRange(0, 800).Draw(rt, "len")),
			Deleted: rapid.Bool().Draw(rt, "deleted"),
		}
		if rapid.Bool().Draw(rt, "withctx") {
			w.Context = set.Context
		}
		if _, err := set.Update(w); err != nil {
			rt.Fatal(err)
		}
		sets[owner+string(key)] = set
		before := len(prioritized)
		ok, err := h.Store(owner, i, key, set)
		if err != nil {
			rt.Fatalf("Store failed: %v", err)
		}
		if !ok {
			refused++
			if len(prioritized) != before+1 || prioritized[before] != i {
				rt.Fatalf("refused hint %d not prioritized: %v", i, prioritized)
			}
		} else if len(prioritized) != before {
			rt.Fatal("stored hint prioritized")
		}
		for _, o := range owners {
			if b := st.HintBytes(o); b > budget {
				rt.Fatalf("owner %s: %d pending bytes > budget %d", o, b, budget)
			}
		}
	}
	if m := h.Metrics(); m.Overflowed != uint64(refused) {
		rt.Fatalf("overflowed %d, refused %d", m.Overflowed, refused)
	}
}

// Property: hintSize bounds what a hint adds to the store's pending bytes,
// both for a new hint and for one merged into an existing hint.
func TestHintSizeBoundsGrowth(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) { hintSizeProperty(rt, newHintFakeStore(), "o") })
}

// hintSizeProperty runs one check on st with a fresh owner named after
// prefix.
func hintSizeProperty(rt *rapid.T, st HintStore, prefix string) {
	var a, b version.Set
	for i, n := 0, rapid.IntRange(1, 8).Draw(rt, "writes"); i < n; i++ {
		target := &a
		if i > 0 && rapid.Bool().Draw(rt, "which") {
			target = &b
		}
		w := version.Write{
			Node:        rapid.StringMatching(`[a-z]{1,20}`).Draw(rt, "node"),
			Value:       make([]byte, rapid.IntRange(0, 70000).Draw(rt, "len")),
			ContentType: rapid.StringMatching(`[a-z/]{0,40}`).Draw(rt, "ct"),
			WriteTime:   rapid.Int64().Draw(rt, "wt"),
			Deleted:     rapid.Bool().Draw(rt, "del"),
		}
		if rapid.Bool().Draw(rt, "ctx") {
			w.Context = a.Context
		}
		if rapid.Bool().Draw(rt, "cloud") {
			w.Context.Add(version.Dot{Node: "cloud", Counter: rapid.Uint64Range(2, 1<<40).Draw(rt, "c")})
		}
		if _, err := target.Update(w); err != nil {
			rt.Fatal(err)
		}
	}
	owner := prefix + rapid.StringMatching(`[a-z0-9]{1,30}`).Draw(rt, "owner")
	k := store.EncodeKey([]byte(rapid.String().Draw(rt, "bucket")), []byte(rapid.String().Draw(rt, "k")))
	if _, err := st.AddHint(owner, k, a, 0, 0); err != nil {
		rt.Fatal(err)
	}
	if got, bound := st.HintBytes(owner), hintSize(owner, k, a); got > bound {
		rt.Fatalf("new hint: %d bytes > bound %d", got, bound)
	}
	old := st.HintBytes(owner)
	if _, err := st.AddHint(owner, k, b, 0, 0); err != nil {
		rt.Fatal(err)
	}
	if grew, bound := st.HintBytes(owner)-old, hintSize(owner, k, b); grew > bound {
		rt.Fatalf("merge grew %d bytes > bound %d", grew, bound)
	}
}

// testTombstoneReplacesHintWhenFull: with the owner's budget full, a
// tombstone for a key whose live value a hint holds still replaces it, so
// the superseded value is never handed off (possibly after the primaries
// reaped the key). A hint for a new key is still refused.
func testTombstoneReplacesHintWhenFull(t *testing.T, st HintStore) {
	live := hintSet(t, "n1", strings.Repeat("v", 1500))
	if ok, err := st.AddHint("n2", hintKey(0), live, 0, 0); !ok || err != nil {
		t.Fatalf("first hint: %v %v", ok, err)
	}
	// The budget is full to within a few bytes: not even a tombstone fits
	// next to the live value.
	x := newHintHarness(t, st, func(c *HintConfig) { c.MaxHintBytesPerOwner = st.HintBytes("n2") + 5 })
	if ok, err := x.h.Store("n2", 1, hintKey(1), hintSet(t, "n1", "")); ok || err != nil {
		t.Fatalf("another key over the budget: stored=%v %v", ok, err)
	}
	dead := live.Clone()
	if _, err := dead.Update(version.Write{Node: "n1", Context: live.Context, Deleted: true}); err != nil {
		t.Fatal(err)
	}
	if ok, err := x.h.Store("n2", 1, hintKey(0), dead); !ok || err != nil {
		t.Fatalf("tombstone over a full budget: stored=%v %v", ok, err)
	}
	got, err := st.Hint("n2", hintKey(0))
	if err != nil || !got.Deleted() {
		t.Fatalf("hint after the delete = %v %v; want the tombstone alone", got.Dots(), err)
	}
}

func TestHintsTombstoneReplacesHintWhenFull(t *testing.T) {
	testTombstoneReplacesHintWhenFull(t, newHintFakeStore())
}
