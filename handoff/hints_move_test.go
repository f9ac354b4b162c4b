package handoff

import (
	"errors"
	"fmt"
	"testing"

	"github.com/quorumkv/quorumkv/version"
)

// Hints of an owner that left the ring are not waited for: each goes to
// every replica of its key, delivered to those that are up and kept here as
// a hint for those that are down, and the old hint is deleted.
// It runs on the fake store here and on the real one in
// hints_store_test.go.
func testHintRetarget(t *testing.T, st HintStore) {
	x := newMovingHarness(t, st, []string{"n3", "n4", "n5"}, nil)
	sets := x.storeHints("n2", 3)

	// n2 is a member and down: its hints wait.
	x.tick()
	x.noPass()
	if nm, total := x.h.Outstanding(x.isMember); nm != 0 || total != 3 {
		t.Fatalf("Outstanding = %d, %d; want 0, 3", nm, total)
	}

	x.leave("n2")
	if nm, total := x.h.Outstanding(x.isMember); nm != 3 || total != 3 {
		t.Fatalf("Outstanding after leave = %d, %d; want 3, 3", nm, total)
	}
	x.setAvailable("n3", true)
	x.setAvailable("n4", true) // n5 stays down
	x.tick()
	if r := x.waitPass("n2"); r.err != nil || r.progressed != 3 {
		t.Fatalf("pass = %+v, want 3 retargeted", r)
	}
	for k, set := range sets {
		for _, r := range []string{"n3", "n4"} {
			if got := x.replica(r, k); !got.Equal(set) {
				t.Errorf("%s's %s = %+v, want %+v", r, k, got, set)
			}
		}
		if n := x.deliveries("n2", k); n != 0 {
			t.Errorf("the old owner got %s %d times", k, n)
		}
	}
	if left := hintsOf(t, x.st, "n2"); len(left) != 0 {
		t.Fatalf("%d hints left for the old owner", len(left))
	}
	kept := hintsOf(t, x.st, "n5")
	if len(kept) != len(sets) {
		t.Fatalf("%d hints kept for the down replica n5, want %d", len(kept), len(sets))
	}
	for k, set := range sets {
		if !kept[k].Equal(set) {
			t.Errorf("n5's hint for %s = %+v, want %+v", k, kept[k], set)
		}
	}
	m := x.h.Metrics()
	if m.Retargeted != 3 || m.Delivered != 6 || m.Replayed != 0 || m.PendingHints != 3 {
		t.Fatalf("metrics: %+v", m)
	}
	if p := x.h.Pending()["n2"]; p.Retargeted != 3 || p.PendingHints != 0 {
		t.Fatalf("n2's figures: %+v", p)
	}
	if nm, total := x.h.Outstanding(x.isMember); nm != 0 || total != 3 {
		t.Fatalf("Outstanding = %d, %d; want 0, 3 (n5's)", nm, total)
	}

	// n5 comes back: the hints kept for it are ordinary ones.
	x.setAvailable("n5", true)
	x.tick()
	if r := x.waitPass("n5"); r.err != nil || r.progressed != 3 {
		t.Fatalf("n5's pass = %+v", r)
	}
	for k, set := range sets {
		if got := x.replica("n5", k); !got.Equal(set) {
			t.Errorf("n5's %s = %+v", k, got)
		}
	}
	if _, total := x.h.Outstanding(nil); total != 0 {
		t.Fatalf("%d hints left", total)
	}
}

func TestHintsRetargetNonMember(t *testing.T) {
	testHintRetarget(t, newHintFakeStore())
}

// A hint updated while it is retargeted is kept, with the newer write, and
// retargeted again; a failed delivery keeps the hint too.
func TestHintsRetargetKeepsConcurrentUpdate(t *testing.T) {
	x := newMovingHarness(t, nil, []string{"n3"}, nil)
	orig := x.storeHints("n2", 1)[hintKeyS(0)]
	newer := hintSet(t, "n4", "concurrent")
	merged := version.Sync(orig, newer)
	x.mu.Lock()
	x.onDeliver = func(owner string, k []byte, n int) error {
		switch n {
		case 1: // a late write for n2 lands during the retargeting
			// (in the store: Store refuses hints for a non-member now,
			// but one merged just before n2 left races the same way)
			if stored, err := x.st.AddHint("n2", k, newer, 0, 0); err != nil || !stored {
				return fmt.Errorf("store during delivery: %v %v", stored, err)
			}
		case 2:
			return errHintInjected
		}
		return nil
	}
	x.mu.Unlock()
	x.leave("n2")
	x.setAvailable("n3", true)
	x.tick()
	if r := x.waitPass("n2"); r.err != nil || r.progressed != 0 {
		t.Fatalf("pass = %+v, want nothing deleted", r)
	}
	if got := hintsOf(t, x.st, "n2")[hintKeyS(0)]; !got.Equal(merged) {
		t.Fatalf("hint = %+v, want the merged set", got)
	}
	if m := x.h.Metrics(); m.Superseded != 1 || m.Retargeted != 0 {
		t.Fatalf("metrics: %+v", m)
	}
	x.tick() // delivery 2 fails: kept
	if r := x.waitPass("n2"); !errors.Is(r.err, errHintInjected) {
		t.Fatalf("pass = %+v, want the injected failure", r)
	}
	if m := x.h.Metrics(); m.ReplayFailures != 1 || m.PendingHints != 1 {
		t.Fatalf("metrics: %+v", m)
	}
	x.tick()
	if r := x.waitPass("n2"); r.err != nil || r.progressed != 1 {
		t.Fatalf("pass = %+v", r)
	}
	if got := x.replica("n3", hintKeyS(0)); !got.Equal(merged) {
		t.Fatalf("n3 holds %+v, want %+v", got, merged)
	}
	if m := x.h.Metrics(); m.Retargeted != 1 || m.PendingHints != 0 {
		t.Fatalf("metrics: %+v", m)
	}
}

// A key whose only listed replica is the old owner has nowhere to go yet:
// the hint stays and the pass reports it.
func TestHintsRetargetWithoutReplicasKeeps(t *testing.T) {
	x := newMovingHarness(t, nil, []string{"n2"}, nil)
	x.storeHints("n2", 1)
	x.leave("n2")
	x.tick()
	if r := x.waitPass("n2"); !errors.Is(r.err, errNoReplicas) {
		t.Fatalf("pass = %+v, want errNoReplicas", r)
	}
	if left := hintsOf(t, x.st, "n2"); len(left) != 1 {
		t.Fatalf("%d hints left, want 1", len(left))
	}
}

// While a node evacuates, every hint leaves it: delivered to owners that
// are up, rehomed for owners that are down (and for the down replicas of
// retargeted hints), and deleted here.
func TestHintsEvacuate(t *testing.T) {
	x := newMovingHarness(t, nil, []string{"n5", "n6"}, func(c *HintConfig) { c.DeliverConcurrency = 1 })
	up := x.storeHints("n2", 2)
	down := x.storeHints("n3", 3)
	gone := x.storeHints("n4", 1)
	x.setAvailable("n2", true)
	x.setAvailable("n6", true)

	x.tick() // not evacuating: n2 is delivered, n3 waits
	if r := x.waitPass("n2"); r.err != nil || r.progressed != 2 {
		t.Fatalf("n2's pass = %+v", r)
	}
	x.noPass()
	for k, set := range up {
		if got := x.replica("n2", k); !got.Equal(set) {
			t.Errorf("n2's %s = %+v", k, got)
		}
	}

	x.leave("n4")
	x.mu.Lock()
	x.onRehome = func(owner string, k []byte) error {
		if owner == "n3" {
			return errHintInjected // the node n3's hints go to is down
		}
		return nil
	}
	x.mu.Unlock()
	x.h.Evacuate(true) // kicks a round
	x.waitRound()
	results := map[string]hintPassResult{}
	for len(results) < 2 {
		r := <-x.passes
		results[r.owner] = r
	}
	if r := results["n4"]; r.err != nil || r.progressed != 1 {
		t.Fatalf("n4's pass = %+v", r)
	}
	if r := results["n3"]; !errors.Is(r.err, errHintInjected) {
		t.Fatalf("n3's pass = %+v, want the injected failure", r)
	}
	if !x.h.Metrics().Evacuating {
		t.Fatal("metrics do not say evacuating")
	}
	x.mu.Lock()
	x.onRehome = nil
	x.mu.Unlock()
	x.tick()
	if r := x.waitPass("n3"); r.err != nil || r.progressed != 3 {
		t.Fatalf("n3's pass = %+v", r)
	}
	got := x.rehomedOf("n3")
	for k, set := range down {
		if !got[k].Equal(set) {
			t.Errorf("rehomed n3/%s = %+v, want %+v", k, got[k], set)
		}
	}
	for k, set := range gone {
		if r := x.replica("n6", k); !r.Equal(set) {
			t.Errorf("n6's %s = %+v", k, r)
		}
		if r := x.rehomedOf("n5")[k]; !r.Equal(set) {
			t.Errorf("rehomed n5/%s = %+v, want %+v", k, r, set)
		}
	}
	if nm, total := x.h.Outstanding(x.isMember); nm != 0 || total != 0 {
		t.Fatalf("Outstanding = %d, %d; want none", nm, total)
	}
	m := x.h.Metrics()
	if m.Rehomed != 3 || m.Retargeted != 1 || m.Replayed != 2 || m.ReplayFailures != 1 || m.PendingHints != 0 {
		t.Fatalf("metrics: %+v", m)
	}
}

// Without Rehome an evacuating node's hints for owners that are down wait
// for them, as usual; Evacuate(false) stops rehoming.
func TestHintsEvacuateWithoutRehome(t *testing.T) {
	x := newMovingHarness(t, nil, []string{"n5"}, func(c *HintConfig) { c.Rehome = nil })
	x.storeHints("n3", 2)
	x.h.Evacuate(true)
	x.waitRound()
	x.noPass()
	if _, total := x.h.Outstanding(nil); total != 2 {
		t.Fatalf("%d hints, want 2", total)
	}

	y := newMovingHarness(t, nil, []string{"n5"}, func(c *HintConfig) { c.DeliverConcurrency = 1 })
	y.storeHints("n3", 2)
	y.mu.Lock()
	y.onRehome = func(string, []byte) error { return errHintInjected }
	y.mu.Unlock()
	y.h.Evacuate(true)
	y.waitRound()
	if r := y.waitPass("n3"); !errors.Is(r.err, errHintInjected) {
		t.Fatalf("pass = %+v, want the injected failure", r)
	}
	y.h.Evacuate(false)
	y.tick()
	y.noPass()
	if m := y.h.Metrics(); m.Evacuating || m.Rehomed != 0 || m.ReplayFailures != 1 || m.PendingHints != 2 {
		t.Fatalf("metrics: %+v", m)
	}
}
