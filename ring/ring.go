package ring

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// tableBudget bounds the precomputed preference table to this many entries
// (2 bytes each). At the default 256 partitions every row holds every member
// up to the maximum of 256 members; only rings with many partitions and many
// members compute the tail of long preference lists on demand.
const tableBudget = 1 << 22

// Ring is an immutable assignment of the Q partitions of the hash space to
// members, with a precomputed preference list per partition. It is safe for
// concurrent use. Build a new Ring on every membership change and publish it
// with a Holder; never modify one in place.
type Ring struct {
	partitions   int
	shift        uint // 64 - log2(partitions)
	hash         HashFunc
	maxFallbacks int

	members []Member // claim order: (Joined, effective seed)
	ids     []NodeID // ids[i] == members[i].ID
	names   []string // names[i] == members[i].EffectiveSeed()
	index   map[NodeID]uint16
	seeds   []uint64 // per-member fallback seeds, hashed from names

	// table holds, for every partition p, the first rowLen entries of its
	// preference order as member indices: table[p*rowLen] is the owner.
	rowLen int
	table  []uint16

	version uint64
}

// New builds the ring of members under cfg. The order of members does not
// matter; the result depends only on the set.
func New(cfg Config, members []Member) (*Ring, error) {
	return build(cfg, members, tableBudget)
}

func build(cfg Config, members []Member, budget int) (*Ring, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sorted, err := sortedMembers(members, cfg.Partitions)
	if err != nil {
		return nil, err
	}
	q, s := cfg.Partitions, len(sorted)
	r := &Ring{
		partitions:   q,
		shift:        uint(64 - (bits.Len(uint(q)) - 1)),
		hash:         cfg.Hash,
		maxFallbacks: cfg.MaxFallbacks,
		members:      sorted,
		ids:          make([]NodeID, s),
		names:        make([]string, s),
		index:        make(map[NodeID]uint16, s),
		seeds:        make([]uint64, s),
		rowLen:       min(s, max(1, budget/q)),
	}
	for i, m := range sorted {
		r.ids[i] = m.ID
		r.names[i] = m.EffectiveSeed()
		r.index[m.ID] = uint16(i)
		r.seeds[i] = nodeSeed(fallbackTag, r.names[i])
	}
	owners := claim(q, sorted)
	r.table = make([]uint16, q*r.rowLen)
	scratch := make([]scored, 0, s)
	for p, o := range owners {
		r.order(r.table[p*r.rowLen:(p+1)*r.rowLen], p, o, scratch)
	}
	r.version = membershipVersion(q, sorted)
	return r, nil
}

// order fills dst with the first len(dst) entries of partition p's preference
// order: owner first, then the other members by descending
// score(fallbackSeed, p) (rendezvous hashing), ties by effective seed.
func (r *Ring) order(dst []uint16, p int, owner uint16, scratch []scored) {
	if len(dst) == 0 {
		return
	}
	dst[0] = owner
	if len(dst) == 1 {
		return
	}
	scratch = scratch[:0]
	for i, seed := range r.seeds {
		if uint16(i) != owner {
			scratch = append(scratch, scored{score: score(seed, p), idx: uint16(i)})
		}
	}
	slices.SortFunc(scratch, func(a, b scored) int {
		switch {
		case a.score > b.score:
			return -1
		case a.score < b.score:
			return 1
		}
		switch {
		case r.names[a.idx] < r.names[b.idx]:
			return -1
		case r.names[a.idx] > r.names[b.idx]:
			return 1
		}
		return 0
	})
	for i := range dst[1:] {
		dst[i+1] = scratch[i].idx
	}
}

// seededFlag marks, in membershipVersion, the ID length of a member with a
// Seed, whose seed follows its Joined. Members without one hash as they did
// before seeds existed, so the versions of existing rings are unchanged.
const seededFlag = 1 << 63

// membershipVersion hashes the layout inputs: Q and the sorted members.
func membershipVersion(q int, members []Member) uint64 {
	var d xxhash.Digest
	d.Reset()
	var buf [8]byte
	_, _ = d.WriteString("quorumkv/ring/v1\x00")
	binary.BigEndian.PutUint64(buf[:], uint64(q))
	_, _ = d.Write(buf[:])
	for _, m := range members {
		n := uint64(len(m.ID))
		if m.Seed != "" {
			n |= seededFlag
		}
		binary.BigEndian.PutUint64(buf[:], n)
		_, _ = d.Write(buf[:])
		_, _ = d.WriteString(m.ID)
		binary.BigEndian.PutUint64(buf[:], uint64(m.Joined))
		_, _ = d.Write(buf[:])
		if m.Seed != "" {
			binary.BigEndian.PutUint64(buf[:], uint64(len(m.Seed)))
			_, _ = d.Write(buf[:])
			_, _ = d.WriteString(m.Seed)
		}
	}
	return d.Sum64()
}

// PartitionCount returns Q.
func (r *Ring) PartitionCount() int { return r.partitions }

// Len returns the number of members.
func (r *Ring) Len() int { return len(r.members) }

// Members returns the members in claim order (Joined, then effective seed).
func (r *Ring) Members() []Member { return slices.Clone(r.members) }

// Contains reports whether id is a member.
func (r *Ring) Contains(id NodeID) bool {
	_, ok := r.index[id]
	return ok
}

// Seed returns the effective seed of member id (its Seed, or its ID when
// Seed is empty) and whether id is a member. A node replacing id joins as
// Member{ID: new, Seed: seed, Joined: id's Joined} to take over its layout.
func (r *Ring) Seed(id NodeID) (string, bool) {
	i, ok := r.index[id]
	if !ok {
		return "", false
	}
	return r.names[i], true
}

// Version returns a hash of the inputs that determine the layout (partition
// count and membership, including the members' Seeds). Nodes whose rings have equal versions route keys
// identically, provided they use the same HashFunc.
func (r *Ring) Version() uint64 { return r.version }

// Equal reports whether r and o have the same partition count and the same
// membership, hence the same layout. The hash functions are not compared.
func (r *Ring) Equal(o *Ring) bool {
	if r == nil || o == nil {
		return r == o
	}
	return r.partitions == o.partitions && slices.Equal(r.members, o.members)
}

// Partition returns the partition of key: the top log2(Q) bits of its hash.
func (r *Ring) Partition(key []byte) int {
	return int(r.hash(key) >> r.shift)
}

// Owner returns the member that primarily owns partition p. It panics if p is
// out of range.
func (r *Ring) Owner(p int) NodeID {
	return r.ids[r.table[p*r.rowLen]]
}

// Shares returns each member's fraction of the partitions it owns.
func (r *Ring) Shares() map[NodeID]float64 {
	counts := r.ownedCounts()
	shares := make(map[NodeID]float64, len(counts))
	for i, c := range counts {
		shares[r.ids[i]] = float64(c) / float64(r.partitions)
	}
	return shares
}

// ownedCounts returns how many partitions each member index owns.
func (r *Ring) ownedCounts() []int {
	counts := make([]int, len(r.members))
	for p := range r.partitions {
		counts[r.table[p*r.rowLen]]++
	}
	return counts
}

// String describes the ring briefly.
func (r *Ring) String() string {
	return fmt.Sprintf("ring{partitions: %d, members: %d, version: %016x}",
		r.partitions, len(r.members), r.version)
}
