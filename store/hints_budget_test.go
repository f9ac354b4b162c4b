package store

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/quorumkv/quorumkv/version"
)

// AddHint's limit refuses a hint that would grow an owner's hints past it,
// but always takes a merge that does not grow them: a tombstone must
// replace the live value it supersedes even when the budget is full.
func TestAddHintLimit(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	k := tk("k")
	var live version.Set
	if _, err := live.Update(version.Write{Node: "n1", Value: bytes.Repeat([]byte("v"), 4000), WriteTime: 1}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.AddHint("n3", k, live, 5000, 0); err != nil || !ok {
		t.Fatalf("first hint under the limit: %v %v", ok, err)
	}
	full := s.HintBytes("n3")
	// Another key does not fit.
	if ok, err := s.AddHint("n3", tk("other"), live, full+100, 0); err != nil || ok {
		t.Fatalf("hint over the limit stored=%v %v", ok, err)
	}
	// The delete of k does, even with the limit below what is held.
	dead := live.Clone()
	if _, err := dead.Update(version.Write{Node: "n1", Context: live.Context, Deleted: true, WriteTime: 2}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.AddHint("n3", k, dead, 1, 0); err != nil || !ok {
		t.Fatalf("superseding tombstone refused: %v %v", ok, err)
	}
	got, err := s.Hint("n3", k)
	if err != nil || !got.Deleted() {
		t.Fatalf("hint after the delete = %+v %v; want the tombstone alone", got, err)
	}
	if s.HintBytes("n3") >= full {
		t.Fatalf("hint bytes %d, want fewer than %d", s.HintBytes("n3"), full)
	}
	// Other owners have budgets of their own.
	if ok, err := s.AddHint("n4", k, live, 5000, 0); err != nil || !ok {
		t.Fatalf("other owner: %v %v", ok, err)
	}
}

// Concurrent AddHints of different keys cannot overrun the limit together.
func TestAddHintLimitConcurrent(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	var one version.Set
	if _, err := one.Update(version.Write{Node: "n1", Value: bytes.Repeat([]byte("v"), 1000), WriteTime: 1}); err != nil {
		t.Fatal(err)
	}
	const limit = 10_000
	var wg sync.WaitGroup
	for i := range 64 {
		wg.Go(func() {
			if _, err := s.AddHint("n3", tk(fmt.Sprint(i)), one, limit, 0); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if b := s.HintBytes("n3"); b > limit || b < limit-2000 {
		t.Fatalf("%d hint bytes with a limit of %d", b, limit)
	}
}

// The total limit caps the hint bytes of all owners together, refusing
// past it with ErrHintsFull; a hint that does not grow them still goes in,
// and concurrent AddHints for many owners cannot overrun it.
func TestAddHintTotalLimit(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	var one version.Set
	if _, err := one.Update(version.Write{Node: "n1", Value: bytes.Repeat([]byte("v"), 1000), WriteTime: 1}); err != nil {
		t.Fatal(err)
	}
	const total = 10_000
	var wg sync.WaitGroup
	var mu sync.Mutex
	var full int
	stored := -1 // one of the hints that went in
	for i := range 64 {
		wg.Go(func() {
			ok, err := s.AddHint(fmt.Sprintf("n%d", i%4), tk(fmt.Sprint(i)), one, 1<<20, total)
			switch {
			case errors.Is(err, ErrHintsFull) && !ok:
				mu.Lock()
				full++
				mu.Unlock()
			case err != nil || !ok:
				t.Errorf("hint %d: %v %v", i, ok, err)
			default:
				mu.Lock()
				stored = i
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	var sum int64
	for _, o := range s.HintOwners() {
		sum += s.HintBytes(o)
	}
	if sum > total || sum < total-2000 || full == 0 {
		t.Fatalf("%d hint bytes over all owners with a total of %d, %d refused", sum, total, full)
	}
	if got := s.Metrics().HintBytes; got != sum {
		t.Fatalf("Metrics().HintBytes = %d, want %d", got, sum)
	}
	// A tombstone replacing a held hint does not grow the hints: kept.
	// (Which of the concurrent hints went in is up to the scheduler.)
	if stored < 0 {
		t.Fatal("no hint went in")
	}
	owner, k := fmt.Sprintf("n%d", stored%4), tk(fmt.Sprint(stored))
	held, err := s.Hint(owner, k)
	if err != nil || held.IsEmpty() {
		t.Fatalf("hint %d: %+v %v", stored, held, err)
	}
	dead := held.Clone()
	if _, err := dead.Update(version.Write{Node: "n1", Context: held.Context, Deleted: true, WriteTime: 2}); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.AddHint(owner, k, dead, 1<<20, total); err != nil || !ok {
		t.Fatalf("superseding tombstone over the total: %v %v", ok, err)
	}
}

// bigSet returns a set of n concurrent siblings of size bytes each,
// issued by node.
func bigSet(t *testing.T, node string, n, size int) version.Set {
	t.Helper()
	var s version.Set
	for i := range n {
		// Blind (no context): each write keeps the siblings before it.
		if _, err := s.Update(version.Write{Node: node, Value: bytes.Repeat([]byte{byte(i)}, size), WriteTime: int64(i + 1)}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// A merge (data or hint) that would build a record past MaxMergeBytes is
// refused with a TooLargeError matching version.ErrTooLarge, and the store
// keeps what it has; one that does not grow the record is taken even over
// the cap, so a client's resolution shrinks it.
func TestMergeByteCap(t *testing.T) {
	const limit = 64 << 10
	s := openTest(t, vfs.NewMem(), func(c *Config) { c.MaxMergeBytes = limit })
	k := tk("big")
	a := bigSet(t, "n1", 2, 20<<10)
	if _, _, err := s.Merge(k, a); err != nil {
		t.Fatalf("merge under the cap: %v", err)
	}
	b := bigSet(t, "n2", 2, 20<<10)
	_, _, err := s.Merge(k, b)
	var tl *TooLargeError
	if !errors.As(err, &tl) || !errors.Is(err, ErrTooLarge) || !errors.Is(err, version.ErrTooLarge) || tl.Limit != limit || tl.Bytes <= limit {
		t.Fatalf("merge past the cap: %v", err)
	}
	if got, err := s.Get(k); err != nil || !got.Equal(a) {
		t.Fatalf("after the refused merge: %+v %v; want the record unchanged", got, err)
	}
	if _, err := s.AddHint("n3", k, a, 0, 0); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.AddHint("n3", k, b, 0, 0); ok || !errors.As(err, &tl) {
		t.Fatalf("hint merge past the cap: %v %v", ok, err)
	}
	if m := s.Metrics(); m.MergesTooLarge != 2 {
		t.Fatalf("MergesTooLarge = %d, want 2", m.MergesTooLarge)
	}
	// Update is not capped by the store: a record past the cap (a
	// larger cap before, or the write path's own) can exist ...
	over, _, err := s.Update(k, func(cur version.Set) (version.Set, error) {
		_, err := cur.Update(version.Write{Node: "n1", Value: bytes.Repeat([]byte("x"), 40<<10), WriteTime: 9})
		return cur, err
	})
	if err != nil || len(EncodeSet(over)) <= limit {
		t.Fatalf("update: %d bytes, %v", len(EncodeSet(over)), err)
	}
	// ... and a resolving version that covers its siblings shrinks it.
	var resolved version.Set
	if _, err := resolved.Update(version.Write{Node: "n2", Context: over.Context, Value: []byte("r"), WriteTime: 10}); err != nil {
		t.Fatal(err)
	}
	got, _, err := s.Merge(k, resolved)
	if err != nil || len(got.Siblings) != 1 {
		t.Fatalf("resolving merge over the cap: %d siblings, %v", len(got.Siblings), err)
	}
}
