package antientropy

import (
	"fmt"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
	"github.com/rs/zerolog"
)

// BenchmarkRebuild measures rebuilding every tree of a node holding
// -ae.keys records (what Start does): "mem" scans the in-memory test store,
// "pebble" the real store on a temporary directory (loading it takes a
// while; run by hand).
func BenchmarkRebuild(b *testing.B) {
	cfg := DefaultConfig()
	shape, err := cfg.shape()
	if err != nil {
		b.Fatal(err)
	}
	rebuild := func(b *testing.B, sc Scanner) {
		f, err := NewForest(shape)
		if err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		for range b.N {
			for p := range shape.Partitions() {
				if err := f.Rebuild(sc, p); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(*benchKeys), "ns/record")
	}
	b.Run("mem", func(b *testing.B) {
		st := newMemStore()
		fill(st, "a", *benchKeys, *benchValSize)
		rebuild(b, st)
	})
	b.Run("pebble", func(b *testing.B) {
		scfg := store.DefaultConfig()
		scfg.Dir = b.TempDir()
		scfg.Sync = false
		st, err := store.Open(scfg, zerolog.Nop())
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		start := time.Now()
		val := make([]byte, *benchValSize)
		for i := range *benchKeys {
			var set version.Set
			_, _ = set.Update(version.Write{Node: "a", Value: val, WriteTime: int64(i + 1)})
			if _, _, err := st.Merge(store.EncodeKey([]byte("b"), fmt.Appendf(nil, "key%08d", i)), set); err != nil {
				b.Fatal(err)
			}
		}
		b.Logf("loaded %d records into pebble in %v", *benchKeys, time.Since(start))
		rebuild(b, st)
	})
}
