package store

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/version"
)

// checkRowCache fails if any cached row differs from Pebble's.
func checkRowCache(t *testing.T, s *Store) {
	t.Helper()
	for i := range s.rows.shards {
		sh := &s.rows.shards[i]
		sh.mu.Lock()
		for row, c := range sh.rows {
			k := []byte(row[9:]) // 'd' ‖ be64(hash) ‖ key
			rec, size, found, err := s.readRow([]byte(row), k)
			if err != nil || !found {
				t.Errorf("cached row %q is not in pebble: found=%v err=%v", k, found, err)
				continue
			}
			if !bytes.Equal(rec.Set, c.rec.Set) || rec.ReapAfter != c.rec.ReapAfter || size != c.size {
				t.Errorf("cached row %q differs from pebble: reapAfter %d/%d size %d/%d",
					k, c.rec.ReapAfter, rec.ReapAfter, c.size, size)
			}
		}
		sh.mu.Unlock()
	}
}

func TestRowCacheServesReadsAfterWrites(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	k := tk("hot")
	if _, _, err := s.Update(k, write("n1", "v1")); err != nil {
		t.Fatal(err)
	}
	before := s.Metrics()
	for i := 0; i < 10; i++ {
		set, err := s.Get(k)
		if err != nil || len(set.Siblings) != 1 || string(set.Siblings[0].Value) != "v1" {
			t.Fatalf("Get = %+v, %v", set, err)
		}
	}
	m := s.Metrics()
	if hits := m.RowCacheHits - before.RowCacheHits; hits != 10 {
		t.Fatalf("%d cache hits for 10 reads of a written key, want 10", hits)
	}
	if m.RowCacheEntries != 1 || m.RowCacheBytes <= 0 {
		t.Fatalf("cache holds %d entries, %d bytes; want 1 entry", m.RowCacheEntries, m.RowCacheBytes)
	}
	// A read of a key not cached goes to pebble, counts one miss and fills
	// the cache.
	s.rows.drop(s.cfg.Hash(k), dataRow(s.cfg.Hash(k), k))
	before = s.Metrics()
	if _, err := s.Get(k); err != nil {
		t.Fatal(err)
	}
	if m := s.Metrics(); m.RowCacheMisses-before.RowCacheMisses != 1 || m.RowCacheHits != before.RowCacheHits {
		t.Fatalf("a read past the cache counted %d misses, %d hits; want 1, 0",
			m.RowCacheMisses-before.RowCacheMisses, m.RowCacheHits-before.RowCacheHits)
	}
	if _, ok := s.rows.get(s.cfg.Hash(k), dataRow(s.cfg.Hash(k), k)); !ok {
		t.Fatal("a read did not fill the cache")
	}
	// The cache follows overwrites, tombstones, marks and reaping.
	if _, _, err := s.Update(k, write("n1", "v2")); err != nil {
		t.Fatal(err)
	}
	if set, _ := s.Get(k); string(set.Siblings[0].Value) != "v2" {
		t.Fatalf("read after overwrite = %q", set.Siblings[0].Value)
	}
	dead := tombstone(t, s, k)
	checkRowCache(t, s)
	t0 := clock.Epoch
	if err := s.MarkReapable(k, dead, t0); err != nil {
		t.Fatal(err)
	}
	checkRowCache(t, s)
	if n, err := s.Reap(t0.Add(time.Second), 0); err != nil || n != 1 {
		t.Fatalf("Reap = %d, %v", n, err)
	}
	// The reaped key's memory replaces the record, in the cache too.
	if set, err := s.Get(k); err != nil || len(set.Siblings) != 0 || !set.Context.Equal(dead.Context) {
		t.Fatalf("read after reap = %+v, %v; want the tombstone's context alone", set, err)
	}
	checkRowCache(t, s)
	if n, err := s.Reap(t0.Add(time.Second).Add(s.cfg.ReapMemory), 0); err != nil || n != 0 {
		t.Fatalf("Reap when the memory is due = %d, %v", n, err)
	}
	if set, err := s.Get(k); err != nil || !set.IsEmpty() {
		t.Fatalf("read after the memory went = %+v, %v", set, err)
	}
	if m := s.Metrics(); m.RowCacheEntries != 0 {
		t.Fatalf("forgotten row still cached (%d entries)", m.RowCacheEntries)
	}
}

func TestRowCacheStaysWithinBudget(t *testing.T) {
	const budget = 256 << 10 // 4 KiB a shard: a few 1 KiB records each
	s := openTest(t, vfs.NewMem(), func(c *Config) { c.RowCacheSize = budget })
	value := string(bytes.Repeat([]byte("x"), 900))
	for i := 0; i < 500; i++ {
		if _, _, err := s.Update(tk(fmt.Sprint(i)), write("n1", value)); err != nil {
			t.Fatal(err)
		}
	}
	m := s.Metrics()
	if m.RowCacheBytes > budget || m.RowCacheEntries == 0 || m.RowCacheEntries >= 500 {
		t.Fatalf("cache at %d bytes, %d entries; budget %d bytes", m.RowCacheBytes, m.RowCacheEntries, budget)
	}
	for i := 0; i < 500; i++ { // evicted rows still read from pebble
		set, err := s.Get(tk(fmt.Sprint(i)))
		if err != nil || len(set.Siblings) != 1 {
			t.Fatalf("Get(%d) = %+v, %v", i, set, err)
		}
	}
	checkRowCache(t, s)
}

func TestRowCacheDisabled(t *testing.T) {
	s := openTest(t, vfs.NewMem(), func(c *Config) { c.RowCacheSize = 0 })
	k := tk("k")
	if _, _, err := s.Update(k, write("n1", "v")); err != nil {
		t.Fatal(err)
	}
	if set, err := s.Get(k); err != nil || string(set.Siblings[0].Value) != "v" {
		t.Fatalf("Get = %+v, %v", set, err)
	}
	if m := s.Metrics(); m.RowCacheHits+m.RowCacheMisses+uint64(m.RowCacheEntries) != 0 {
		t.Fatalf("disabled cache was used: %+v", m)
	}
	bad := testConfig(vfs.NewMem())
	bad.RowCacheSize = -1
	if err := bad.Validate(); err == nil {
		t.Fatal("negative RowCacheSize validated")
	}
}

// Concurrent writers, readers, markers and reapers on a few keys, with a
// cache small enough to evict: afterwards every cached row equals Pebble's,
// every counter holds exactly its increments, and every Get during the run
// returned a set that decodes.
func TestRowCacheCoherentUnderConcurrency(t *testing.T) {
	s := openTest(t, vfs.NewMem(), func(c *Config) { c.RowCacheSize = 16 << 10 }) // about one record a shard
	const (
		workers = 8
		keys    = 12
		ops     = 300
	)
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		counts = make(map[int]int) // increments per counter key
	)
	t0 := clock.Epoch
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for i := 0; i < ops; i++ {
				n := r.IntN(keys)
				switch op := r.IntN(10); {
				case op < 4 && n%2 == 0: // even keys are counters
					if _, _, err := s.Update(tk(fmt.Sprint(n)), increment); err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					counts[n]++
					mu.Unlock()
				case op < 4: // odd keys are written, deleted, marked and reaped
					k := tk(fmt.Sprint(n))
					if r.IntN(2) == 0 {
						_, _, _ = s.Update(k, write("n1", "v"))
						continue
					}
					set, _, err := s.Update(k, func(cur version.Set) (version.Set, error) {
						_, err := cur.Update(version.Write{Node: "n1", Context: cur.Context, Deleted: true, WriteTime: 5})
						return cur, err
					})
					if err != nil {
						t.Error(err)
						return
					}
					// May lose the race to another writer: ErrChanged.
					_ = s.MarkReapable(k, set, t0.Add(time.Duration(r.IntN(5))*time.Second))
				case op < 5:
					if _, err := s.Reap(t0.Add(3*time.Second), 2); err != nil {
						t.Error(err)
						return
					}
				default:
					if _, err := s.Get(tk(fmt.Sprint(n))); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}(w)
	}
	wg.Wait()
	checkRowCache(t, s)
	for n, want := range counts {
		s.rows.drop(s.cfg.Hash(tk(fmt.Sprint(n))), dataRow(s.cfg.Hash(tk(fmt.Sprint(n))), tk(fmt.Sprint(n))))
		if got := counterValue(t, s, tk(fmt.Sprint(n))); got != want {
			t.Errorf("counter %d = %d from pebble, want %d", n, got, want)
		}
	}
	if m := s.Metrics(); m.RowCacheHits == 0 || m.Reaped == 0 {
		t.Fatalf("the run exercised too little: %+v", m)
	}
}

// BenchmarkGetHot reads a small hot set that was just written, with and
// without the row cache.
func BenchmarkGetHot(b *testing.B) {
	for _, size := range []int64{0, defaultRowCacheSize} {
		b.Run(fmt.Sprintf("rowcache=%d", size), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.Dir = b.TempDir()
			cfg.Sync = false
			cfg.RowCacheSize = size
			s, err := Open(cfg, zerolog.Nop())
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			value := string(bytes.Repeat([]byte("v"), 1024))
			const keys = 1000
			for round := 0; round < 4; round++ {
				for i := 0; i < keys; i++ {
					if _, _, err := s.Update(tk(fmt.Sprint(i)), write("n1", value)); err != nil {
						b.Fatal(err)
					}
				}
			}
			r := rand.New(rand.NewPCG(1, 2))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := s.Get(tk(fmt.Sprint(r.IntN(keys)))); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
