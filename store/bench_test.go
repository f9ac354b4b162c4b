package store

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/rs/zerolog"
)

func openBench(b *testing.B, sync bool) *Store {
	b.Helper()
	cfg := DefaultConfig()
	cfg.Dir = b.TempDir()
	cfg.Sync = sync
	cfg.Clock = clock.Real()
	s, err := Open(cfg, zerolog.Nop())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkUpdate writes 1 KiB values to distinct keys from parallel
// goroutines (b.SetParallelism(16) per CPU) on a real directory.
func BenchmarkUpdate(b *testing.B) {
	value := strings.Repeat("v", 1024)
	for _, sync := range []bool{true, false} {
		b.Run(fmt.Sprintf("sync=%v", sync), func(b *testing.B) {
			s := openBench(b, sync)
			var next atomic.Int64
			before := s.Metrics().WALSyncs
			b.SetParallelism(16)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					k := tk(fmt.Sprint(next.Add(1)))
					if _, _, err := s.Update(k, write("n1", value)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(s.Metrics().WALSyncs-before)/float64(b.N), "syncs/op")
		})
	}
}

// BenchmarkGet reads random keys out of 10,000 1 KiB records.
func BenchmarkGet(b *testing.B) {
	s := openBench(b, false)
	const keys = 10000
	value := strings.Repeat("v", 1024)
	for i := 0; i < keys; i++ {
		if _, _, err := s.Update(tk(fmt.Sprint(i)), write("n1", value)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		r := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			set, err := s.Get(tk(fmt.Sprint(r.IntN(keys))))
			if err != nil || len(set.Siblings) != 1 {
				b.Errorf("Get: %v, %d siblings", err, len(set.Siblings))
				return
			}
		}
	})
}
