package ring

import (
	"fmt"
	"slices"
)

// PreferenceList returns the preference list of key: the n primaries (the
// partition owner, then the next n-1 members of its fallback order), followed
// by the remaining members in fallback order, at most Config.MaxFallbacks of
// them when that is set. All entries are distinct.
//
// It returns ErrInvalidN if n < 1 and ErrTooFewMembers if n > Len().
func (r *Ring) PreferenceList(key []byte, n int) ([]NodeID, error) {
	if err := r.checkN(n); err != nil {
		return nil, err
	}
	p := int(r.hash(key) >> r.shift)
	return r.appendList(make([]NodeID, 0, r.listLen(n)), p, n), nil
}

// AppendPreferenceList is PreferenceList appending to dst; it does not
// allocate when dst has room. On error dst is returned unchanged.
func (r *Ring) AppendPreferenceList(dst []NodeID, key []byte, n int) ([]NodeID, error) {
	if err := r.checkN(n); err != nil {
		return dst, err
	}
	p := int(r.hash(key) >> r.shift)
	return r.appendList(dst, p, n), nil
}

// PartitionPreference is PreferenceList by partition.
func (r *Ring) PartitionPreference(p, n int) ([]NodeID, error) {
	return r.AppendPartitionPreference(nil, p, n)
}

// AppendPartitionPreference is PartitionPreference appending to dst.
func (r *Ring) AppendPartitionPreference(dst []NodeID, p, n int) ([]NodeID, error) {
	if p < 0 || p >= r.partitions {
		return dst, fmt.Errorf("%w: %d not in [0, %d)", ErrPartitionRange, p, r.partitions)
	}
	if err := r.checkN(n); err != nil {
		return dst, err
	}
	return r.appendList(dst, p, n), nil
}

// PartitionsFor returns, in ascending order, the partitions for which id is
// among the first n entries of the preference list (the partitions id
// replicates with replication factor n). n is clamped to Len(). It returns nil
// if id is not a member or n < 1.
func (r *Ring) PartitionsFor(id NodeID, n int) []int {
	idx, ok := r.index[id]
	if !ok || n < 1 {
		return nil
	}
	rs := rows{r: r, l: min(n, len(r.members))}
	var out []int
	for p := range r.partitions {
		if slices.Contains(rs.row(p), idx) {
			out = append(out, p)
		}
	}
	return out
}

func (r *Ring) checkN(n int) error {
	if n < 1 {
		return fmt.Errorf("%w: got %d", ErrInvalidN, n)
	}
	if n > len(r.members) {
		return fmt.Errorf("%w: n %d > %d members", ErrTooFewMembers, n, len(r.members))
	}
	return nil
}

// listLen is the length of a preference list for n primaries.
func (r *Ring) listLen(n int) int {
	if r.maxFallbacks == 0 {
		return len(r.members)
	}
	return min(len(r.members), n+r.maxFallbacks)
}

// appendList appends partition p's preference list for n primaries.
func (r *Ring) appendList(dst []NodeID, p, n int) []NodeID {
	l := r.listLen(n)
	dst = slices.Grow(dst, l)
	var row []uint16
	if l <= r.rowLen {
		row = r.table[p*r.rowLen : p*r.rowLen+l]
	} else {
		row, _ = r.slowRow(nil, nil, p, l)
	}
	for _, i := range row {
		dst = append(dst, r.ids[i])
	}
	return dst
}

// slowRow computes the first l entries of partition p's preference order for
// rows longer than the table holds, reusing row and scratch when possible.
func (r *Ring) slowRow(row []uint16, scratch []scored, p, l int) ([]uint16, []scored) {
	row = slices.Grow(row[:0], l)[:l]
	scratch = slices.Grow(scratch[:0], len(r.members))
	r.order(row, p, r.table[p*r.rowLen], scratch)
	return row, scratch
}
