package antientropy

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// treesMeta names the meta value that holds the trees saved at a clean
// shutdown.
const treesMeta = "antientropy.trees"

// treesFormat is the first byte of a saved forest.
const treesFormat byte = 1

// ErrNoSavedTrees means no usable clean-shutdown snapshot of the trees
// exists: the trees must be rebuilt from the store.
var ErrNoSavedTrees = errors.New("antientropy: no saved trees")

// encodeLeaves writes every partition's leaves: format byte, shape code,
// then leaves in partition order, little-endian.
func (f *Forest) encodeLeaves() []byte {
	s := f.shape
	b := make([]byte, 5, 5+8*s.Partitions()*s.Leaves())
	b[0] = treesFormat
	binary.LittleEndian.PutUint32(b[1:], s.code())
	for p := 0; p < s.Partitions(); p++ {
		pt := f.part(p)
		pt.mu.Lock()
		for i := 0; i < s.Leaves(); i++ {
			b = binary.LittleEndian.AppendUint64(b, pt.tree.Leaf(i))
		}
		pt.mu.Unlock()
	}
	return b
}

// decodeLeaves loads leaves written by encodeLeaves for the same shape,
// onto the write events the forest received before.
func (f *Forest) decodeLeaves(b []byte) error {
	s := f.shape
	want := 5 + 8*s.Partitions()*s.Leaves()
	switch {
	case len(b) == 0:
		return ErrNoSavedTrees
	case len(b) != want || b[0] != treesFormat:
		return fmt.Errorf("%w: %d bytes, format %d", ErrNoSavedTrees, len(b), b[0])
	case binary.LittleEndian.Uint32(b[1:]) != s.code():
		return fmt.Errorf("%w: saved for another tree shape", ErrNoSavedTrees)
	}
	off := 5
	for p := 0; p < s.Partitions(); p++ {
		pt := f.part(p)
		pt.mu.Lock()
		for i := 0; i < s.Leaves(); i++ {
			// A leaf is the XOR of its records' hashes: write events
			// applied since New (to a zero leaf) stay on top of the
			// snapshot.
			pt.tree.SetLeaf(i, binary.LittleEndian.Uint64(b[off:])^pt.tree.Leaf(i))
			off += 8
		}
		pt.mu.Unlock()
	}
	return nil
}

// SaveTrees stores the trees for the next Start, so a clean restart skips
// the rebuild. Call it at shutdown after the last write to the store (the
// node calls it after its transport closed, just before the store closes).
// The snapshot is consumed by the next Start: after a crash there is none,
// and the trees are rebuilt from the store.
func (s *Service) SaveTrees() error {
	if s.meta == nil {
		return nil
	}
	if err := s.meta.PutMeta(treesMeta, s.forest.encodeLeaves()); err != nil {
		return fmt.Errorf("antientropy: save trees: %w", err)
	}
	return nil
}

// loadTrees loads and consumes the clean-shutdown snapshot.
func (s *Service) loadTrees() error {
	if s.meta == nil {
		return ErrNoSavedTrees
	}
	b, err := s.meta.GetMeta(treesMeta)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrNoSavedTrees, err)
	}
	// Consume the snapshot first: if this process crashes later, the next
	// start must rebuild instead of trusting trees that missed writes.
	if err := s.meta.PutMeta(treesMeta, nil); err != nil {
		return fmt.Errorf("%w: %v", ErrNoSavedTrees, err)
	}
	return s.forest.decodeLeaves(b)
}
