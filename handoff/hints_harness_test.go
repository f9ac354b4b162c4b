package handoff

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/version"
)

// hintWait bounds how long a test waits for the handoff goroutines to
// react. It is a safety net against hangs, not a time source: every wait
// in these tests is for an event, and fake time only moves when a test
// advances it.
const hintWait = 10 * time.Second

type hintPassResult struct {
	owner      string
	progressed int
	err        error
}

// hintHarness runs a Hints on a fake clock with fake owners: Deliver
// merges into per-owner maps with version.Sync, like the node's RPC does.
type hintHarness struct {
	t   *testing.T
	clk *clock.Fake
	st  HintStore
	h   *Hints
	cfg HintConfig

	rounds chan struct{}
	passes chan hintPassResult
	waits  chan time.Time // rate limiter deadlines
	done   chan struct{}  // closed at cleanup: hooks stop blocking

	mu          sync.Mutex
	available   map[string]bool
	delivered   map[string]int                    // owner/k -> successful deliveries
	attempts    map[string]int                    // owner/k -> Deliver calls
	replicas    map[string]map[string]version.Set // the owners' stores
	prioritized []int
	// onDeliver, when set, runs inside Deliver before the merge; its
	// error fails the delivery. n is the attempt number for owner/k.
	onDeliver func(owner string, k []byte, n int) error

	// For the harness of newMovingHarness: the owners that left the
	// ring, every key's replicas, and what Rehome sent away.
	nonMembers  map[string]bool
	keyReplicas []string
	rehomed     map[string]map[string]version.Set // owner -> k -> set
	// onRehome, when set, runs inside Rehome first; its error fails it.
	onRehome func(owner string, k []byte) error
}

// newHintHarness builds a started Hints over st (a fake store if nil).
// The default config has no rate limit.
func newHintHarness(t *testing.T, st HintStore, mutate func(*HintConfig)) *hintHarness {
	t.Helper()
	return buildHintHarness(t, st, func(_ *hintHarness, c *HintConfig) {
		if mutate != nil {
			mutate(c)
		}
	})
}

// newMovingHarness is newHintHarness with the harness's Member, Replicas
// (replicas, for every key) and Rehome wired in.
func newMovingHarness(t *testing.T, st HintStore, replicas []string, mutate func(*HintConfig)) *hintHarness {
	t.Helper()
	return buildHintHarness(t, st, func(x *hintHarness, c *HintConfig) {
		x.keyReplicas = replicas
		c.Member = x.isMember
		c.Replicas = func([]byte) []string {
			x.mu.Lock()
			defer x.mu.Unlock()
			return slices.Clone(x.keyReplicas)
		}
		c.Rehome = x.rehome
		if mutate != nil {
			mutate(c)
		}
	})
}

func buildHintHarness(t *testing.T, st HintStore, mutate func(*hintHarness, *HintConfig)) *hintHarness {
	t.Helper()
	if st == nil {
		st = newHintFakeStore()
	}
	x := &hintHarness{
		t:          t,
		clk:        clock.NewFake(),
		st:         st,
		rounds:     make(chan struct{}, 1024),
		passes:     make(chan hintPassResult, 1024),
		waits:      make(chan time.Time, 1024),
		done:       make(chan struct{}),
		available:  map[string]bool{},
		delivered:  map[string]int{},
		attempts:   map[string]int{},
		replicas:   map[string]map[string]version.Set{},
		rehomed:    map[string]map[string]version.Set{},
		nonMembers: map[string]bool{},
	}
	cfg := DefaultConfig().Hints
	cfg.HintsPerSecond, cfg.BytesPerSecond = 0, 0
	cfg.Available = x.isAvailable
	cfg.Deliver = x.deliver
	cfg.Prioritize = func(p int) {
		x.mu.Lock()
		x.prioritized = append(x.prioritized, p)
		x.mu.Unlock()
	}
	mutate(x, &cfg)
	x.cfg = cfg
	h, err := NewHints(cfg, st, x.clk, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	h.hooks.roundDone = func() { hintSend(x.rounds, struct{}{}, x.done) }
	h.hooks.passDone = func(owner string, n int, err error) {
		hintSend(x.passes, hintPassResult{owner, n, err}, x.done)
	}
	h.lim.onWait = func(d time.Time) { hintSend(x.waits, d, x.done) }
	x.h = h
	h.Start()
	t.Cleanup(func() {
		close(x.done)
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	})
	return x
}

func hintSend[T any](ch chan T, v T, done chan struct{}) {
	select {
	case ch <- v:
	case <-done:
	}
}

func (x *hintHarness) isAvailable(owner string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.available[owner]
}

func (x *hintHarness) setAvailable(owner string, up bool) {
	x.mu.Lock()
	x.available[owner] = up
	x.mu.Unlock()
}

func (x *hintHarness) isMember(owner string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return !x.nonMembers[owner]
}

// leave makes owner a non-member.
func (x *hintHarness) leave(owner string) {
	x.mu.Lock()
	x.nonMembers[owner] = true
	x.mu.Unlock()
}

func (x *hintHarness) rehome(ctx context.Context, owner string, k []byte, set version.Set) error {
	x.mu.Lock()
	hook := x.onRehome
	x.mu.Unlock()
	if hook != nil {
		if err := hook(owner, k); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	r := x.rehomed[owner]
	if r == nil {
		r = map[string]version.Set{}
		x.rehomed[owner] = r
	}
	r[string(k)] = version.Sync(r[string(k)], set)
	return nil
}

// rehomedOf returns what Rehome sent away for owner.
func (x *hintHarness) rehomedOf(owner string) map[string]version.Set {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := map[string]version.Set{}
	for k, s := range x.rehomed[owner] {
		out[k] = s.Clone()
	}
	return out
}

func (x *hintHarness) deliver(ctx context.Context, owner string, k []byte, set version.Set) error {
	id := owner + "/" + string(k)
	x.mu.Lock()
	x.attempts[id]++
	n := x.attempts[id]
	hook := x.onDeliver
	x.mu.Unlock()
	if hook != nil {
		if err := hook(owner, k, n); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	r := x.replicas[owner]
	if r == nil {
		r = map[string]version.Set{}
		x.replicas[owner] = r
	}
	r[string(k)] = version.Sync(r[string(k)], set)
	x.delivered[id]++
	return nil
}

// deliveries returns how many times owner/k was delivered.
func (x *hintHarness) deliveries(owner, k string) int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.delivered[owner+"/"+k]
}

// totalDeliveries returns all successful deliveries.
func (x *hintHarness) totalDeliveries() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	n := 0
	for _, c := range x.delivered {
		n += c
	}
	return n
}

// replica returns owner's copy of k.
func (x *hintHarness) replica(owner, k string) version.Set {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.replicas[owner][k].Clone()
}

// tick advances fake time by one Interval and waits for the loop's round.
func (x *hintHarness) tick() {
	x.t.Helper()
	x.clk.Advance(x.cfg.Interval)
	x.waitRound()
}

func (x *hintHarness) waitRound() {
	x.t.Helper()
	select {
	case <-x.rounds:
	case <-time.After(hintWait):
		x.t.Fatal("no replay round")
	}
}

// waitPass waits for the next finished pass, which must be owner's.
func (x *hintHarness) waitPass(owner string) hintPassResult {
	x.t.Helper()
	select {
	case r := <-x.passes:
		if r.owner != owner {
			x.t.Fatalf("pass for %q, want %q", r.owner, owner)
		}
		return r
	case <-time.After(hintWait):
		x.t.Fatalf("no pass for %q", owner)
	}
	return hintPassResult{}
}

// noPass asserts that no pass finished.
func (x *hintHarness) noPass() {
	x.t.Helper()
	select {
	case r := <-x.passes:
		x.t.Fatalf("unexpected pass %+v", r)
	default:
	}
}

// drivePasses runs fake time forward to each rate-limiter deadline until
// a pass for each of owners finished, and returns the fake time that took
// from start.
func (x *hintHarness) drivePasses(start time.Time, owners ...string) time.Duration {
	x.t.Helper()
	want, done := map[string]bool{}, map[string]bool{}
	for _, o := range owners {
		want[o] = true
	}
	for len(want) > 0 {
		select {
		case d := <-x.waits:
			// Under the limiter's lock, so no waiter reads the time
			// between this move and arming its timer.
			x.h.lim.mu.Lock()
			if d.After(x.clk.Now()) {
				x.clk.Set(d)
			}
			x.h.lim.mu.Unlock()
		case r := <-x.passes:
			if done[r.owner] && r.progressed == 0 && r.err == nil {
				// A later round found a finished owner with nothing
				// left to deliver: moving the clock to a limiter
				// deadline may also reach the next round's timer.
				continue
			}
			if !want[r.owner] || r.err != nil {
				x.t.Fatalf("unexpected pass %+v", r)
			}
			delete(want, r.owner)
			done[r.owner] = true
		case <-x.rounds:
		case <-time.After(hintWait):
			x.t.Fatalf("passes for %v did not finish", want)
		}
	}
	return x.clk.Now().Sub(start)
}

// hintSet returns a one-sibling set written by node.
func hintSet(t testing.TB, node, value string) version.Set {
	t.Helper()
	var s version.Set
	if _, err := s.Update(version.Write{Node: node, Value: []byte(value), WriteTime: 1}); err != nil {
		t.Fatal(err)
	}
	return s
}

// hintsOf returns every hint held for owner.
func hintsOf(t interface {
	Helper()
	Fatal(...any)
}, st HintStore, owner string) map[string]version.Set {
	t.Helper()
	out := map[string]version.Set{}
	if err := st.ScanHints(owner, func(k []byte, set version.Set) error {
		out[string(k)] = set.Clone()
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// storeHints stores n hints k0..k(n-1) for owner and returns their sets.
func (x *hintHarness) storeHints(owner string, n int) map[string]version.Set {
	x.t.Helper()
	sets := map[string]version.Set{}
	for i := 0; i < n; i++ {
		k := hintKeyS(i)
		set := hintSet(x.t, "n1", fmt.Sprintf("v%d-%s", i, owner))
		stored, err := x.h.Store(owner, i, []byte(k), set)
		if err != nil || !stored {
			x.t.Fatalf("Store(%s, %s) = %v, %v", owner, k, stored, err)
		}
		sets[k] = set
	}
	return sets
}
