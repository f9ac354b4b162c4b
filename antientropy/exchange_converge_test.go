package antientropy

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

// fill writes n records key00000000.. holding the same valueSize-byte
// value issued by node, straight into st (no events: the service rebuilds
// at Start).
func fill(st *memStore, node string, n, valueSize int) {
	var set version.Set
	_, _ = set.Update(version.Write{Node: node, Value: bytes.Repeat([]byte{'v'}, valueSize), WriteTime: 1})
	setBytes := store.EncodeSet(set)
	st.mu.Lock()
	defer st.mu.Unlock()
	onWrite := st.onWrite
	st.onWrite = nil
	for i := range n {
		k := testKey(fmt.Sprintf("key%08d", i))
		st.setLocked(st.hash(k), k, setBytes)
	}
	st.onWrite = onWrite
}

// clone copies st's rows (set bytes are never mutated, so they are shared).
func (s *memStore) clone() *memStore {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := newMemStore()
	for b, rows := range s.buckets {
		c.buckets[b] = append([]memRow(nil), rows...)
	}
	c.rows = s.rows
	c.meta = maps.Clone(s.meta)
	return c
}

// diverge makes a and b differ in exactly n keys of the population
// (n divisible by 10): 40% overwritten on a, 20% overwritten on b, 20% new
// on a, 10% new on b, 10% missing on b. It returns the keys whose
// pushes (b changes) and pulls (a changes) an exchange from a must make.
func diverge(c *testCluster, rng *rand.Rand, population, n int, round int) (pushes, pulls int) {
	picked := map[int]bool{}
	pick := func() string {
		for {
			i := rng.IntN(population)
			if !picked[i] {
				picked[i] = true
				return fmt.Sprintf("key%08d", i)
			}
		}
	}
	b := c.node("b").st
	for range n * 4 / 10 {
		c.write("a", pick(), fmt.Sprintf("a-%d", round), false, true)
	}
	for range n * 2 / 10 {
		c.write("b", pick(), fmt.Sprintf("b-%d", round), false, true)
	}
	for i := range n * 2 / 10 {
		c.write("a", fmt.Sprintf("new-a-%d-%d", round, i), "fresh", false, true)
	}
	for i := range n / 10 {
		c.write("b", fmt.Sprintf("new-b-%d-%d", round, i), "fresh", false, true)
	}
	for range n / 10 {
		k := testKey(pick())
		h := b.hash(k)
		b.mu.Lock()
		b.setLocked(h, k, nil)
		b.mu.Unlock()
	}
	return n * 7 / 10, n * 3 / 10
}

// diffCost counts, independently of the exchange code, what converging a
// and b must cost: the bytes of the records that differ (key plus set
// bytes, on each side that has one), and the tree traffic on the
// differing paths (each compared node's index and hash, each differing
// leaf's remote listing, plus a per-call allowance).
type diffCost struct {
	keys           int
	recordBytes    int
	nodes, calls   int // hashes calls (one per level descended)
	leaves, listed int // differing leaves, remote entries listed
}

// Wire allowances (msgpack): a compared node costs its index (≤3 bytes)
// in the request and its hash (9) in the reply; a listed entry two uint64
// (18); a listed leaf its index (≤3) and list headers (≤8); a call its
// envelope (≤20).
const (
	nodeBytes  = 12
	entryBytes = 18
	leafBytes  = 11
	callBytes  = 20
)

func (d diffCost) hashBytes() int { return d.nodes*nodeBytes + d.calls*callBytes }
func (d diffCost) leafBytes(maxLeaves int) int {
	calls := (d.leaves + maxLeaves - 1) / maxLeaves
	return d.listed*entryBytes + d.leaves*leafBytes + calls*callBytes
}
func (d diffCost) treeBytes(maxLeaves int) int { return d.hashBytes() + d.leafBytes(maxLeaves) }

func measureDiff(t testing.TB, c *testCluster) diffCost {
	var d diffCost
	a, b := c.node("a"), c.node("b")
	shape := a.svc.shape
	for p := range shape.Partitions() {
		ta, tb := a.svc.forest.Snapshot(p), b.svc.forest.Snapshot(p)
		level := []int{0}
		for l := shape.Levels() - 1; l >= 0 && len(level) > 0; l-- {
			d.calls++
			d.nodes += len(level)
			var next []int
			for _, i := range level {
				if ta.Hash(l, i) == tb.Hash(l, i) {
					continue
				}
				if l == 0 {
					d.leaves++
					lo, hi := shape.LeafRange(p, i)
					_ = b.st.Scan(lo, hi, func(uint64, []byte, []byte) error { d.listed++; return nil })
					continue
				}
				first, end := shape.Children(l, i)
				for ch := first; ch < end; ch++ {
					next = append(next, ch)
				}
			}
			level = next
		}
	}
	rows := func(st *memStore) map[string][]byte {
		m := map[string][]byte{}
		_ = st.Scan(0, ^uint64(0), func(_ uint64, k, set []byte) error { m[string(k)] = set; return nil })
		return m
	}
	ra, rb := rows(a.st), rows(b.st)
	for k, sa := range ra {
		if sb, ok := rb[k]; !ok || !bytes.Equal(sa, sb) {
			d.keys++
			d.recordBytes += len(k) + len(sa)
			if ok {
				d.recordBytes += len(k) + len(sb)
			}
		}
	}
	for k, sb := range rb {
		if _, ok := ra[k]; !ok {
			d.keys++
			d.recordBytes += len(k) + len(sb)
		}
	}
	return d
}

func storesEqual(a, b *memStore) error {
	type row struct {
		k   string
		set []byte
	}
	var ra, rb []row
	_ = a.Scan(0, ^uint64(0), func(_ uint64, k, set []byte) error { ra = append(ra, row{string(k), set}); return nil })
	_ = b.Scan(0, ^uint64(0), func(_ uint64, k, set []byte) error { rb = append(rb, row{string(k), set}); return nil })
	if len(ra) != len(rb) {
		return fmt.Errorf("%d vs %d records", len(ra), len(rb))
	}
	for i := range ra {
		if ra[i].k != rb[i].k || !bytes.Equal(ra[i].set, rb[i].set) {
			return fmt.Errorf("record %d: %q vs %q", i, ra[i].k, rb[i].k)
		}
	}
	return nil
}

// TestExchangeConvergesAndCostsTheDifference diverges two replicas of
// 100,000 keys in 1,000 keys and checks that one exchange pass converges
// them and that the bytes moved are at most twice the differing records'
// bytes plus the tree nodes on the differing paths.
func TestExchangeConvergesAndCostsTheDifference(t *testing.T) {
	const population, differing = 100_000, 1_000
	cfg := DefaultConfig()
	cfg.BytesPerSecond = 0
	st := newMemStore()
	fill(st, "a", population, 64)
	c := newTestClusterWith(t, cfg, map[string]*memStore{"a": st, "b": st.clone()}, "a", "b")
	if !c.rootsEqual("a", "b") {
		t.Fatal("replicas differ before divergence")
	}
	wantPush, wantPull := diverge(c, rand.New(rand.NewPCG(1, 2)), population, differing, 0)
	d := measureDiff(t, c)
	if d.keys != differing {
		t.Fatalf("diverged %d keys, want %d", d.keys, differing)
	}

	rep, err := c.node("a").svc.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !c.rootsEqual("a", "b") {
		t.Fatal("roots differ after the exchange")
	}
	if err := storesEqual(c.node("a").st, c.node("b").st); err != nil {
		t.Fatalf("stores differ after the exchange: %v", err)
	}
	if rep.KeysDiffering != differing || rep.KeysPushed != wantPush || rep.KeysPulled != wantPull {
		t.Fatalf("report %+v, want %d differing, %d pushed, %d pulled", rep, differing, wantPush, wantPull)
	}
	if rep.Partitions != cfg.Partitions || rep.Exchanges != cfg.Partitions || rep.Failed != 0 {
		t.Fatalf("report %+v", rep)
	}
	tr := rep.Traffic
	bound := 2*d.recordBytes + d.treeBytes(cfg.MaxLeavesPerCall)
	t.Logf("moved %d bytes (hashes %d, leaf lists %d, records %d) in %d calls; differing records %d bytes; tree on differing paths %d bytes (%d nodes, %d leaves, %d entries); bound %d",
		tr.Total(), tr.Hashes, tr.LeafKeys, tr.Records, tr.Calls, d.recordBytes, d.treeBytes(cfg.MaxLeavesPerCall), d.nodes, d.leaves, d.listed, bound)
	if tr.Total() > bound {
		t.Fatalf("moved %d bytes, bound %d", tr.Total(), bound)
	}
	if tr.Hashes > d.hashBytes() {
		t.Fatalf("hash traffic %d > %d for %d nodes in %d calls", tr.Hashes, d.hashBytes(), d.nodes, d.calls)
	}
	if tr.LeafKeys > d.leafBytes(cfg.MaxLeavesPerCall) {
		t.Fatalf("leaf list traffic %d > %d", tr.LeafKeys, d.leafBytes(cfg.MaxLeavesPerCall))
	}
	if tr.Records > 2*d.recordBytes || tr.Records < d.recordBytes/2 {
		t.Fatalf("record traffic %d for %d differing record bytes", tr.Records, d.recordBytes)
	}

	// A second pass finds nothing and costs one root comparison per
	// partition.
	rep, err = c.node("a").svc.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.KeysDiffering != 0 || rep.Traffic.LeafKeys != 0 || rep.Traffic.Records != 0 || rep.Traffic.Calls != cfg.Partitions {
		t.Fatalf("second pass %+v", rep)
	}
}
