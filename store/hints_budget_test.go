package store

import (
	"bytes"
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
