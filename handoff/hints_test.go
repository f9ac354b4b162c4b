package handoff

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/version"
)

// testHintReplay is the main scenario, run on the fake store here and on
// the real store in handoff_store_test.go.
func testHintReplay(t *testing.T, st HintStore) {
	x := newHintHarness(t, st, nil)
	down := x.storeHints("n2", 5)
	other := x.storeHints("n3", 2)

	// While n2 is suspected nothing is delivered.
	x.tick()
	x.tick()
	x.noPass()
	if n := x.totalDeliveries(); n != 0 {
		t.Fatalf("%d deliveries while every owner is down", n)
	}
	if m := x.h.Metrics(); m.PendingHints != 7 || m.PendingBytes != st.HintBytes("n2")+st.HintBytes("n3") || m.Stored != 7 {
		t.Fatalf("metrics before replay: %+v", m)
	}

	// n2 is trusted again: the next round replays all of its hints once.
	x.setAvailable("n2", true)
	x.tick()
	if r := x.waitPass("n2"); r.err != nil || r.progressed != 5 {
		t.Fatalf("pass = %+v, want 5 replayed", r)
	}
	for k, set := range down {
		if n := x.deliveries("n2", k); n != 1 {
			t.Errorf("%s delivered %d times, want 1", k, n)
		}
		if got := x.replica("n2", k); !got.Equal(set) {
			t.Errorf("owner's %s = %+v, want %+v", k, got, set)
		}
	}
	if left := hintsOf(t, st, "n2"); len(left) != 0 || st.HintBytes("n2") != 0 {
		t.Fatalf("after replay: %d hints, %d bytes left", len(left), st.HintBytes("n2"))
	}
	m := x.h.Metrics()
	if m.Replayed != 5 || m.Delivered != 5 || m.ReplayFailures != 0 || m.PendingHints != 2 ||
		m.PendingBytes != st.HintBytes("n3") {
		t.Fatalf("metrics after replay: %+v", m)
	}
	p := x.h.Pending()
	if p["n2"].PendingHints != 0 || p["n2"].Replayed != 5 || p["n2"].Stored != 5 ||
		p["n3"].PendingHints != 2 || p["n3"].PendingBytes != st.HintBytes("n3") || p["n3"].Replayed != 0 {
		t.Fatalf("pending = %+v", p)
	}

	// Nothing left for n2: later rounds deliver nothing more, and n3's
	// hints stay while it is down.
	x.tick()
	x.noPass()
	if n := x.totalDeliveries(); n != 5 {
		t.Fatalf("%d deliveries after an empty round, want 5", n)
	}
	if left := hintsOf(t, st, "n3"); len(left) != len(other) {
		t.Fatalf("n3 holds %d hints, want %d", len(left), len(other))
	}
}

func TestHintsReplaysWhenOwnerTrusted(t *testing.T) {
	testHintReplay(t, newHintFakeStore())
}

// A hint whose delete fails after delivery is delivered again; the second
// delivery leaves the owner's state unchanged.
func testHintDoubleReplayHarmless(t *testing.T, st *hintFaulty) {
	x := newHintHarness(t, st, func(c *HintConfig) { c.DeliverConcurrency = 1 })
	sets := x.storeHints("n2", 3)
	first := firstHintKey(t, st, "n2") // replay goes in store order
	st.failDelete.Store(true)
	x.setAvailable("n2", true)
	x.tick()
	if r := x.waitPass("n2"); r.err == nil || r.progressed != 0 {
		t.Fatalf("pass = %+v, want a delete failure", r)
	}
	if m := x.h.Metrics(); m.ReplayFailures != 1 || m.Delivered != 1 || m.Replayed != 0 || m.PendingHints != 3 {
		t.Fatalf("metrics after failed delete: %+v", m)
	}
	once := x.replica("n2", first)
	if !once.Equal(sets[first]) {
		t.Fatalf("owner's %s after one delivery = %+v", first, once)
	}
	st.failDelete.Store(false)
	x.tick()
	if r := x.waitPass("n2"); r.err != nil || r.progressed != 3 {
		t.Fatalf("second pass = %+v", r)
	}
	for k, set := range sets {
		want := 1
		if k == first {
			want = 2
		}
		if n := x.deliveries("n2", k); n != want {
			t.Errorf("%s delivered %d times, want %d", k, n, want)
		}
		if got := x.replica("n2", k); !got.Equal(set) {
			t.Errorf("owner's %s = %+v, want %+v", k, got, set)
		}
	}
	if got := x.replica("n2", first); !got.Equal(once) {
		t.Errorf("second replay changed the owner's %s: %+v, was %+v", first, got, once)
	}
	if left := hintsOf(t, st, "n2"); len(left) != 0 {
		t.Fatalf("%d hints left", len(left))
	}
	if m := x.h.Metrics(); m.Delivered != 4 || m.Replayed != 3 {
		t.Fatalf("metrics: %+v", m)
	}
}

// firstHintKey returns the first key ScanHints yields for owner.
func firstHintKey(t *testing.T, st HintStore, owner string) string {
	t.Helper()
	var first string
	stop := errors.New("stop")
	if err := st.ScanHints(owner, func(k []byte, _ version.Set) error {
		first = string(k)
		return stop
	}); !errors.Is(err, stop) {
		t.Fatalf("scan: %v", err)
	}
	return first
}

func TestHintsSecondReplayHarmless(t *testing.T) {
	testHintDoubleReplayHarmless(t, &hintFaulty{HintStore: newHintFakeStore()})
}

// A hint merged with a newer write while it is being delivered is not
// deleted; the next round delivers the merged hint.
func testHintUpdatedDuringReplay(t *testing.T, st HintStore) {
	x := newHintHarness(t, st, nil)
	orig := x.storeHints("n2", 1)[hintKeyS(0)]
	newer := hintSet(t, "n4", "concurrent") // a concurrent write: a sibling
	merged := version.Sync(orig, newer)
	x.mu.Lock()
	x.onDeliver = func(owner string, k []byte, n int) error {
		switch n {
		case 1: // a newer write lands in the hint during delivery
			stored, err := x.h.Store(owner, 0, k, newer)
			if err != nil || !stored {
				return fmt.Errorf("store during delivery: %v %v", stored, err)
			}
		case 2:
			return errHintInjected // keep the hint around to inspect it
		}
		return nil
	}
	x.mu.Unlock()
	x.setAvailable("n2", true)
	x.tick()
	if r := x.waitPass("n2"); r.err != nil || r.progressed != 0 {
		t.Fatalf("pass = %+v, want nothing deleted", r)
	}
	if got, ok := hintsOf(t, st, "n2")[hintKeyS(0)]; !ok || !got.Equal(merged) {
		t.Fatalf("hint after replay = %+v (present %v), want the merged set", got, ok)
	}
	if m := x.h.Metrics(); m.Superseded != 1 || m.Replayed != 0 || m.Delivered != 1 {
		t.Fatalf("metrics: %+v", m)
	}
	x.tick() // delivery 2 fails: still kept
	if r := x.waitPass("n2"); r.err == nil {
		t.Fatalf("pass = %+v, want the injected failure", r)
	}
	if got, ok := hintsOf(t, st, "n2")[hintKeyS(0)]; !ok || !got.Equal(merged) {
		t.Fatalf("hint after failed delivery = %+v (present %v)", got, ok)
	}
	x.tick() // delivery 3 succeeds
	if r := x.waitPass("n2"); r.err != nil || r.progressed != 1 {
		t.Fatalf("pass = %+v", r)
	}
	if got := x.replica("n2", hintKeyS(0)); !got.Equal(merged) || len(got.Siblings) != 2 {
		t.Fatalf("owner holds %+v, want the merged set %+v", got, merged)
	}
	if left := hintsOf(t, st, "n2"); len(left) != 0 {
		t.Fatalf("%d hints left", len(left))
	}
}

func TestHintsHintUpdatedDuringReplayIsKept(t *testing.T) {
	testHintUpdatedDuringReplay(t, newHintFakeStore())
}

func TestHintsDeliveryFailureRetries(t *testing.T) {
	x := newHintHarness(t, nil, func(c *HintConfig) { c.DeliverConcurrency = 1 })
	sets := x.storeHints("n2", 4)
	x.mu.Lock()
	x.onDeliver = func(owner string, k []byte, n int) error {
		if string(k) == hintKeyS(2) && n <= 2 {
			return errHintInjected // the owner went away again
		}
		return nil
	}
	x.mu.Unlock()
	x.setAvailable("n2", true)
	for attempt := 1; attempt <= 2; attempt++ {
		x.tick()
		r := x.waitPass("n2")
		if !errors.Is(r.err, errHintInjected) {
			t.Fatalf("attempt %d: pass = %+v, want the injected failure", attempt, r)
		}
		left := hintsOf(t, x.st, "n2")
		if _, ok := left[hintKeyS(2)]; !ok {
			t.Fatalf("attempt %d: failed hint was deleted", attempt)
		}
		if m := x.h.Metrics(); m.ReplayFailures != uint64(attempt) {
			t.Fatalf("attempt %d: failures = %d", attempt, m.ReplayFailures)
		}
	}
	if n := x.deliveries("n2", hintKeyS(2)); n != 0 {
		t.Fatalf("k002 delivered %d times during the failures", n)
	}
	x.tick()
	if r := x.waitPass("n2"); r.err != nil {
		t.Fatalf("pass = %+v", r)
	}
	for k, set := range sets {
		if got := x.replica("n2", k); !got.Equal(set) {
			t.Errorf("owner's %s = %+v", k, got)
		}
	}
	if left := hintsOf(t, x.st, "n2"); len(left) != 0 {
		t.Fatalf("%d hints left", len(left))
	}
	if m := x.h.Metrics(); m.Replayed != 4 || m.ReplayFailures != 2 || m.PendingHints != 0 {
		t.Fatalf("metrics: %+v", m)
	}
}

// An owner suspected again mid-replay is left alone after the current
// batch.
func TestHintsStopsWhenOwnerSuspectedAgain(t *testing.T) {
	x := newHintHarness(t, nil, func(c *HintConfig) { c.BatchSize = 2; c.DeliverConcurrency = 1 })
	x.storeHints("n2", 6)
	x.mu.Lock()
	x.onDeliver = func(owner string, k []byte, n int) error {
		if string(k) == hintKeyS(1) {
			x.setAvailable(owner, false) // suspected again mid-batch
		}
		return nil
	}
	x.mu.Unlock()
	x.setAvailable("n2", true)
	x.tick()
	if r := x.waitPass("n2"); r.err != nil || r.progressed != 2 {
		t.Fatalf("pass = %+v, want the first batch of 2 only", r)
	}
	if left := hintsOf(t, x.st, "n2"); len(left) != 4 {
		t.Fatalf("%d hints left, want 4", len(left))
	}
	x.tick()
	x.noPass()
	x.mu.Lock()
	x.onDeliver = nil
	x.mu.Unlock()
	x.setAvailable("n2", true)
	x.h.Kick() // e.g. the detector trusts n2 again: no need to wait a tick
	x.waitRound()
	if r := x.waitPass("n2"); r.err != nil || r.progressed != 4 {
		t.Fatalf("pass after kick = %+v", r)
	}
	if x.clk.Now() != clock.Epoch.Add(2*x.cfg.Interval) {
		t.Fatalf("kick moved fake time")
	}
}

func testHintsSurviveRestart(t *testing.T, reopen func() HintStore) {
	st := reopen()
	x := newHintHarness(t, st, nil)
	sets := x.storeHints("n2", 3)
	x.tick()
	if err := x.h.Close(); err != nil {
		t.Fatal(err)
	}
	if stored, err := x.h.Store("n2", 0, hintKey(999), hintSet(t, "n1", "x")); !errors.Is(err, ErrClosed) || stored {
		t.Fatalf("Store after Close = %v, %v", stored, err)
	}

	st = reopen()
	y := newHintHarness(t, st, nil)
	if m := y.h.Metrics(); m.PendingHints != 3 || m.PendingBytes == 0 || m.Stored != 0 {
		t.Fatalf("metrics after restart: %+v", m)
	}
	y.setAvailable("n2", true)
	y.tick()
	if r := y.waitPass("n2"); r.err != nil || r.progressed != 3 {
		t.Fatalf("pass = %+v", r)
	}
	for k, set := range sets {
		if got := y.replica("n2", k); !got.Equal(set) {
			t.Errorf("owner's %s = %+v, want %+v", k, got, set)
		}
	}
	if left := hintsOf(t, st, "n2"); len(left) != 0 {
		t.Fatalf("%d hints left", len(left))
	}
}

func TestHintsHintsSurviveRestart(t *testing.T) {
	st := newHintFakeStore() // the fake's state outlives the Hints, like a disk
	testHintsSurviveRestart(t, func() HintStore { return st })
}

// Replay is bounded: at most MaxConcurrentOwners owners at once, never two
// passes for one owner, and every owner is eventually replayed.
func TestHintsConcurrentOwners(t *testing.T) {
	x := newHintHarness(t, nil, func(c *HintConfig) { c.MaxConcurrentOwners = 2 })
	release := make(chan struct{})
	var inFlight, peak int
	x.mu.Lock()
	x.onDeliver = func(owner string, k []byte, n int) error {
		x.mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		x.mu.Unlock()
		<-release
		x.mu.Lock()
		inFlight--
		x.mu.Unlock()
		return nil
	}
	x.mu.Unlock()
	owners := []string{"a", "b", "c", "d"}
	for _, o := range owners {
		x.storeHints(o, 1)
		x.setAvailable(o, true)
	}
	x.tick() // starts a and b only
	if m := x.h.Metrics(); m.Replaying != 2 {
		t.Fatalf("replaying %d owners, want 2", m.Replaying)
	}
	x.tick() // a and b still running: nothing new starts
	if m := x.h.Metrics(); m.Replaying != 2 {
		t.Fatalf("replaying %d owners, want 2", m.Replaying)
	}
	close(release)
	seen := map[string]bool{}
	deadline := time.After(hintWait)
	for len(seen) < len(owners) {
		select {
		case r := <-x.passes:
			// A round that listed an owner just before its pass
			// deleted the last hint may start an empty pass.
			if r.err != nil || r.progressed > 1 {
				t.Fatalf("pass %+v", r)
			}
			if r.progressed == 1 {
				seen[r.owner] = true
			}
		case <-x.rounds:
		case <-deadline:
			t.Fatalf("only %v replayed", seen)
		default:
			x.clk.Advance(x.cfg.Interval) // later rounds pick up c and d
			select {
			case <-x.rounds:
			case <-deadline:
				t.Fatal("no round")
			}
		}
	}
	x.mu.Lock()
	if peak > 2 {
		t.Errorf("%d owners delivered at once, want at most 2", peak)
	}
	x.mu.Unlock()
	for _, o := range owners {
		if x.deliveries(o, hintKeyS(0)) != 1 {
			t.Errorf("owner %s got %d deliveries", o, x.deliveries(o, hintKeyS(0)))
		}
	}
}

func TestHintsLifecycle(t *testing.T) {
	clk := clock.NewFake()
	cfg := DefaultConfig().Hints
	cfg.Available = func(string) bool { return true }
	cfg.Deliver = func(context.Context, string, []byte, version.Set) error { return nil }
	cfg.Prioritize = func(int) {}
	h, err := NewHints(cfg, newHintFakeStore(), clk, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	// Close without Start, twice; Start after Close starts nothing.
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	h.Start()
	if clk.Pending() != 0 {
		t.Fatalf("Start after Close armed %d timers", clk.Pending())
	}
	if _, err := NewHints(cfg, nil, clk, zerolog.Nop()); !errors.Is(err, ErrConfig) {
		t.Fatalf("nil store: %v", err)
	}

	h, err = NewHints(cfg, newHintFakeStore(), clk, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	h.Start()
	h.Start()
	if clk.Pending() != 1 {
		t.Fatalf("two Starts armed %d timers, want 1", clk.Pending())
	}
	for _, bad := range []string{"", "a\x00b"} {
		if ok, err := h.Store(bad, 0, hintKey(0), hintSet(t, "n1", "v")); ok || !errors.Is(err, ErrBadOwner) {
			t.Errorf("Store(%q) = %v, %v", bad, ok, err)
		}
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if clk.Pending() != 0 {
		t.Fatalf("Close left %d timers", clk.Pending())
	}
}

// A failing store is reported and the partition prioritized: the hint is
// never dropped silently.
func TestHintsStoreErrorPrioritizes(t *testing.T) {
	st := &hintFaulty{HintStore: newHintFakeStore()}
	st.failAdd.Store(true)
	x := newHintHarness(t, st, nil)
	stored, err := x.h.Store("n2", 17, hintKey(0), hintSet(t, "n1", "v"))
	if stored || !errors.Is(err, errHintInjected) {
		t.Fatalf("Store = %v, %v", stored, err)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(x.prioritized) != 1 || x.prioritized[0] != 17 {
		t.Fatalf("prioritized %v, want [17]", x.prioritized)
	}
	if m := x.h.Metrics(); m.StoreErrors != 1 || m.Stored != 0 {
		t.Fatalf("metrics: %+v", m)
	}
}
