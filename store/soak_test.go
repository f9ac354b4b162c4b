package store

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/rs/zerolog"
)

// TestSoakLoadRSS loads QUORUMKV_STORE_SOAK records of 1 KiB (e.g. 1000000)
// through Update with the default configuration on a real directory and
// reports the process's peak RSS. The benchmark target is < 256 MiB per
// node. Skipped unless the variable is set.
func TestSoakLoadRSS(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("QUORUMKV_STORE_SOAK"))
	if n <= 0 {
		t.Skip("set QUORUMKV_STORE_SOAK=<records> to run")
	}
	cfg := DefaultConfig()
	cfg.Dir = t.TempDir()
	cfg.Clock = clock.Real()
	s, err := Open(cfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	value := strings.Repeat("v", 1024)
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(n) {
					return
				}
				if _, _, err := s.Update(tk(fmt.Sprint(i)), write("n1", value)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	m := s.Metrics()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("%d records in %v (%.0f/s), %d WAL syncs; disk %d MiB; memtables %d MiB; cache %d MiB; Go heap sys %d MiB; peak RSS %s",
		n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), m.WALSyncs, m.DiskUsage>>20,
		m.MemTableBytes>>20, m.BlockCacheBytes>>20, ms.HeapSys>>20, procStatus("VmHWM"))
}

func procStatus(field string) string {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
