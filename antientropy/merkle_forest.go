package antientropy

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// Scanner is the part of the store a Forest is rebuilt from: Scan calls fn
// for every record whose key hash is in [lo, hi], in hash order, with the
// record's canonical set bytes. fn must not retain the slices.
// *store.Store satisfies it.
type Scanner interface {
	Scan(lo, hi uint64, fn func(hash uint64, k []byte, setBytes []byte) error) error
}

// Forest holds one hash tree per partition, allocated on first use, and
// keeps them current from the store's write events. It is safe for
// concurrent use.
//
// Service.SaveTrees persists the leaves at a clean shutdown and the next
// Start loads them; otherwise Start rebuilds every partition with one Scan
// of its hash range (one pass over the data). A rebuild may run while
// writes continue: the events that arrive during the scan are logged and
// reconciled against what the scan saw (see RebuildLeaves).
type Forest struct {
	shape Shape
	parts []atomic.Pointer[partTree]

	rebuilds     atomic.Uint64 // whole-partition rebuilds
	leafRebuilds atomic.Uint64 // partial rebuilds after a detected inconsistency
}

// partTree is one partition's tree and its rebuild bookkeeping.
type partTree struct {
	rebuildMu sync.Mutex // serializes rebuilds of this partition

	mu     sync.Mutex // guards the fields below
	tree   *Tree
	writes uint64    // write events applied so far; a quiet leaf has an unchanged count
	build  *buildLog // non-nil while a rebuild is scanning
}

// buildLog records the write events that arrive while leaves first..last
// are being rescanned.
type buildLog struct {
	first, last int
	events      []buildEvent
}

type buildEvent struct {
	hash    uint64 // the key's hash
	contrib uint64 // RecordHash of the key's new state (0: deleted)
}

// NewForest returns an empty forest of the given shape.
func NewForest(s Shape) (*Forest, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &Forest{shape: s, parts: make([]atomic.Pointer[partTree], s.Partitions())}, nil
}

// Shape returns the forest's shape.
func (f *Forest) Shape() Shape { return f.shape }

func (f *Forest) part(p int) *partTree {
	if pt := f.parts[p].Load(); pt != nil {
		return pt
	}
	pt := &partTree{tree: NewTree(f.shape)}
	if f.parts[p].CompareAndSwap(nil, pt) {
		return pt
	}
	return f.parts[p].Load()
}

// OnWrite applies one committed write of key k (hash h) whose canonical
// set bytes went from old to new (nil: absent). The store calls it, through
// Service.OnWrite, after every commit, in commit order per key.
func (f *Forest) OnWrite(h uint64, k, old, new []byte) {
	oc, nc := RecordHash(k, old), RecordHash(k, new)
	pt := f.part(f.shape.Partition(h))
	leaf := f.shape.Leaf(h)
	pt.mu.Lock()
	pt.tree.Apply(leaf, oc^nc)
	pt.writes++
	if b := pt.build; b != nil && leaf >= b.first && leaf <= b.last {
		b.events = append(b.events, buildEvent{hash: h, contrib: nc})
	}
	pt.mu.Unlock()
}

// Root returns partition p's root hash.
func (f *Forest) Root(p int) uint64 {
	pt := f.part(p)
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.tree.Root()
}

// Hashes appends to dst the hashes of the nodes idx at level l of
// partition p. The caller has checked the ranges.
func (f *Forest) Hashes(p, l int, idx []uint32, dst []uint64) []uint64 {
	pt := f.part(p)
	pt.mu.Lock()
	defer pt.mu.Unlock()
	for _, i := range idx {
		dst = append(dst, pt.tree.Hash(l, int(i)))
	}
	return dst
}

// leafState returns leaf i of partition p and the partition's write count,
// so a caller can tell whether a scan of the leaf raced with a write.
func (f *Forest) leafState(p, i int) (hash, writes uint64) {
	pt := f.part(p)
	pt.mu.Lock()
	defer pt.mu.Unlock()
	return pt.tree.Leaf(i), pt.writes
}

// Snapshot returns a copy of partition p's tree.
func (f *Forest) Snapshot(p int) *Tree {
	pt := f.part(p)
	pt.mu.Lock()
	defer pt.mu.Unlock()
	t := NewTree(f.shape)
	copy(t.levels[0], pt.tree.levels[0])
	return t
}

// Rebuild recomputes partition p's tree from the store.
func (f *Forest) Rebuild(sc Scanner, p int) error {
	if err := f.RebuildLeaves(sc, p, 0, f.shape.Leaves()-1); err != nil {
		return err
	}
	f.rebuilds.Add(1)
	return nil
}

// scanned is one record seen by a rebuild scan.
type scanned struct{ hash, contrib uint64 }

// RebuildLeaves recomputes leaves first..last of partition p from one Scan
// of their hash range, while writes may continue.
//
// The scan sees the store at some instant S (a pebble iterator is a
// snapshot). Write events for the rebuilt leaves that arrive during the
// scan are logged; for each key they touch, the rebuilt leaf replaces what
// the scan saw of that key with the key's latest state from the log. That
// is right whether each event was committed before or after S. The one
// case it misses is an event committed before S whose OnWrite call is still
// in flight when the rebuild ends: it is then applied twice. Such a leaf no
// longer matches its keys, which the next exchange touching it detects (it
// rescans the leaf and compares), and repairs by rebuilding the leaf again.
// Keys are matched by their 64-bit hash; two keys of one leaf sharing a
// hash would be reconciled imprecisely, with the same self-repair.
func (f *Forest) RebuildLeaves(sc Scanner, p, first, last int) error {
	if p < 0 || p >= f.shape.Partitions() || first < 0 || last >= f.shape.Leaves() || first > last {
		return fmt.Errorf("%w: rebuild partition %d leaves %d..%d", ErrBadRequest, p, first, last)
	}
	pt := f.part(p)
	pt.rebuildMu.Lock()
	defer pt.rebuildMu.Unlock()

	pt.mu.Lock()
	pt.build = &buildLog{first: first, last: last}
	pt.mu.Unlock()

	leaves := make([]uint64, last-first+1)
	var seen []scanned
	lo, hi := f.shape.LeafSpan(p, first, last)
	err := sc.Scan(lo, hi, func(h uint64, k, set []byte) error {
		c := RecordHash(k, set)
		leaves[f.shape.Leaf(h)-first] ^= c
		seen = append(seen, scanned{h, c})
		return nil
	})

	pt.mu.Lock()
	defer pt.mu.Unlock()
	b := pt.build
	pt.build = nil
	if err != nil {
		return fmt.Errorf("antientropy: rebuild partition %d: %w", p, err)
	}
	// Each key's latest logged state, in log order.
	latest := make(map[uint64]uint64, len(b.events))
	for _, e := range b.events {
		latest[e.hash] = e.contrib
	}
	for h, c := range latest {
		i, _ := slices.BinarySearchFunc(seen, h, func(s scanned, h uint64) int {
			switch {
			case s.hash < h:
				return -1
			case s.hash > h:
				return 1
			}
			return 0
		})
		var old uint64
		for ; i < len(seen) && seen[i].hash == h; i++ {
			old ^= seen[i].contrib
		}
		leaves[f.shape.Leaf(h)-first] ^= old ^ c
	}
	for i, h := range leaves {
		pt.tree.SetLeaf(first+i, h)
	}
	if first != 0 || last != f.shape.Leaves()-1 {
		f.leafRebuilds.Add(1)
	}
	return nil
}
