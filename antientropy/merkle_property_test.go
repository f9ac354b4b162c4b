package antientropy

import (
	"fmt"
	"testing"

	"github.com/quorumkv/quorumkv/version"
	"pgregory.net/rapid"
)

// forestsEqual compares every node hash of every partition.
func forestsEqual(a, b *Forest) error {
	s := a.Shape()
	for p := range s.Partitions() {
		ta, tb := a.part(p), b.part(p)
		ta.mu.Lock()
		tb.mu.Lock()
		for l := range s.Levels() {
			for i := range s.LevelSize(l) {
				if ha, hb := ta.tree.Hash(l, i), tb.tree.Hash(l, i); ha != hb {
					ta.mu.Unlock()
					tb.mu.Unlock()
					return fmt.Errorf("partition %d level %d node %d: %x vs %x", p, l, i, ha, hb)
				}
			}
		}
		ta.mu.Unlock()
		tb.mu.Unlock()
	}
	return nil
}

func rebuilt(t interface{ Fatal(...any) }, s Shape, st Scanner) *Forest {
	f, err := NewForest(s)
	if err != nil {
		t.Fatal(err)
	}
	for p := range s.Partitions() {
		if err := f.Rebuild(st, p); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// storeOp is one random write against a memStore.
type storeOp struct {
	kind  int // 0 overwrite, 1 blind write (sibling), 2 delete, 3 blind delete, 4 merge from another node, 5 remove row
	key   int
	value string
}

func drawOps(t *rapid.T, keys int) []storeOp {
	return rapid.SliceOfN(rapid.Custom(func(t *rapid.T) storeOp {
		return storeOp{
			kind:  rapid.IntRange(0, 5).Draw(t, "kind"),
			key:   rapid.IntRange(0, keys-1).Draw(t, "key"),
			value: rapid.StringMatching(`[a-z]{0,3}`).Draw(t, "value"),
		}
	}), 0, 120).Draw(t, "ops")
}

func applyOp(st *memStore, op storeOp, tick int64) {
	k := testKey(fmt.Sprintf("key%d", op.key))
	if op.kind == 5 {
		h := st.hash(k)
		st.mu.Lock()
		st.setLocked(h, k, nil)
		st.mu.Unlock()
		return
	}
	if op.kind == 4 {
		var in version.Set
		_, _ = in.Update(version.Write{Node: "z", Value: []byte(op.value), WriteTime: tick})
		_, _, _ = st.Merge(k, in)
		return
	}
	_, _ = st.Update(k, func(cur version.Set) (version.Set, error) {
		w := version.Write{Node: "n", Value: []byte(op.value), WriteTime: tick, Deleted: op.kind == 2 || op.kind == 3}
		if op.kind == 0 || op.kind == 2 {
			w.Context = cur.Context
		}
		_, err := cur.Update(w)
		return cur, err
	})
}

// TestForestIncrementalEqualsRebuild: for any sequence of writes,
// overwrites, siblings, deletes, merges and row removals (reaps), the
// tree kept up to date by write events equals one rebuilt from scratch.
func TestForestIncrementalEqualsRebuild(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := Shape{
			PartitionBits: rapid.IntRange(0, 3).Draw(t, "pbits"),
			LeafBits:      rapid.IntRange(0, 5).Draw(t, "lbits"),
			FanoutBits:    rapid.IntRange(1, 3).Draw(t, "fbits"),
		}
		f, err := NewForest(s)
		if err != nil {
			t.Fatal(err)
		}
		st := newMemStore()
		st.onWrite = f.OnWrite
		for i, op := range drawOps(t, rapid.IntRange(1, 40).Draw(t, "keys")) {
			applyOp(st, op, int64(i+1))
		}
		if err := forestsEqual(f, rebuilt(t, s, st)); err != nil {
			t.Fatal(err)
		}
	})
}

// interleavedScanner runs writes in the middle of a rebuild's scan: before
// the scan's snapshot with their events delivered during the scan (an
// OnWrite call that was still in flight when the rebuild started), and
// after the snapshot.
type interleavedScanner struct {
	st      *memStore
	during  []func() // run between scanned records
	atStart []func() // run when the scan starts, after the snapshot
}

func (s *interleavedScanner) Scan(lo, hi uint64, fn func(uint64, []byte, []byte) error) error {
	first := true
	i := 0
	err := s.st.Scan(lo, hi, func(h uint64, k, set []byte) error {
		if first {
			first = false
			for _, f := range s.atStart {
				f()
			}
		}
		if i < len(s.during) {
			s.during[i]()
			i++
		}
		return fn(h, k, set)
	})
	if first { // nothing scanned: the held events still come first
		for _, f := range s.atStart {
			f()
		}
	}
	for ; i < len(s.during); i++ {
		s.during[i]()
	}
	return err
}

// TestForestRebuildDuringWrites: a rebuild that races with writes ends
// with the same tree as a quiet rebuild, whether each write's event was
// committed before or after the scan's snapshot.
func TestForestRebuildDuringWrites(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := Shape{PartitionBits: 1, LeafBits: rapid.IntRange(0, 4).Draw(t, "lbits"), FanoutBits: 2}
		f, err := NewForest(s)
		if err != nil {
			t.Fatal(err)
		}
		st := newMemStore()
		st.onWrite = f.OnWrite
		keys := rapid.IntRange(1, 20).Draw(t, "keys")
		for i, op := range drawOps(t, keys) {
			applyOp(st, op, int64(i+1))
		}
		// Writes committed before the rebuild whose events are held back
		// and delivered during the scan.
		type event struct {
			h           uint64
			k, old, new []byte
		}
		var held []event
		st.onWrite = func(h uint64, k, old, new []byte) { held = append(held, event{h, k, old, new}) }
		for i, op := range drawOps(t, keys) {
			applyOp(st, op, int64(1000+i))
		}
		st.onWrite = f.OnWrite
		sc := &interleavedScanner{st: st}
		sc.atStart = append(sc.atStart, func() {
			for _, e := range held {
				f.OnWrite(e.h, e.k, e.old, e.new)
			}
		})
		// Writes after the snapshot, between scanned records.
		for i, op := range drawOps(t, keys) {
			sc.during = append(sc.during, func() { applyOp(st, op, int64(2000+i)) })
		}
		p := rapid.IntRange(0, 1).Draw(t, "partition")
		if err := f.Rebuild(sc, p); err != nil {
			t.Fatal(err)
		}
		if err := forestsEqual(f, rebuilt(t, s, st)); err != nil {
			t.Fatal(err)
		}
	})
}
