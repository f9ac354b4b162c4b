package handoff

import (
	"errors"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/quorumkv/quorumkv/version"
)

// Store refuses a hint for an owner that is not a member with a
// RefusedError (ErrNotMember), keeps nothing for it, and counts it in the
// totals only: invented owners leave no per-owner figures behind.
func TestStoreRefusesNonMember(t *testing.T) {
	x := newMovingHarness(t, nil, []string{"n3"}, nil)
	x.leave("ghost")
	for i := range 100 {
		owner := "ghost"
		if i%2 == 1 {
			owner = fmt.Sprintf("invented-%d", i) // the harness counts these as members ...
			x.leave(owner)                        // ... unless they left
		}
		stored, err := x.h.Store(owner, 0, hintKey(i), hintSet(t, "n1", "v"))
		var re *RefusedError
		if stored || !errors.As(err, &re) || !errors.Is(err, ErrNotMember) || !re.HintRefused() {
			t.Fatalf("hint %d for non-member %s: %v %v", i, owner, stored, err)
		}
	}
	if owners := x.st.HintOwners(); len(owners) != 0 {
		t.Fatalf("hints kept for %v", owners)
	}
	if m := x.h.Metrics(); m.RefusedNotMember != 100 || m.Stored != 0 || m.Overflowed != 0 {
		t.Fatalf("metrics: %+v", m)
	}
	if p := x.h.Pending(); len(p) != 0 {
		t.Fatalf("per-owner figures for non-members: %v", p)
	}
	// A member's hint is kept as before.
	if stored, err := x.h.Store("n2", 0, hintKey(0), hintSet(t, "n1", "v")); err != nil || !stored {
		t.Fatalf("member's hint: %v %v", stored, err)
	}
}

// Past MaxHintBytesTotal, Store refuses every owner's hints with a
// RefusedError (ErrHolderFull) and prioritizes their partitions, even
// though each owner is within its own budget; the store's hint bytes stay
// under the total.
func testHolderBudget(t *testing.T, st HintStore) {
	const total = 8 << 10
	x := newHintHarness(t, st, func(c *HintConfig) {
		c.MaxHintBytesPerOwner = 1 << 20
		c.MaxHintBytesTotal = total
	})
	var stored, refused int
	for i := range 64 {
		owner := fmt.Sprintf("n%d", 2+i%4)
		ok, err := x.h.Store(owner, i, hintKey(i), hintSet(t, "n1", string(make([]byte, 500))))
		switch {
		case ok && err == nil:
			stored++
		case !ok && errors.Is(err, ErrHolderFull):
			refused++
		default:
			t.Fatalf("hint %d: %v %v", i, ok, err)
		}
	}
	var sum int64
	for _, o := range x.st.HintOwners() {
		sum += x.st.HintBytes(o)
	}
	m := x.h.Metrics()
	if stored == 0 || refused == 0 || m.RefusedFull != uint64(refused) || m.PendingBytes != sum || sum > total {
		t.Fatalf("%d stored, %d refused, %d hint bytes (total %d); metrics %+v", stored, refused, sum, total, m)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.prioritized) != refused {
		t.Fatalf("%d partitions prioritized, want %d", len(x.prioritized), refused)
	}
}

func TestHolderBudgetFake(t *testing.T) { testHolderBudget(t, newHintFakeStore()) }

func TestHolderBudgetStore(t *testing.T) { testHolderBudget(t, openHintStore(t, vfs.NewMem())) }

// A delivery the owner refuses as too large (version.ErrTooLarge), or as
// an implausible version (version.ErrImplausible: a hint stored before
// receivers checked), keeps the hint without failing the pass: the
// owner's other hints are replayed.
func TestReplayKeepsRefusedHint(t *testing.T) {
	for _, tc := range []struct {
		refusal error
		counted func(HintMetrics) uint64
	}{
		{version.ErrTooLarge, func(m HintMetrics) uint64 { return m.DeliveriesTooLarge }},
		{version.ErrImplausible, func(m HintMetrics) uint64 { return m.DeliveriesImplausible }},
	} {
		t.Run(tc.refusal.Error(), func(t *testing.T) {
			x := newHintHarness(t, nil, nil)
			x.storeHints("n2", 3)
			stuck := hintKeyS(1)
			x.mu.Lock()
			x.onDeliver = func(_ string, k []byte, _ int) error {
				if string(k) == stuck {
					return fmt.Errorf("merge: %w", tc.refusal)
				}
				return nil
			}
			x.mu.Unlock()
			x.setAvailable("n2", true)
			x.tick()
			if r := x.waitPass("n2"); r.err != nil || r.progressed != 2 {
				t.Fatalf("pass = %+v, want the two other hints replayed", r)
			}
			left := hintsOf(t, x.st, "n2")
			if _, ok := left[stuck]; !ok || len(left) != 1 {
				t.Fatalf("hints left: %d, want the refused one", len(left))
			}
			// (the pass reads a second batch after the first made
			// progress, so the stuck hint is tried again once before the
			// pass ends)
			if m := x.h.Metrics(); tc.counted(m) < 1 || m.ReplayFailures != 0 || m.Replayed != 2 {
				t.Fatalf("metrics: %+v", m)
			}
		})
	}
}
