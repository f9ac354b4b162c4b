package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
	"github.com/rs/zerolog"
)

// walFaults injects errorfs.ErrInjected into WAL writes and syncs once
// armed, with probability 1/every per operation.
type walFaults struct {
	armed    atomic.Bool
	kinds    []errorfs.OpKind
	mu       sync.Mutex
	rng      *rand.Rand
	every    int
	injected atomic.Int64
}

var (
	walIOOps     = []errorfs.OpKind{errorfs.OpFileWrite, errorfs.OpFileWriteAt, errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo}
	walCreateOps = []errorfs.OpKind{errorfs.OpCreate, errorfs.OpReuseForWrite}
)

func (w *walFaults) MaybeError(op errorfs.Op) error {
	if !w.armed.Load() || !strings.HasSuffix(op.Path, ".log") {
		return nil
	}
	if !slices.Contains(w.kinds, op.Kind) {
		return nil
	}
	w.mu.Lock()
	hit := w.rng.IntN(w.every) == 0
	w.mu.Unlock()
	if !hit {
		return nil
	}
	w.injected.Add(1)
	return errorfs.ErrInjected
}

func (w *walFaults) String() string { return "walFaults" }

func TestWALErrorsBecomeErrors(t *testing.T) {
	// WAL writes and syncs fail at random once armed (1 in every ops); or
	// creating the next WAL fails, which pebble meets when it rotates the
	// WAL (the small memtable makes that happen every few hundred writes).
	cases := []struct {
		name  string
		kinds []errorfs.OpKind
		every int
	}{
		{"io", walIOOps, 20},
		{"create", walCreateOps, 1},
	}
	for _, c := range cases {
		for seed := uint64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("%s/seed%d", c.name, seed), func(t *testing.T) {
				testWALFault(t, c.kinds, c.every, seed)
			})
		}
	}
}

func testWALFault(t *testing.T, kinds []errorfs.OpKind, every int, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	base := vfs.NewCrashableMem()
	faults := &walFaults{kinds: kinds, rng: rng, every: 1 + rng.IntN(every)}
	s := openTest(t, errorfs.Wrap(base, faults), func(c *Config) { c.MemTableSize = 256 << 10 })
	log := newWriteLog()
	stop := make(chan struct{})
	wait := runWriters(s, log, 8, 5, 200+rng.IntN(800), stop)
	target := 50 + rng.IntN(500)
	for {
		if _, n := log.snapshot(); n >= target {
			break
		}
		runtimeYield()
	}
	faults.armed.Store(true)
	// Every writer stops at its first error; there must be one.
	errs := wait()
	close(stop)
	acked, n := log.snapshot()
	for w, err := range errs {
		if err == nil {
			t.Fatalf("writer %d stopped without an error", w)
		}
		if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "injected") {
			t.Fatalf("writer %d: error %v, want ErrFailed caused by the injected error", w, err)
		}
	}
	t.Logf("%d acknowledged writes, %d faults injected; first error: %v", n, faults.injected.Load(), errs[0])

	// The store stays failed: reads and writes are refused.
	if _, err := s.Get(tk("w0-k0")); !errors.Is(err, ErrFailed) {
		t.Fatalf("Get after failure = %v", err)
	}
	if err := s.PutMeta("x", nil); !errors.Is(err, ErrFailed) {
		t.Fatalf("PutMeta after failure = %v", err)
	}
	if !s.Metrics().Failed {
		t.Fatal("Metrics.Failed not set")
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close after failure: %v", err)
	}

	// What reached stable storage holds every acknowledged write.
	log.mu.Lock()
	attempted := log.attempted
	log.mu.Unlock()
	checkRecovered(t, base.CrashClone(vfs.CrashCloneCfg{}), acked, attempted)
	// So does the directory as the failed store left it (a restart
	// without a machine crash).
	checkRecovered(t, base, acked, attempted)
}

func TestWALErrorWithoutSyncStopsWrites(t *testing.T) {
	base := vfs.NewMem()
	faults := &walFaults{kinds: walIOOps, rng: rand.New(rand.NewPCG(1, 1)), every: 1}
	s := openTest(t, errorfs.Wrap(base, faults), func(c *Config) { c.Sync = false })
	if _, _, err := s.Update(tk("before"), write("n1", "v")); err != nil {
		t.Fatal(err)
	}
	faults.armed.Store(true)
	// Unsynced commits wait for no WAL write, so pebble's WAL flusher
	// meets the error in the background, when a 32 KiB block fills or the
	// WAL rotates; from then on the store refuses writes.
	value := strings.Repeat("x", 1024)
	var err error
	writes := 0
	for ; writes < 5000 && err == nil; writes++ {
		_, _, err = s.Update(tk(fmt.Sprint(writes)), write("n1", value))
	}
	if !errors.Is(err, ErrFailed) || !strings.Contains(err.Error(), "injected") {
		t.Fatalf("after %d unsynced writes into a failing WAL: %v, want ErrFailed", writes, err)
	}
	t.Logf("unsynced writes refused after %d writes: %v", writes, err)
	if err := s.Close(); err != nil {
		t.Fatalf("Close after failure: %v", err)
	}
	// The frozen WAL reopens cleanly and every surviving record decodes.
	attempted := map[string]int{"before": 0}
	for i := 0; i < writes; i++ {
		attempted[fmt.Sprint(i)] = 0
	}
	checkRecovered(t, base, nil, attempted)
}

func TestPebbleFatalfBecomesError(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	var err error
	func() {
		defer s.recoverPebble(&err, nil)
		pebbleLogger{log: s.log}.Fatalf("pebble: fatal commit error: %v", "disk on fire")
	}()
	var fe *FatalError
	if !errors.Is(err, ErrFailed) || !errors.As(err, &fe) || !strings.Contains(fe.Msg, "disk on fire") {
		t.Fatalf("recovered error = %v", err)
	}
	if s.wedged.Load() {
		t.Fatal("a Fatalf marked pebble wedged")
	}
	if _, _, err := s.Update(tk("k"), write("n1", "v")); !errors.Is(err, ErrFailed) {
		t.Fatalf("Update after Fatalf = %v, want ErrFailed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
}

func TestOpenFailsWhenWALCannotBeCreated(t *testing.T) {
	faults := &walFaults{kinds: walCreateOps, rng: rand.New(rand.NewPCG(1, 1)), every: 1}
	faults.armed.Store(true)
	cfg := testConfig(errorfs.Wrap(vfs.NewMem(), faults))
	s, err := Open(cfg, zerolog.Nop())
	if err == nil {
		_ = s.Close()
		t.Fatal("Open succeeded without a WAL")
	}
	if !errors.Is(err, ErrFailed) || faults.injected.Load() == 0 {
		t.Fatalf("Open = %v after %d injected faults, want ErrFailed", err, faults.injected.Load())
	}
}
