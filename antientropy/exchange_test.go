package antientropy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/cespare/xxhash/v2"
	"pgregory.net/rapid"
)

func TestDiffLeaf(t *testing.T) {
	e := func(h, kh uint64) Entry { return Entry{Hash: h, KeyHash: kh} }
	tests := []struct {
		name        string
		local       []Entry
		remote      []Entry
		fetch, push []uint64
		keys        int
	}{
		{"equal", []Entry{e(1, 10), e(2, 20)}, []Entry{e(1, 10), e(2, 20)}, nil, nil, 0},
		{"both empty", nil, nil, nil, nil, 0},
		{"local only", []Entry{e(1, 10), e(2, 20)}, []Entry{e(1, 10)}, nil, []uint64{2}, 1},
		{"remote only", []Entry{e(1, 10)}, []Entry{e(1, 10), e(3, 30)}, []uint64{3}, nil, 1},
		{"different record", []Entry{e(1, 10)}, []Entry{e(1, 11)}, []uint64{1}, []uint64{1}, 1},
		{"mixed", []Entry{e(1, 10), e(2, 20), e(4, 40)}, []Entry{e(2, 21), e(3, 30), e(4, 40)},
			[]uint64{2, 3}, []uint64{1, 2}, 3},
		{"hash collision: same pair", []Entry{e(5, 1), e(5, 2)}, []Entry{e(5, 2), e(5, 1)}, nil, nil, 0},
		{"hash collision: one key differs", []Entry{e(5, 1), e(5, 2)}, []Entry{e(5, 1), e(5, 3)}, []uint64{5}, []uint64{5}, 1},
		{"hash collision: one key missing", []Entry{e(5, 1), e(5, 2)}, []Entry{e(5, 1)}, []uint64{5}, []uint64{5}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fetch, push, plan := diffLeaf(tc.local, tc.remote)
			if !slices.Equal(fetch, tc.fetch) || !slices.Equal(push, tc.push) {
				t.Fatalf("fetch %v push %v, want fetch %v push %v", fetch, push, tc.fetch, tc.push)
			}
			if plan.keys != tc.keys || plan.hasDifference != (tc.keys > 0) {
				t.Fatalf("plan %+v, want %d keys", plan, tc.keys)
			}
			var lx, rx uint64
			for _, e := range tc.local {
				lx ^= e.KeyHash
			}
			for _, e := range tc.remote {
				rx ^= e.KeyHash
			}
			if plan.diff.Local != lx || plan.diff.Remote != rx {
				t.Fatalf("leaf hashes %x/%x, want %x/%x", plan.diff.Local, plan.diff.Remote, lx, rx)
			}
		})
	}
}

// pureSide is one replica's records of a partition for driving an
// Exchange without a store: key hash → record hash.
type pureSide struct {
	shape Shape
	recs  map[uint64]uint64
	tree  *Tree
}

func newPureSide(s Shape, recs map[uint64]uint64) *pureSide {
	ps := &pureSide{shape: s, recs: recs, tree: NewTree(s)}
	for h, kh := range recs {
		ps.tree.Apply(s.Leaf(h), kh)
	}
	return ps
}

func (ps *pureSide) set(h, kh uint64) {
	ps.tree.Apply(ps.shape.Leaf(h), ps.recs[h]^kh)
	if kh == 0 {
		delete(ps.recs, h)
	} else {
		ps.recs[h] = kh
	}
}

func (ps *pureSide) hashes(level int, nodes []uint32) []uint64 {
	out := make([]uint64, len(nodes))
	for i, n := range nodes {
		out[i] = ps.tree.Hash(level, int(n))
	}
	return out
}

func (ps *pureSide) list(leaf int) []Entry {
	var out []Entry
	for h, kh := range ps.recs {
		if ps.shape.Leaf(h) == leaf {
			out = append(out, Entry{Hash: h, KeyHash: kh})
		}
	}
	slices.SortFunc(out, cmpEntry)
	return out
}

// runPure drives x between two sides; a transfer makes both sides hold
// the larger record hash of the key (a stand-in for a merge), and counts a
// key as moved when that changed a side. It returns every step taken.
func runPure(t interface{ Fatal(...any) }, x *Exchange, a, b *pureSide) []Step {
	var steps []Step
	for i := 0; ; i++ {
		if i > 10000 {
			t.Fatal("exchange does not end")
		}
		st := x.Next()
		steps = append(steps, st)
		var err error
		switch st.Kind {
		case StepDone:
			return steps
		case StepHashes:
			err = x.OnHashes(a.hashes(st.Level, st.Nodes), b.hashes(st.Level, st.Nodes))
		case StepLeafKeys:
			var la, lb [][]Entry
			for _, l := range st.Nodes {
				la, lb = append(la, a.list(int(l))), append(lb, b.list(int(l)))
			}
			err = x.OnLeafKeys(la, lb)
		case StepTransfer:
			var moved []uint64
			for _, h := range append(slices.Clone(st.Fetch), st.Push...) {
				m := max(a.recs[h], b.recs[h])
				if a.recs[h] != m || b.recs[h] != m {
					moved = append(moved, h)
				}
				a.set(h, m)
				b.set(h, m)
			}
			err = x.OnTransfer(moved)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestExchangeMachineProperty: for any two record sets of a partition, one
// exchange makes them equal, lists only leaves that differ, and compares
// exactly the nodes on differing paths (the root, then all children of
// each differing inner node).
func TestExchangeMachineProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := Shape{
			PartitionBits: rapid.IntRange(0, 3).Draw(t, "pbits"),
			LeafBits:      rapid.IntRange(0, 7).Draw(t, "lbits"),
			FanoutBits:    rapid.IntRange(1, 3).Draw(t, "fbits"),
		}
		p := rapid.IntRange(0, s.Partitions()-1).Draw(t, "partition")
		lo, hi := s.PartitionRange(p)
		hashGen := rapid.Uint64Range(lo, hi)
		// A record hash covers the key (RecordHash), so two different keys
		// never share one; mixing the key into the drawn value models that.
		// Equal hashes of two keys in one leaf would cancel in the XOR.
		recordHash := func(h, v uint64) uint64 {
			var buf [16]byte
			binary.LittleEndian.PutUint64(buf[:], h)
			binary.LittleEndian.PutUint64(buf[8:], v)
			return xxhash.Sum64(buf[:]) | 1
		}
		common := rapid.MapOf(hashGen, rapid.Uint64Range(1, 1<<62)).Draw(t, "common")
		for h, v := range common {
			common[h] = recordHash(h, v)
		}
		a, b := maps.Clone(common), maps.Clone(common)
		for h, kh := range rapid.MapOf(hashGen, rapid.Uint64Range(1, 1<<62)).Draw(t, "onlyA") {
			a[h] = recordHash(h, kh)
		}
		for h, kh := range rapid.MapOf(hashGen, rapid.Uint64Range(1, 1<<62)).Draw(t, "onlyB") {
			b[h] = recordHash(h, kh)
		}
		keys := slices.Sorted(maps.Keys(common))
		drop := rapid.SliceOfN(rapid.Bool(), len(keys), len(keys)).Draw(t, "dropB")
		for i, h := range keys {
			if drop[i] {
				delete(b, h)
			}
		}
		sa, sb := newPureSide(s, a), newPureSide(s, b)
		wantNodes := 0
		var walk func(l, i int)
		walk = func(l, i int) {
			wantNodes++
			if l == 0 || sa.tree.Hash(l, i) == sb.tree.Hash(l, i) {
				return
			}
			first, end := s.Children(l, i)
			for c := first; c < end; c++ {
				walk(l-1, c)
			}
		}
		walk(s.Levels()-1, 0)
		differing := sa.tree.DiffLeaves(sb.tree)

		x := NewExchange(s, ExchangeOptions{
			MaxHashes: rapid.IntRange(1, 64).Draw(t, "maxHashes"),
			MaxLeaves: rapid.IntRange(1, 16).Draw(t, "maxLeaves"),
			MaxKeys:   rapid.IntRange(1, 16).Draw(t, "maxKeys"),
		})
		steps := runPure(t, x, sa, sb)
		if !maps.Equal(sa.recs, sb.recs) {
			t.Fatalf("not converged: %v vs %v", sa.recs, sb.recs)
		}
		if sa.tree.Root() != sb.tree.Root() {
			t.Fatal("roots differ after exchange")
		}
		res := x.Result()
		if res.NodesCompared != wantNodes {
			t.Fatalf("compared %d nodes, want %d", res.NodesCompared, wantNodes)
		}
		var listed []int
		for _, st := range steps {
			if st.Kind == StepLeafKeys {
				for _, l := range st.Nodes {
					listed = append(listed, int(l))
				}
			}
		}
		slices.Sort(listed)
		if !slices.Equal(listed, differing) || res.LeavesDiffering != len(differing) {
			t.Fatalf("listed leaves %v, differing %v (result %d)", listed, differing, res.LeavesDiffering)
		}
		if len(res.Stuck) != 0 {
			t.Fatalf("stuck leaves %v in a reconcilable exchange", res.Stuck)
		}
	})
}

// TestExchangeStuckLeavesSettle: a leaf whose differences move nothing is
// reported as stuck with the listed hashes, and an exchange told it is
// settled does not list it again.
func TestExchangeStuckLeavesSettle(t *testing.T) {
	s := Shape{PartitionBits: 0, LeafBits: 4, FanoutBits: 2}
	a := newPureSide(s, map[uint64]uint64{1 << 60: 7, 2 << 60: 9})
	b := newPureSide(s, map[uint64]uint64{2 << 60: 9})
	x := NewExchange(s, ExchangeOptions{MaxHashes: 64, MaxLeaves: 64, MaxKeys: 64})
	for st := x.Next(); st.Kind != StepDone; st = x.Next() {
		var err error
		switch st.Kind {
		case StepHashes:
			err = x.OnHashes(a.hashes(st.Level, st.Nodes), b.hashes(st.Level, st.Nodes))
		case StepLeafKeys:
			err = x.OnLeafKeys([][]Entry{a.list(int(st.Nodes[0]))}, [][]Entry{b.list(int(st.Nodes[0]))})
		case StepTransfer:
			if !slices.Equal(st.Push, []uint64{1 << 60}) || len(st.Fetch) != 0 {
				t.Fatalf("transfer %+v", st)
			}
			err = x.OnTransfer(nil) // the peer refused it
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	want := []LeafDiff{{Leaf: 1, Local: 7, Remote: 0}}
	if got := x.Result().Stuck; !slices.Equal(got, want) {
		t.Fatalf("stuck %+v, want %+v", got, want)
	}
	settled := func(leaf int, l, r uint64) bool { return leaf == 1 && l == 7 && r == 0 }
	x = NewExchange(s, ExchangeOptions{MaxHashes: 64, MaxLeaves: 64, MaxKeys: 64, Settled: settled})
	steps := runPure(t, x, a, b)
	for _, st := range steps {
		if st.Kind == StepLeafKeys || st.Kind == StepTransfer {
			t.Fatalf("settled leaf was listed again: %+v", st)
		}
	}
	if r := x.Result(); r.LeavesSettled != 1 || r.LeavesDiffering != 1 {
		t.Fatalf("result %+v", r)
	}
}

func TestExchangeRejectsWrongReplies(t *testing.T) {
	s := Shape{PartitionBits: 0, LeafBits: 4, FanoutBits: 2}
	tests := []struct {
		name string
		call func(x *Exchange) error
	}{
		{"hash count", func(x *Exchange) error { return x.OnHashes([]uint64{1}, []uint64{1, 2}) }},
		{"leafkeys while hashes due", func(x *Exchange) error { return x.OnLeafKeys(nil, nil) }},
		{"transfer while hashes due", func(x *Exchange) error { return x.OnTransfer(nil) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			x := NewExchange(s, ExchangeOptions{})
			before := x.Next()
			if err := tc.call(x); !errors.Is(err, ErrProtocol) {
				t.Fatalf("err %v, want ErrProtocol", err)
			}
			if after := x.Next(); after.Kind != before.Kind || after.Level != before.Level {
				t.Fatalf("a rejected reply moved the machine: %+v → %+v", before, after)
			}
		})
	}
}

func TestStepKindString(t *testing.T) {
	got := fmt.Sprint(StepDone, StepHashes, StepLeafKeys, StepTransfer, StepKind(9))
	if want := "done hashes leafkeys transfer StepKind(9)"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}
