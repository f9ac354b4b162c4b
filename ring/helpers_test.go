package ring

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"testing"
)

// identityHash reads the first 8 key bytes as a big-endian uint64 (short keys
// are zero-padded), so tests can write ring positions into keys directly.
func identityHash(key []byte) uint64 {
	var b [8]byte
	copy(b[:], key)
	return binary.BigEndian.Uint64(b[:])
}

// identityConfig is a config with q partitions and the identity hash.
func identityConfig(q int) Config {
	cfg := DefaultConfig()
	cfg.Partitions = q
	cfg.Hash = identityHash
	return cfg
}

// nodes returns s members "node-01".. joined in that order.
func nodes(s int) []Member {
	ms := make([]Member, s)
	for i := range ms {
		ms[i] = Member{ID: fmt.Sprintf("node-%02d", i+1), Joined: int64(1000 + i)}
	}
	return ms
}

func mustNew(tb testing.TB, cfg Config, ms []Member) *Ring {
	tb.Helper()
	r, err := New(cfg, ms)
	if err != nil {
		tb.Fatalf("New: %v", err)
	}
	return r
}

// randomKeys returns n random 16-byte keys from a fixed seed.
func randomKeys(n int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := make([][]byte, n)
	for i := range keys {
		k := make([]byte, 16)
		binary.LittleEndian.PutUint64(k, rng.Uint64())
		binary.LittleEndian.PutUint64(k[8:], rng.Uint64())
		keys[i] = k
	}
	return keys
}

// fataler is the part of testing.TB that helpers need; *rapid.T has it.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// fullOrder returns partition p's full preference list.
func fullOrder(tb fataler, r *Ring, p int) []NodeID {
	tb.Helper()
	l, err := r.PartitionPreference(p, r.Len())
	if err != nil {
		tb.Fatalf("PartitionPreference(%d, %d): %v", p, r.Len(), err)
	}
	return l
}

// keyBalance is the max/mean ratio of keys per primary owner.
func keyBalance(r *Ring, keys [][]byte) float64 {
	counts := make(map[NodeID]int, r.Len())
	for _, k := range keys {
		counts[r.Owner(r.Partition(k))]++
	}
	most := 0
	for _, c := range counts {
		most = max(most, c)
	}
	mean := float64(len(keys)) / float64(r.Len())
	return float64(most) / mean
}

// partitionBalance is the max/mean ratio of partitions per owner.
func partitionBalance(r *Ring) float64 {
	most := 0
	for _, c := range r.ownedCounts() {
		most = max(most, c)
	}
	return float64(most) / (float64(r.PartitionCount()) / float64(r.Len()))
}

// movement compares the primary owner of every key in before and after. It
// returns the fraction of keys that moved and how many moved to a node other
// than to.
func movement(before, after *Ring, keys [][]byte, to NodeID) (moved float64, elsewhere int) {
	n := 0
	for _, k := range keys {
		a, b := before.Owner(before.Partition(k)), after.Owner(after.Partition(k))
		if a != b {
			n++
			if b != to {
				elsewhere++
			}
		}
	}
	return float64(n) / float64(len(keys)), elsewhere
}
