package ring

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// naiveMoves computes Moves from the definition, on full preference lists.
func naiveMoves(tb fataler, from, to *Ring, n int) []Move {
	tb.Helper()
	nf, nt := min(n, from.Len()), min(n, to.Len())
	var out []Move
	for p := range from.PartitionCount() {
		fo, tl := fullOrder(tb, from, p), fullOrder(tb, to, p)
		var ms []Move
		for rt, g := range tl[:nt] {
			if rf := slices.Index(fo, g); rf >= 0 && rf <= rt {
				continue
			}
			var replaced, stay []NodeID
			for _, x := range fo[:nf] {
				switch {
				case x == g:
				case slices.Contains(tl[:nt], x):
					stay = append(stay, x)
				default:
					replaced = append(replaced, x)
				}
			}
			ms = append(ms, Move{Partition: p, Node: g, Sources: append(replaced, stay...)})
		}
		slices.SortFunc(ms, func(a, b Move) int { return cmp.Compare(a.Node, b.Node) })
		out = append(out, ms...)
	}
	return out
}

// naiveLost computes Lost from the definition, on full preference lists.
func naiveLost(tb fataler, from, to *Ring, id NodeID, n int) []int {
	tb.Helper()
	var out []int
	for p := range from.PartitionCount() {
		rf := slices.Index(fullOrder(tb, from, p), id)
		if rf < 0 || rf >= n {
			continue
		}
		if rt := slices.Index(fullOrder(tb, to, p), id); rt < 0 || rt > rf {
			out = append(out, p)
		}
	}
	return out
}

func equalMoves(a, b []Move) bool {
	return slices.EqualFunc(a, b, func(x, y Move) bool {
		return x.Partition == y.Partition && x.Node == y.Node && slices.Equal(x.Sources, y.Sources)
	})
}

// rank is id's position in p's full order, or -1 if it is not a member.
func rank(tb fataler, r *Ring, p int, id NodeID) int {
	tb.Helper()
	return slices.Index(fullOrder(tb, r, p), id)
}

// newReplicas counts the moves whose node was not among from's first n of
// the partition: the replica slots filled by a node that had none of its keys.
func newReplicas(tb fataler, from *Ring, moves []Move, n int) int {
	tb.Helper()
	c := 0
	for _, m := range moves {
		if rf := rank(tb, from, m.Partition, m.Node); rf < 0 || rf >= n {
			c++
		}
	}
	return c
}

// newRing is mustNew for rapid.
func newRing(tb fataler, cfg Config, ms []Member) *Ring {
	tb.Helper()
	r, err := New(cfg, ms)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return r
}

func mustMoves(tb fataler, from, to *Ring, n int) []Move {
	tb.Helper()
	ms, err := Moves(from, to, n)
	if err != nil {
		tb.Fatalf("Moves(n=%d): %v", n, err)
	}
	return ms
}

// A worked example on the golden layouts (Q=8, TestLayoutGolden) with n=2:
// d joins a, b, c.
//
//	p  three (from)  four (to)  moves
//	0  c b a         c d b a    d gains 1 (replaces b)
//	1  a b c         a b c d    -
//	2  b a c         d b a c    d gains 0 (replaces a)
//	3  c b a         c b a d    -
//	4  a b c         a b c d    -
//	5  b a c         b a c d    -
//	6  a b c         d b a c    d gains 0 (replaces a)
//	7  b c a         b c d a    -
func TestMovesGolden(t *testing.T) {
	a, b, c, d := Member{ID: "a", Joined: 1}, Member{ID: "b", Joined: 2}, Member{ID: "c", Joined: 3}, Member{ID: "d", Joined: 4}
	three := mustNew(t, identityConfig(8), []Member{a, b, c})
	four := mustNew(t, identityConfig(8), []Member{a, b, c, d})
	tests := []struct {
		name     string
		from, to *Ring
		n        int
		want     []Move
	}{
		{"join n=2", three, four, 2, []Move{
			{0, "d", []NodeID{"b", "c"}},
			{2, "d", []NodeID{"a", "b"}},
			{6, "d", []NodeID{"a", "b"}},
		}},
		{"join n=1", three, four, 1, []Move{
			{2, "d", []NodeID{"b"}},
			{6, "d", []NodeID{"a"}},
		}},
		// n=3 is all of three: d takes a replica slot wherever it is
		// among the first 3, replacing the member it pushes to rank 3.
		{"join n=3", three, four, 3, []Move{
			{0, "d", []NodeID{"a", "c", "b"}},
			{2, "d", []NodeID{"c", "b", "a"}},
			{6, "d", []NodeID{"c", "a", "b"}},
			{7, "d", []NodeID{"a", "b", "c"}},
		}},
		// d leaves: the claims fold back, and those behind d move up: at
		// p2 b is promoted from rank 1 to the owner and a takes d's slot.
		{"leave n=2", four, three, 2, []Move{
			{0, "b", []NodeID{"d", "c"}},
			{2, "a", []NodeID{"d", "b"}},
			{2, "b", []NodeID{"d"}},
			{6, "a", []NodeID{"d", "b"}},
		}},
		{"same ring", four, four, 2, nil},
		{"n past both sizes", three, four, 9, []Move{
			{0, "d", []NodeID{"c", "b", "a"}},
			{1, "d", []NodeID{"a", "b", "c"}},
			{2, "d", []NodeID{"b", "a", "c"}},
			{3, "d", []NodeID{"c", "b", "a"}},
			{4, "d", []NodeID{"a", "b", "c"}},
			{5, "d", []NodeID{"b", "a", "c"}},
			{6, "d", []NodeID{"a", "b", "c"}},
			{7, "d", []NodeID{"b", "c", "a"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := mustMoves(t, tt.from, tt.to, tt.n)
			if !equalMoves(got, tt.want) {
				t.Fatalf("Moves = %v, want %v", got, tt.want)
			}
			if naive := naiveMoves(t, tt.from, tt.to, tt.n); !equalMoves(naive, tt.want) {
				t.Fatalf("naive model = %v, want %v", naive, tt.want)
			}
		})
	}
}

func TestLostGolden(t *testing.T) {
	ms := []Member{{ID: "a", Joined: 1}, {ID: "b", Joined: 2}, {ID: "c", Joined: 3}, {ID: "d", Joined: 4}}
	three, four := mustNew(t, identityConfig(8), ms[:3]), mustNew(t, identityConfig(8), ms)
	tests := []struct {
		from, to *Ring
		id       NodeID
		n        int
		want     []int
	}{
		{three, four, "a", 2, []int{2, 6}}, // replaced by d
		{three, four, "b", 2, []int{0, 2}}, // at 2 it keeps depth 2, not depth 1
		{three, four, "c", 2, nil},
		{three, four, "a", 1, []int{6}},
		{three, four, "a", 3, []int{0, 2, 6, 7}}, // pushed back a rank by d
		{three, four, "d", 2, nil},               // not in from
		{four, three, "d", 2, []int{0, 2, 6}},    // leaves
		{four, three, "a", 2, nil},
		{four, four, "a", 4, nil},
		{three, four, "a", 0, nil},
		{three, mustNew(t, identityConfig(16), ms), "a", 2, nil},
	}
	for _, tt := range tests {
		if got := Lost(tt.from, tt.to, tt.id, tt.n); !slices.Equal(got, tt.want) {
			t.Errorf("Lost(%s, n=%d) = %v, want %v", tt.id, tt.n, got, tt.want)
		}
	}
}

func TestMovesErrors(t *testing.T) {
	r8, r16 := mustNew(t, identityConfig(8), nodes(3)), mustNew(t, identityConfig(16), nodes(3))
	tests := []struct {
		name     string
		from, to *Ring
		n        int
		want     error
	}{
		{"n=0", r8, r8, 0, ErrInvalidN},
		{"n<0", r8, r8, -3, ErrInvalidN},
		{"partition counts", r8, r16, 2, ErrPartitionMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ms, err := Moves(tt.from, tt.to, tt.n); !errors.Is(err, tt.want) || ms != nil {
				t.Fatalf("Moves = %v, %v; want nil, %v", ms, err, tt.want)
			}
			if g := Gains(tt.from, tt.to, "node-01", tt.n); g != nil {
				t.Fatalf("Gains = %v, want nil", g)
			}
			if l := Lost(tt.from, tt.to, "node-01", tt.n); l != nil {
				t.Fatalf("Lost = %v, want nil", l)
			}
		})
	}
}

func TestMovesSameRingEmpty(t *testing.T) {
	for _, s := range []int{1, 2, 3, 7, 16} {
		r := mustNew(t, DefaultConfig(), nodes(s))
		rev := nodes(s)
		slices.Reverse(rev)
		same := mustNew(t, DefaultConfig(), rev)
		for n := 1; n <= s+1; n++ {
			for _, to := range []*Ring{r, same} {
				if ms := mustMoves(t, r, to, n); len(ms) != 0 {
					t.Fatalf("%d nodes, n=%d: Moves of a ring to itself = %v", s, n, ms)
				}
				for _, m := range r.Members() {
					if l := Lost(r, to, m.ID, n); len(l) != 0 {
						t.Fatalf("%d nodes, n=%d: Lost(%s) = %v", s, n, m.ID, l)
					}
				}
			}
		}
	}
}

// moveRatio is the number of moves of a change over ideal.
type moveRatio struct {
	moves int
	ideal float64
}

// (d) A node that joins last takes its share of the replica slots and
// nothing else moves: at most 1.2× the ideal Q·n/(k+1) moves, all to it,
// exactly its replica slots. The ratios are in the package doc.
func TestMovesJoinNearIdeal(t *testing.T) {
	const q, n, maxRatio = 256, 3, 1.2
	for k := 3; k <= 16; k++ {
		from := mustNew(t, DefaultConfig(), nodes(k))
		to := mustNew(t, DefaultConfig(), nodes(k+1))
		newcomer := nodes(k + 1)[k].ID
		moves := mustMoves(t, from, to, n)
		ideal := float64(q*n) / float64(k+1)
		ratio := float64(len(moves)) / ideal
		t.Logf("%2d -> %2d nodes, n=%d: %3d moves, ideal %.1f, ratio %.3f", k, k+1, n, len(moves), ideal, ratio)
		if ratio > maxRatio {
			t.Errorf("%d -> %d nodes: %d moves, %.3f× the ideal %.1f; want <= %.1f×", k, k+1, len(moves), ratio, ideal, maxRatio)
		}
		for _, m := range moves {
			if m.Node != newcomer {
				t.Fatalf("%d -> %d nodes: %s gains partition %d, not the newcomer", k, k+1, m.Node, m.Partition)
			}
		}
		if want := len(to.PartitionsFor(newcomer, n)); len(moves) != want {
			t.Errorf("%d -> %d nodes: %d moves, newcomer replicates %d partitions", k, k+1, len(moves), want)
		}
	}
}

// (e) When the last-joined member leaves, each of its replica slots is
// filled by exactly one node that held none of the partition's keys, and
// nothing else changes hands; the nodes behind it in the first n also move
// up (they gain the keys of buckets with smaller replication factors).
func TestMovesLeaveFillsSlots(t *testing.T) {
	const n = 3
	for k := 4; k <= 16; k++ {
		from := mustNew(t, DefaultConfig(), nodes(k))
		to := mustNew(t, DefaultConfig(), nodes(k-1))
		leaver := nodes(k)[k-1].ID
		held := from.PartitionsFor(leaver, n)
		moves := mustMoves(t, from, to, n)
		if got := newReplicas(t, from, moves, n); got != len(held) {
			t.Errorf("%d -> %d nodes: %d new replicas, the leaver held %d slots", k, k-1, got, len(held))
		}
		filled := map[int]bool{}
		for _, m := range moves {
			if m.Node == leaver || slices.Contains(m.Sources, m.Node) {
				t.Fatalf("bad move %v", m)
			}
			if !slices.Contains(held, m.Partition) {
				t.Fatalf("%d -> %d nodes: move %v in a partition the leaver did not hold", k, k-1, m)
			}
			if rf := rank(t, from, m.Partition, m.Node); rf >= n {
				filled[m.Partition] = true
			}
		}
		if len(filled) != len(held) {
			t.Errorf("%d -> %d nodes: %d of the leaver's %d partitions got a new replica", k, k-1, len(filled), len(held))
		}
		if lost := Lost(from, to, leaver, n); !slices.Equal(lost, held) {
			t.Errorf("Lost(leaver) = %v, want all it held %v", lost, held)
		}
		t.Logf("%2d -> %2d nodes, n=%d: leaver held %d slots; %d moves (%d of them promotions)",
			k, k-1, n, len(held), len(moves), len(moves)-len(held))
	}
}

// A replacement with the old member's seed and Joined moves exactly the old
// member's replica slots, each to the replacement with the old member as its
// first source.
func TestMovesReplacement(t *testing.T) {
	for _, s := range []int{1, 3, 8} {
		ms := nodes(s)
		from := mustNew(t, DefaultConfig(), ms)
		for i, old := range ms {
			to := mustNew(t, DefaultConfig(), replaced(ms, i, "new"))
			for n := 1; n <= s; n++ {
				moves := mustMoves(t, from, to, n)
				held := from.PartitionsFor(old.ID, n)
				if len(moves) != len(held) {
					t.Fatalf("S=%d replace %s n=%d: %d moves, %d slots", s, old.ID, n, len(moves), len(held))
				}
				for j, m := range moves {
					want, _ := from.PartitionPreference(m.Partition, n)
					want = slices.DeleteFunc(want[:n], func(id NodeID) bool { return id == old.ID })
					want = append([]NodeID{old.ID}, want...)
					if m.Partition != held[j] || m.Node != "new" || !slices.Equal(m.Sources, want) {
						t.Fatalf("S=%d replace %s n=%d: move %v, want {%d new %q}", s, old.ID, n, m, held[j], want)
					}
				}
				if lost := Lost(from, to, old.ID, n); !slices.Equal(lost, held) {
					t.Fatalf("Lost(%s) = %v, want %v", old.ID, lost, held)
				}
			}
		}
	}
}

// genChange draws a committed membership and a target reached from it by
// one to four joins (at any Joined, so some refold the claims), leaves and
// replacements. New IDs contain '-', which genRing never draws.
func genChange(t *rapid.T) (Config, []Member, []Member) {
	cfg, ms := genRing(t, 1, 16)
	next := slices.Clone(ms)
	for i := range rapid.IntRange(1, 4).Draw(t, "changes") {
		switch rapid.SampledFrom([]string{"join", "leave", "replace"}).Draw(t, fmt.Sprintf("change%d", i)) {
		case "join":
			if len(next) < cfg.Partitions {
				next = append(next, Member{ID: fmt.Sprintf("new-%d", i), Joined: int64(rapid.IntRange(0, 6).Draw(t, fmt.Sprintf("joined%d", i)))})
			}
		case "leave":
			if len(next) > 1 {
				j := rapid.IntRange(0, len(next)-1).Draw(t, fmt.Sprintf("leaver%d", i))
				next = slices.Delete(next, j, j+1)
			}
		case "replace":
			j := rapid.IntRange(0, len(next)-1).Draw(t, fmt.Sprintf("replaced%d", i))
			next = replaced(next, j, fmt.Sprintf("rep-%d", i))
		}
	}
	return cfg, ms, next
}

// buildBoth builds the two rings with a drawn table budget, so that some
// draws read rows computed on demand.
func buildBoth(t *rapid.T, cfg Config, a, b []Member) (*Ring, *Ring) {
	budget := rapid.SampledFrom([]int{tableBudget, 1, 2 * cfg.Partitions}).Draw(t, "budget")
	from, err := build(cfg, a, budget)
	if err != nil {
		t.Fatal(err)
	}
	to, err := build(cfg, b, budget)
	if err != nil {
		t.Fatal(err)
	}
	return from, to
}

// (a), (b), (c): Moves is exactly the definition, for random changes.
func TestPropertyMoves(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg, a, b := genChange(t)
		from, to := buildBoth(t, cfg, a, b)
		n := rapid.IntRange(1, max(from.Len(), to.Len())+1).Draw(t, "n")
		moves := mustMoves(t, from, to, n)
		if want := naiveMoves(t, from, to, n); !equalMoves(moves, want) {
			t.Fatalf("Moves = %v\nwant %v", moves, want)
		}
		nf, nt := min(n, from.Len()), min(n, to.Len())
		type pg struct {
			p int
			g NodeID
		}
		seen := map[pg]bool{}
		for i, m := range moves {
			if i > 0 && cmp.Or(cmp.Compare(moves[i-1].Partition, m.Partition), cmp.Compare(moves[i-1].Node, m.Node)) >= 0 {
				t.Fatalf("moves not sorted by (partition, node) at %d: %v", i, moves)
			}
			rf, rt := rank(t, from, m.Partition, m.Node), rank(t, to, m.Partition, m.Node)
			// (b) only improved ranks under n move.
			if rt < 0 || rt >= nt || (rf >= 0 && rf <= rt) {
				t.Fatalf("move %v: rank %d -> %d, n=%d", m, rf, rt, n)
			}
			// (c) the sources are from's first n without the gainer.
			firstN, _ := from.PartitionPreference(m.Partition, nf)
			want := slices.DeleteFunc(slices.Clone(firstN[:nf]), func(id NodeID) bool { return id == m.Node })
			got := slices.Sorted(slices.Values(m.Sources))
			if slices.Contains(m.Sources, m.Node) || !slices.Equal(got, slices.Sorted(slices.Values(want))) {
				t.Fatalf("move %v: sources are not %q", m, want)
			}
			seen[pg{m.Partition, m.Node}] = true
		}
		// (a) every improved rank under n has its move, once (sorted and
		// distinct above).
		for p := range cfg.Partitions {
			l, _ := to.PartitionPreference(p, nt)
			for rt, g := range l[:nt] {
				if rf := rank(t, from, p, g); (rf < 0 || rf > rt) && !seen[pg{p, g}] {
					t.Fatalf("partition %d: %s improves %d -> %d with no move", p, g, rf, rt)
				}
			}
		}
		// Gains is Moves for one node.
		for _, m := range to.Members() {
			want := slices.DeleteFunc(slices.Clone(moves), func(x Move) bool { return x.Node != m.ID })
			if got := Gains(from, to, m.ID, n); !equalMoves(got, want) {
				t.Fatalf("Gains(%s) = %v, want %v", m.ID, got, want)
			}
		}
	})
}

// (f) Lost is the definition, and every partition a node loses keys of is
// gained by another node at a depth it held, unless the target ring is too
// small to have a replica at that depth.
func TestPropertyLost(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg, a, b := genChange(t)
		from, to := buildBoth(t, cfg, a, b)
		n := rapid.IntRange(1, max(from.Len(), to.Len())+1).Draw(t, "n")
		moves := mustMoves(t, from, to, n)
		for _, m := range from.Members() {
			lost := Lost(from, to, m.ID, n)
			if want := naiveLost(t, from, to, m.ID, n); !slices.Equal(lost, want) {
				t.Fatalf("Lost(%s) = %v, want %v", m.ID, lost, want)
			}
			for _, p := range lost {
				rf := rank(t, from, p, m.ID)
				if to.Len() <= rf {
					continue // the ring shrank below depth rf+1
				}
				if !slices.ContainsFunc(moves, func(x Move) bool {
					return x.Partition == p && x.Node != m.ID && rank(t, to, p, x.Node) <= rf
				}) {
					t.Fatalf("%s loses partition %d at rank %d and nobody gains it", m.ID, p, rf)
				}
			}
		}
		if l := Lost(from, to, "not-a-member", n); l != nil {
			t.Fatalf("Lost(non-member) = %v", l)
		}
		if g := Gains(from, to, "not-a-member", n); g != nil {
			t.Fatalf("Gains(non-member) = %v", g)
		}
	})
}

// (d), (e) on random rings: a member that joins last moves only to itself,
// its replica slots; a member that leaves has each of its slots filled by a
// new replica, exactly one per slot if it had joined last.
func TestPropertyJoinLeave(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg, ms := genRing(t, 2, 24)
		n := rapid.IntRange(1, len(ms)).Draw(t, "n")
		big := newRing(t, cfg, ms)
		last := big.Members()[len(ms)-1].ID
		small := newRing(t, cfg, slices.DeleteFunc(slices.Clone(ms), func(m Member) bool { return m.ID == last }))
		join := mustMoves(t, small, big, n)
		if want := len(big.PartitionsFor(last, n)); len(join) != want {
			t.Fatalf("join of %s: %d moves, it replicates %d partitions", last, len(join), want)
		}
		for _, m := range join {
			if m.Node != last {
				t.Fatalf("join of %s: move %v", last, m)
			}
		}
		leaver := rapid.SampledFrom(ms).Draw(t, "leaver").ID
		for _, id := range []NodeID{last, leaver} {
			to := newRing(t, cfg, slices.DeleteFunc(slices.Clone(ms), func(m Member) bool { return m.ID == id }))
			moves := mustMoves(t, big, to, n)
			held := big.PartitionsFor(id, n)
			if len(ms) <= n {
				// Everyone held every key; nothing needs a new replica.
				if newReplicas(t, big, moves, n) != 0 {
					t.Fatalf("leave of %s from %d nodes with n=%d: new replicas %v", id, len(ms), n, moves)
				}
				continue
			}
			got := newReplicas(t, big, moves, n)
			if (id == last && got != len(held)) || got < len(held) {
				t.Fatalf("leave of %s (last: %v): %d new replicas for %d slots", id, id == last, got, len(held))
			}
			for _, p := range held {
				if !slices.ContainsFunc(moves, func(m Move) bool { return m.Partition == p && rank(t, big, p, m.Node) >= n }) {
					t.Fatalf("leave of %s: partition %d has no new replica", id, p)
				}
			}
		}
	})
}
