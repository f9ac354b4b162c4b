package ring

import (
	"testing"
)

const (
	balanceKeys     = 200_000
	maxLoadRatio    = 1.10 // most loaded node / mean, at the default Q
	maxMovedToIdeal = 1.15 // keys moved on a join / the ideal 1/(S+1)
)

// At the default partition count, with 3 to 16 nodes, no node owns more than
// 1.10× the mean share, counted by partitions and by 200k random keys hashed
// with the default xxhash.
func TestBalance(t *testing.T) {
	keys := randomKeys(balanceKeys)
	for s := 3; s <= 16; s++ {
		r := mustNew(t, DefaultConfig(), nodes(s))
		byPartitions, byKeys := partitionBalance(r), keyBalance(r, keys)
		t.Logf("%2d nodes: max/mean %.4f by partitions, %.4f by %d keys", s, byPartitions, byKeys, len(keys))
		if byPartitions > maxLoadRatio || byKeys > maxLoadRatio {
			t.Errorf("%d nodes: max/mean %.4f by partitions, %.4f by keys; want <= %.2f",
				s, byPartitions, byKeys, maxLoadRatio)
		}
	}
}

// Adding a node to S nodes moves at most 1.15× the ideal 1/(S+1) of the keys,
// and every moved key moves to the new node.
func TestMovementOnJoin(t *testing.T) {
	keys := randomKeys(balanceKeys)
	for s := 3; s <= 15; s++ {
		before := mustNew(t, DefaultConfig(), nodes(s))
		after := mustNew(t, DefaultConfig(), nodes(s+1))
		newcomer := nodes(s + 1)[s].ID
		moved, elsewhere := movement(before, after, keys, newcomer)
		ideal := 1 / float64(s+1)
		t.Logf("%2d -> %2d nodes: moved %.4f of keys, ideal %.4f, ratio %.4f, %d moved elsewhere",
			s, s+1, moved, ideal, moved/ideal, elsewhere)
		if moved/ideal > maxMovedToIdeal || elsewhere != 0 {
			t.Errorf("%d -> %d nodes: moved/ideal %.4f (want <= %.2f), %d keys moved to old nodes (want 0)",
				s, s+1, moved/ideal, maxMovedToIdeal, elsewhere)
		}
		if moved == 0 {
			t.Errorf("%d -> %d nodes: no key moved to the new node", s, s+1)
		}
	}
}

// Replica load (partitions a node holds among the first N=3 of the lists) is
// not balanced exactly by construction; this bounds how far rendezvous
// fallbacks let it drift at the default Q.
func TestReplicaBalance(t *testing.T) {
	for _, s := range []int{3, 4, 5, 8, 12, 16} {
		r := mustNew(t, DefaultConfig(), nodes(s))
		most := 0
		for _, m := range r.Members() {
			most = max(most, len(r.PartitionsFor(m.ID, 3)))
		}
		ratio := float64(most) / (float64(r.PartitionCount()) * 3 / float64(s))
		t.Logf("%2d nodes: replica (N=3) load max/mean %.4f", s, ratio)
		if ratio > 1.35 {
			t.Errorf("%d nodes: replica load max/mean %.4f, want <= 1.35", s, ratio)
		}
	}
}
