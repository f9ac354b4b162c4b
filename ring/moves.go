package ring

import (
	"cmp"
	"fmt"
	"slices"
)

// A membership change replaces the committed ring from by a target ring to.
// The rank of a node in partition p is its position in p's preference order
// (0 is the owner); a non-member has rank infinity. A key whose bucket has
// replication factor d (1 <= d <= n) is stored by the first d entries, so a
// node G newly stores keys of p when its rank falls below n and below its old
// rank: rank_to(G) < n and rank_to(G) < rank_from(G), for the depths
// d in (rank_to(G), min(rank_from(G), n)]. Symmetrically, a node stops
// storing some keys of p when rank_from(G) < n and rank_to(G) > rank_from(G).
//
// Only the first n entries of each order matter: a rank at or past n in one
// ring is never below a rank under n in the other unless the node is absent.
// Moves, Gains and Lost therefore read min(n, Len()) entries per partition
// and ring, from the precomputed table when it is long enough, and cost
// O(Q·n) plus their output.

// Move is the data a node must receive in one partition for a membership
// change: the keys of the partition it stores under the target ring but not
// under the committed one.
type Move struct {
	// Partition is the partition whose keys move.
	Partition int
	// Node is the gainer: a member of the target ring whose rank in
	// Partition improved and is below n.
	Node NodeID
	// Sources are the nodes that hold the partition under the committed ring
	// (its first min(n, Len()) entries), without Node. Those that leave the
	// first n under the target ring (the replicas being replaced, whose copy
	// the gainer takes over) come first, then those that stay, each group in
	// preference order. It is never empty.
	Sources []NodeID
}

// Moves returns the moves of the membership change from ring from to ring to
// with replication factor n, sorted by (Partition, Node). n is clamped to
// each ring's Len(). A node appears at most once per partition. Moves of a
// ring to itself (or to an Equal ring) are empty. Each move lists up to n
// sources; a change that shifts many ranks, such as a leave with n close to
// Len(), can have up to Q·n moves.
//
// It returns ErrInvalidN if n < 1 and ErrPartitionMismatch if the rings have
// different partition counts.
func Moves(from, to *Ring, n int) ([]Move, error) {
	if err := checkChange(from, to, n); err != nil {
		return nil, err
	}
	c := newChange(from, to, n)
	var out []Move
	for p := range from.partitions {
		fr, tr := c.fromRows.row(p), c.toRows.row(p)
		c.mark(fr, tr)
		start := len(out)
		for rt, t := range tr {
			if c.gains(t, rt) {
				out = append(out, Move{Partition: p, Node: to.ids[t], Sources: c.sources(fr, c.toFrom[t])})
			}
		}
		slices.SortFunc(out[start:], func(a, b Move) int { return cmp.Compare(a.Node, b.Node) })
		c.unmark(fr, tr)
	}
	return out, nil
}

// Gains returns the moves of Moves(from, to, n) whose Node is id, in
// ascending partition order. It returns nil if id is not a member of to, if
// n < 1 or if the rings have different partition counts.
func Gains(from, to *Ring, id NodeID, n int) []Move {
	ti, ok := to.index[id]
	if !ok || checkChange(from, to, n) != nil {
		return nil
	}
	c := newChange(from, to, n)
	var out []Move
	for p := range from.partitions {
		tr := c.toRows.row(p)
		rt := slices.Index(tr, ti)
		if rt < 0 {
			continue
		}
		fr := c.fromRows.row(p)
		c.mark(fr, tr)
		if c.gains(ti, rt) {
			out = append(out, Move{Partition: p, Node: id, Sources: c.sources(fr, c.toFrom[ti])})
		}
		c.unmark(fr, tr)
	}
	return out
}

// Lost returns, in ascending order, the partitions for which id stores some
// keys under from (rank_from(id) < n) but not all of those under to
// (rank_to(id) > rank_from(id), or id is not a member of to): the partitions
// whose rows id may have to hand off and delete. n is clamped to each ring's
// Len(). It returns nil if id is not a member of from, if n < 1 or if the
// rings have different partition counts.
func Lost(from, to *Ring, id NodeID, n int) []int {
	fi, ok := from.index[id]
	if !ok || checkChange(from, to, n) != nil {
		return nil
	}
	ti, inTo := to.index[id]
	fromRows := rows{r: from, l: min(n, from.Len())}
	// rank_to(id) <= rank_from(id) < min(n, from.Len()) is decided by the
	// first min(n, from.Len(), to.Len()) entries of to.
	toRows := rows{r: to, l: min(n, from.Len(), to.Len())}
	var out []int
	for p := range from.partitions {
		rf := slices.Index(fromRows.row(p), fi)
		if rf < 0 {
			continue
		}
		if !inTo {
			out = append(out, p)
			continue
		}
		// If to has at most rf members, rank_to(id) < rf already.
		if tr := toRows.row(p); rf < len(tr) && !slices.Contains(tr[:rf+1], ti) {
			out = append(out, p)
		}
	}
	return out
}

func checkChange(from, to *Ring, n int) error {
	if n < 1 {
		return fmt.Errorf("%w: got %d", ErrInvalidN, n)
	}
	if from.partitions != to.partitions {
		return fmt.Errorf("%w: %d and %d", ErrPartitionMismatch, from.partitions, to.partitions)
	}
	return nil
}

// change holds the state Moves and Gains share while they walk the
// partitions: the first min(n, Len()) entries of both rings' orders, the
// member index translation, and per-partition marks.
type change struct {
	from     *Ring
	fromRows rows
	toRows   rows
	toFrom   []int32 // to member index -> from member index, or -1
	rankFrom []int32 // from member index -> rank in the marked partition, or -1
	kept     []bool  // from member index -> among the marked to row
}

func newChange(from, to *Ring, n int) *change {
	c := &change{
		from:     from,
		fromRows: rows{r: from, l: min(n, from.Len())},
		toRows:   rows{r: to, l: min(n, to.Len())},
		toFrom:   make([]int32, to.Len()),
		rankFrom: make([]int32, from.Len()),
		kept:     make([]bool, from.Len()),
	}
	for i, id := range to.ids {
		c.toFrom[i] = -1
		if f, ok := from.index[id]; ok {
			c.toFrom[i] = int32(f)
		}
	}
	for i := range c.rankFrom {
		c.rankFrom[i] = -1
	}
	return c
}

// mark records one partition's rows of from and to in rankFrom and kept;
// unmark clears them again in O(n).
func (c *change) mark(fr, tr []uint16) {
	for i, f := range fr {
		c.rankFrom[f] = int32(i)
	}
	for _, t := range tr {
		if f := c.toFrom[t]; f >= 0 {
			c.kept[f] = true
		}
	}
}

func (c *change) unmark(fr, tr []uint16) {
	for _, f := range fr {
		c.rankFrom[f] = -1
	}
	for _, t := range tr {
		if f := c.toFrom[t]; f >= 0 {
			c.kept[f] = false
		}
	}
}

// gains reports whether to member t, at rank rt of the marked partition,
// ranks better than under from. A rank_from past the marked row is at least
// min(n, from.Len()) > rt, or infinite.
func (c *change) gains(t uint16, rt int) bool {
	f := c.toFrom[t]
	return f < 0 || c.rankFrom[f] < 0 || int(c.rankFrom[f]) > rt
}

// sources lists the marked from row without from member skip (-1 for none):
// first the entries not kept by to, then the kept ones.
func (c *change) sources(fr []uint16, skip int32) []NodeID {
	out := make([]NodeID, 0, len(fr))
	for _, f := range fr {
		if !c.kept[f] {
			out = append(out, c.from.ids[f])
		}
	}
	for _, f := range fr {
		if c.kept[f] && int32(f) != skip {
			out = append(out, c.from.ids[f])
		}
	}
	return out
}

// rows reads the first l entries of each partition's preference order of r:
// a slice of the table when it is long enough, else computed into a buffer
// that the next call reuses.
type rows struct {
	r       *Ring
	l       int
	buf     []uint16
	scratch []scored
}

func (rs *rows) row(p int) []uint16 {
	if r := rs.r; rs.l <= r.rowLen {
		return r.table[p*r.rowLen : p*r.rowLen+rs.l]
	}
	rs.buf, rs.scratch = rs.r.slowRow(rs.buf, rs.scratch, p, rs.l)
	return rs.buf
}
