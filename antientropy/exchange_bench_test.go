package antientropy

import (
	"context"
	"flag"
	"math/rand/v2"
	"testing"
	"time"
)

var (
	benchKeys    = flag.Int("ae.keys", 1_000_000, "records per replica in BenchmarkExchange and BenchmarkRebuild")
	benchDiff    = flag.Int("ae.diff", 1_000, "differing keys per BenchmarkExchange iteration (a multiple of 10)")
	benchFanout  = flag.Int("ae.fanout", 0, "tree fanout for the benchmarks (0: the default)")
	benchValSize = flag.Int("ae.value", 64, "value bytes per record")
)

// BenchmarkExchange measures one full exchange pass (all 256 partitions)
// between two replicas of -ae.keys records (default 1M) that differ in
// -ae.diff keys (default 1000), and reports the bytes moved against the
// bound: twice the differing records' bytes plus the tree nodes on the
// differing paths. Run by hand:
//
//	go test ./antientropy -run - -bench BenchmarkExchange -benchtime 5x
func BenchmarkExchange(b *testing.B) {
	cfg := DefaultConfig()
	cfg.BytesPerSecond = 0
	if *benchFanout > 0 {
		cfg.Fanout = *benchFanout
	}
	st := newMemStore()
	start := time.Now()
	fill(st, "a", *benchKeys, *benchValSize)
	c := newTestClusterWith(b, cfg, map[string]*memStore{"a": st, "b": st.clone()}, "a", "b")
	b.Logf("built 2 replicas of %d records in %v", *benchKeys, time.Since(start))
	rng := rand.New(rand.NewPCG(3, 4))
	var moved, records, tree, bound, hashes, leafkeys, recBytes float64
	var elapsed time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		diverge(c, rng, *benchKeys, *benchDiff, i)
		d := measureDiff(b, c)
		b.StartTimer()
		t0 := time.Now()
		rep, err := c.node("a").svc.RunOnce(context.Background())
		elapsed += time.Since(t0)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if rep.KeysDiffering != d.keys {
			b.Fatalf("exchange found %d differing keys, want %d", rep.KeysDiffering, d.keys)
		}
		if !c.rootsEqual("a", "b") {
			b.Fatal("roots differ after the exchange")
		}
		tr := rep.Traffic
		lim := 2*d.recordBytes + d.treeBytes(cfg.MaxLeavesPerCall)
		if tr.Total() > lim {
			b.Fatalf("moved %d bytes, bound %d", tr.Total(), lim)
		}
		moved += float64(tr.Total())
		hashes += float64(tr.Hashes)
		leafkeys += float64(tr.LeafKeys)
		recBytes += float64(tr.Records)
		records += float64(d.recordBytes)
		tree += float64(d.treeBytes(cfg.MaxLeavesPerCall))
		bound += float64(lim)
		b.StartTimer()
	}
	n := float64(b.N)
	b.ReportMetric(moved/n, "moved-B/op")
	b.ReportMetric(hashes/n, "hash-B/op")
	b.ReportMetric(leafkeys/n, "leaflist-B/op")
	b.ReportMetric(recBytes/n, "record-B/op")
	b.ReportMetric(records/n, "diff-record-B/op")
	b.ReportMetric(tree/n, "diff-tree-B/op")
	b.ReportMetric(bound/n, "bound-B/op")
	b.ReportMetric(float64(elapsed.Milliseconds())/n, "exchange-ms/op")
}
