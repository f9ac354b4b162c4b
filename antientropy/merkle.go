package antientropy

import (
	"encoding/binary"
	"fmt"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// Shape is the geometry of the hash trees: how the 64-bit key hash space is
// cut into partitions, each partition into leaves, and how many children an
// inner node has. Both sides of an exchange must use the same Shape; it
// travels in every request and a mismatch is refused.
//
// A key hash h falls in partition h>>(64-PartitionBits) (the ring's rule)
// and, inside it, in leaf number "the next LeafBits bits of h". Leaves and
// partitions are therefore contiguous hash ranges, which the store can scan.
type Shape struct {
	PartitionBits int // log2 of the ring's partition count, 0..16
	LeafBits      int // log2 of the leaves per partition, 0..20
	FanoutBits    int // log2 of the children of an inner node, 1..8
}

// Validate reports whether the shape is usable.
func (s Shape) Validate() error {
	switch {
	case s.PartitionBits < 0 || s.PartitionBits > 16:
		return fmt.Errorf("%w: partition bits %d not in [0, 16]", ErrConfig, s.PartitionBits)
	case s.LeafBits < 0 || s.LeafBits > 20:
		return fmt.Errorf("%w: leaf bits %d not in [0, 20]", ErrConfig, s.LeafBits)
	case s.FanoutBits < 1 || s.FanoutBits > 8:
		return fmt.Errorf("%w: fanout bits %d not in [1, 8]", ErrConfig, s.FanoutBits)
	}
	return nil
}

// code packs the shape into one number for the wire.
func (s Shape) code() uint32 {
	return uint32(s.PartitionBits)<<16 | uint32(s.LeafBits)<<8 | uint32(s.FanoutBits)
}

// Partitions is the number of partitions.
func (s Shape) Partitions() int { return 1 << s.PartitionBits }

// Leaves is the number of leaves per partition.
func (s Shape) Leaves() int { return 1 << s.LeafBits }

// Fanout is the number of children of a full inner node.
func (s Shape) Fanout() int { return 1 << s.FanoutBits }

// Levels is the number of tree levels: level 0 holds the leaves, the top
// level (Levels()-1) holds the single root.
func (s Shape) Levels() int {
	if s.LeafBits == 0 {
		return 1
	}
	return 1 + (s.LeafBits+s.FanoutBits-1)/s.FanoutBits
}

// LevelSize is the number of nodes at level l.
func (s Shape) LevelSize(l int) int {
	n := s.Leaves()
	for range l {
		n = (n + s.Fanout() - 1) >> s.FanoutBits
	}
	return n
}

// Children returns the child indices [first, end) at level l-1 of node idx
// at level l >= 1.
func (s Shape) Children(l, idx int) (first, end int) {
	first = idx << s.FanoutBits
	end = min(first+s.Fanout(), s.LevelSize(l-1))
	return first, end
}

// Partition returns the partition of key hash h.
func (s Shape) Partition(h uint64) int {
	if s.PartitionBits == 0 {
		return 0
	}
	return int(h >> (64 - s.PartitionBits))
}

// Leaf returns the leaf of key hash h inside its partition.
func (s Shape) Leaf(h uint64) int {
	if s.LeafBits == 0 {
		return 0
	}
	return int((h << s.PartitionBits) >> (64 - s.LeafBits))
}

// PartitionRange returns the inclusive hash range of partition p.
func (s Shape) PartitionRange(p int) (lo, hi uint64) {
	return s.LeafSpan(p, 0, s.Leaves()-1)
}

// LeafRange returns the inclusive hash range of leaf i of partition p.
func (s Shape) LeafRange(p, i int) (lo, hi uint64) { return s.LeafSpan(p, i, i) }

// LeafSpan returns the inclusive hash range covering leaves first..last of
// partition p.
func (s Shape) LeafSpan(p, first, last int) (lo, hi uint64) {
	width := 64 - s.PartitionBits - s.LeafBits // bits below the leaf number
	var base uint64
	if s.PartitionBits > 0 {
		base = uint64(p) << (64 - s.PartitionBits)
	}
	lo = base | uint64(first)<<width
	hi = base | uint64(last)<<width | lowMask(width)
	return lo, hi
}

func lowMask(width int) uint64 {
	if width >= 64 {
		return ^uint64(0)
	}
	return 1<<width - 1
}

// RecordHash is one record's contribution to its leaf: xxhash64 of
// uvarint(len(k)) ‖ k ‖ setBytes, where setBytes are the canonical set
// bytes. An absent record (nil setBytes) contributes 0. A leaf's hash is the
// XOR of its records' hashes, so a write updates it with
// leaf ^= RecordHash(k, old) ^ RecordHash(k, new) without reading the
// leaf's other keys.
func RecordHash(k, setBytes []byte) uint64 {
	if setBytes == nil {
		return 0
	}
	var d xxhash.Digest
	d.Reset()
	var n [binary.MaxVarintLen64]byte
	_, _ = d.Write(n[:binary.PutUvarint(n[:], uint64(len(k)))])
	_, _ = d.Write(k)
	_, _ = d.Write(setBytes)
	return d.Sum64()
}

// Tree is the hash tree of one partition. Leaves hold the XOR of their
// records' hashes; an inner node is xxhash64 of its children's hashes
// (little-endian, in order), recomputed lazily: changing a leaf only marks
// its ancestors dirty, and Hash recomputes dirty nodes when asked. Hashing
// (rather than XOR-ing) inner nodes keeps distinct trees from colliding
// when differences cancel out across leaves.
//
// A Tree is not safe for concurrent use; Forest guards each with a mutex.
type Tree struct {
	shape  Shape
	levels [][]uint64 // levels[0] are the leaves; the last level is the root
	dirty  [][]uint64 // dirty[l] is a bitset over levels[l]; dirty[0] unused
	bufs   [][]byte   // bufs[l]: scratch for hashing the children of a level-l node
}

// NewTree returns the tree of an empty partition.
func NewTree(s Shape) *Tree {
	t := &Tree{shape: s}
	n := s.Levels()
	t.levels = make([][]uint64, n)
	t.dirty = make([][]uint64, n)
	t.bufs = make([][]byte, n)
	for l := range n {
		size := s.LevelSize(l)
		t.levels[l] = make([]uint64, size)
		if l > 0 {
			t.dirty[l] = make([]uint64, (size+63)/64)
			t.bufs[l] = make([]byte, 8*s.Fanout())
			for i := range size {
				t.dirty[l][i/64] |= 1 << (i % 64)
			}
		}
	}
	return t
}

// Leaf returns leaf i's hash.
func (t *Tree) Leaf(i int) uint64 { return t.levels[0][i] }

// Apply XORs delta into leaf i.
func (t *Tree) Apply(i int, delta uint64) {
	if delta == 0 {
		return
	}
	t.levels[0][i] ^= delta
	t.touch(i)
}

// SetLeaf sets leaf i's hash.
func (t *Tree) SetLeaf(i int, h uint64) {
	if t.levels[0][i] == h {
		return
	}
	t.levels[0][i] = h
	t.touch(i)
}

// touch marks the ancestors of leaf i dirty.
func (t *Tree) touch(i int) {
	for l := 1; l < len(t.levels); l++ {
		i >>= t.shape.FanoutBits
		w, b := i/64, uint64(1)<<(i%64)
		if t.dirty[l][w]&b != 0 {
			return // its ancestors are dirty already
		}
		t.dirty[l][w] |= b
	}
}

// Hash returns the hash of node idx at level l, recomputing dirty nodes.
func (t *Tree) Hash(l, idx int) uint64 {
	if l == 0 {
		return t.levels[0][idx]
	}
	w, b := idx/64, uint64(1)<<(idx%64)
	if t.dirty[l][w]&b == 0 {
		return t.levels[l][idx]
	}
	first, end := t.shape.Children(l, idx)
	buf := t.bufs[l] // children recurse with lower levels' buffers
	for c := first; c < end; c++ {
		binary.LittleEndian.PutUint64(buf[8*(c-first):], t.Hash(l-1, c))
	}
	h := xxhash.Sum64(buf[:8*(end-first)])
	t.levels[l][idx] = h
	t.dirty[l][w] &^= b
	return h
}

// Root returns the root hash.
func (t *Tree) Root() uint64 { return t.Hash(len(t.levels)-1, 0) }

// Equal reports whether two trees of the same shape have equal leaves.
func (t *Tree) Equal(o *Tree) bool {
	if t.shape != o.shape {
		return false
	}
	for i, h := range t.levels[0] {
		if o.levels[0][i] != h {
			return false
		}
	}
	return true
}

// DiffLeaves returns the leaves whose hashes differ between t and o, which
// must have the same shape.
func (t *Tree) DiffLeaves(o *Tree) []int {
	var out []int
	for i, h := range t.levels[0] {
		if o.levels[0][i] != h {
			out = append(out, i)
		}
	}
	return out
}

// shapeFor returns the shape for a partition count, leaves per partition
// and fanout, all powers of two.
func shapeFor(partitions, leaves, fanout int) (Shape, error) {
	for _, v := range []struct {
		name string
		n    int
	}{{"partitions", partitions}, {"leaves per partition", leaves}, {"fanout", fanout}} {
		if v.n < 1 || v.n&(v.n-1) != 0 {
			return Shape{}, fmt.Errorf("%w: %s %d is not a power of two", ErrConfig, v.name, v.n)
		}
	}
	s := Shape{
		PartitionBits: bits.TrailingZeros(uint(partitions)),
		LeafBits:      bits.TrailingZeros(uint(leaves)),
		FanoutBits:    bits.TrailingZeros(uint(fanout)),
	}
	return s, s.Validate()
}
