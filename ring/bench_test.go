package ring

import (
	"fmt"
	"testing"
)

var benchSizes = []int{3, 16, 128}

// benchKeys are a few keys so lookups are not all served from one row.
func benchKeys() [][]byte {
	keys := make([][]byte, 1024)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "user:%08d", i)
	}
	return keys
}

func BenchmarkPreferenceList(b *testing.B) {
	keys := benchKeys()
	for _, s := range benchSizes {
		for _, fallbacks := range []int{0, 2} {
			cfg := DefaultConfig()
			cfg.MaxFallbacks = fallbacks
			r := mustNew(b, cfg, nodes(s))
			b.Run(fmt.Sprintf("nodes=%d/n=3/maxFallbacks=%d", s, fallbacks), func(b *testing.B) {
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if _, err := r.PreferenceList(keys[i&1023], 3); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

func BenchmarkAppendPreferenceList(b *testing.B) {
	keys := benchKeys()
	for _, s := range benchSizes {
		for _, fallbacks := range []int{0, 2} {
			cfg := DefaultConfig()
			cfg.MaxFallbacks = fallbacks
			r := mustNew(b, cfg, nodes(s))
			b.Run(fmt.Sprintf("nodes=%d/n=3/maxFallbacks=%d", s, fallbacks), func(b *testing.B) {
				b.ReportAllocs()
				dst := make([]NodeID, 0, s)
				i := 0
				for b.Loop() {
					var err error
					if dst, err = r.AppendPreferenceList(dst[:0], keys[i&1023], 3); err != nil {
						b.Fatal(err)
					}
					i++
				}
			})
		}
	}
}

func BenchmarkNew(b *testing.B) {
	for _, s := range benchSizes {
		ms := nodes(s)
		b.Run(fmt.Sprintf("nodes=%d", s), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := New(DefaultConfig(), ms); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkBalance times a join (building the new ring) and reports the
// balance and movement metrics of the resulting layout:
//
//	max/mean-parts  most loaded node / mean, by partitions
//	max/mean-keys   most loaded node / mean, by 200k xxhash-ed random keys
//	moved/ideal     keys that changed owner on the join / (1/S)
//	moved-elsewhere keys that moved to a node other than the newcomer
func BenchmarkBalance(b *testing.B) {
	keys := randomKeys(balanceKeys)
	for _, s := range []int{3, 4, 8, 12, 16} {
		b.Run(fmt.Sprintf("nodes=%d", s), func(b *testing.B) {
			before := mustNew(b, DefaultConfig(), nodes(s-1))
			ms := nodes(s)
			var after *Ring
			for b.Loop() {
				after = mustNew(b, DefaultConfig(), ms)
			}
			moved, elsewhere := movement(before, after, keys, ms[s-1].ID)
			b.ReportMetric(partitionBalance(after), "max/mean-parts")
			b.ReportMetric(keyBalance(after, keys), "max/mean-keys")
			b.ReportMetric(moved*float64(s), "moved/ideal")
			b.ReportMetric(float64(elsewhere), "moved-elsewhere")
		})
	}
}

// BenchmarkMoves times the plans of a join and a leave on the largest rings
// the package is sized for: Q=4096 and 256 members.
func BenchmarkMoves(b *testing.B) {
	cfg := DefaultConfig()
	cfg.Partitions = 4096
	small, big := mustNew(b, cfg, nodes(255)), mustNew(b, cfg, nodes(256))
	newcomer := nodes(256)[255].ID
	for _, n := range []int{3, 16} {
		for _, tc := range []struct {
			name     string
			from, to *Ring
		}{{"join", small, big}, {"leave", big, small}} {
			b.Run(fmt.Sprintf("%s/n=%d", tc.name, n), func(b *testing.B) {
				b.ReportAllocs()
				var moves []Move
				for b.Loop() {
					var err error
					if moves, err = Moves(tc.from, tc.to, n); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(moves)), "moves")
			})
		}
		b.Run(fmt.Sprintf("gains/n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Gains(small, big, newcomer, n)
			}
		})
		b.Run(fmt.Sprintf("lost/n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Lost(big, small, newcomer, n)
			}
		})
	}
}
