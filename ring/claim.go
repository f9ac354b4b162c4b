package ring

import (
	"cmp"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// The claim and fallback orders use their own fixed hashes of (node seed,
// partition), not Config.Hash: they are part of the ring layout, which every
// node of every version must compute identically, and they need good mixing
// even when tests inject a trivial key hash. Changing anything in this file
// changes the layout of existing clusters.

// Domain tags keep the two per-node seeds independent.
const (
	claimTag    = "quorumkv/ring/claim\x00"
	fallbackTag = "quorumkv/ring/fallback\x00"
)

// nodeSeed derives a per-node 64-bit seed for one use from the member's
// effective seed (Member.EffectiveSeed, the ID unless Seed is set).
func nodeSeed(tag string, name string) uint64 {
	var d xxhash.Digest
	d.Reset()
	_, _ = d.WriteString(tag)
	_, _ = d.WriteString(name)
	return d.Sum64()
}

// score is a well-mixed pseudo-random 64-bit value for (seed, partition).
func score(seed uint64, p int) uint64 {
	return mix64(seed + uint64(p+1)*0x9e3779b97f4a7c15)
}

// mix64 is the splitmix64 finaliser: a bijection on uint64 that spreads every
// input bit over every output bit.
func mix64(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	z ^= z >> 31
	return z
}

// claim assigns every partition to a member. members must be sorted in claim
// order (Joined, effective seed); the result maps partition -> index into
// members.
//
// The fold: member 0 owns all q partitions. Member k (so k+1 owners after it
// joins) takes floor(q/(k+1)) partitions, one at a time from whichever current
// owner is most loaded (ties: smallest effective seed); from an owner it takes
// that owner's partition with the smallest score(claimSeed(k), p). Only the
// effective seeds enter, never the IDs, so a member that takes over another's
// seed and Joined takes over its claims. Before each step
// the loads differ by at most one; the new member takes the floor share and
// the others end at floor or ceil, so they still differ by at most one.
//
// Cost: O(q) per member to pick the counts, O(q log(q/k)) to pick the
// partitions, so O(S·q·log q) for S members.
func claim(q int, members []Member) []uint16 {
	s := len(members)
	owner := make([]uint16, q)
	load := make([]int, s)
	load[0] = q
	take := make([]int, s)
	buckets := make([][]scored, s)
	names := make([]string, s)
	for i, m := range members {
		names[i] = m.EffectiveSeed()
	}
	for k := 1; k < s; k++ {
		// How many partitions to take from each existing owner.
		clear(take[:k])
		want := q / (k + 1)
		for range want {
			best := 0
			for j := 1; j < k; j++ {
				if load[j] > load[best] || (load[j] == load[best] && names[j] < names[best]) {
					best = j
				}
			}
			load[best]--
			take[best]++
		}
		load[k] = want

		// Which partitions: each victim's lowest-scoring ones for member k.
		seed := nodeSeed(claimTag, names[k])
		for j := range k {
			buckets[j] = buckets[j][:0]
		}
		for p, o := range owner {
			if take[o] > 0 {
				buckets[o] = append(buckets[o], scored{score: score(seed, p), idx: uint16(p)})
			}
		}
		for j := range k {
			if take[j] == 0 {
				continue
			}
			b := buckets[j]
			slices.SortFunc(b, func(x, y scored) int {
				if c := cmp.Compare(x.score, y.score); c != 0 {
					return c
				}
				return cmp.Compare(x.idx, y.idx)
			})
			for _, c := range b[:take[j]] {
				owner[c.idx] = uint16(k)
			}
		}
	}
	return owner
}

// scored pairs a score with a partition or member index.
type scored struct {
	score uint64
	idx   uint16
}
