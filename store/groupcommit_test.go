package store

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/quorumkv/quorumkv/version"
)

// countingFS counts syncs of WAL files (*.log) and makes each take
// syncDelay, standing in for a disk's fsync latency (an in-memory fsync is
// instant, which would leave nothing for concurrent writers to share).
type countingFS struct {
	vfs.FS
	syncDelay time.Duration
	syncs     atomic.Int64
	// gate, when set, holds every WAL sync until it is closed.
	gate atomic.Pointer[chan struct{}]
}

func (c *countingFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &countingFile{File: f, fs: c}, nil
}

func (c *countingFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := c.FS.Create(name, cat)
	return c.wrap(name, f, err)
}

func (c *countingFS) ReuseForWrite(old, name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := c.FS.ReuseForWrite(old, name, cat)
	return c.wrap(name, f, err)
}

func (c *countingFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := c.FS.OpenReadWrite(name, cat, opts...)
	return c.wrap(name, f, err)
}

func (c *countingFS) Unwrap() vfs.FS { return c.FS }

type countingFile struct {
	vfs.File
	fs *countingFS
}

func (f *countingFile) sync() {
	if g := f.fs.gate.Load(); g != nil {
		<-*g
	}
	f.fs.syncs.Add(1)
	if f.fs.syncDelay > 0 {
		time.Sleep(f.fs.syncDelay)
	}
}

func (f *countingFile) Sync() error     { f.sync(); return f.File.Sync() }
func (f *countingFile) SyncData() error { f.sync(); return f.File.SyncData() }
func (f *countingFile) SyncTo(n int64) (bool, error) {
	full, err := f.File.SyncTo(n)
	if full {
		f.sync()
	}
	return full, err
}

// syncsFor runs writes updates of distinct keys from the given number of
// goroutines and returns how many WAL syncs they caused.
func syncsFor(t *testing.T, synced bool, writers, writes int) (walSyncs int64, s *Store) {
	t.Helper()
	cfs := &countingFS{FS: vfs.NewMem(), syncDelay: 200 * time.Microsecond}
	s = openTest(t, cfs, func(c *Config) { c.Sync = synced })
	before := cfs.syncs.Load()
	beforeStore := s.Metrics().WALSyncs
	var wg sync.WaitGroup
	var next atomic.Int64
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(writes) {
					return
				}
				if _, _, err := s.Update(tk(fmt.Sprint(i)), write("n1", "value")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	walSyncs = cfs.syncs.Load() - before
	if got := int64(s.Metrics().WALSyncs - beforeStore); got != walSyncs {
		t.Errorf("Metrics.WALSyncs grew by %d, the filesystem saw %d", got, walSyncs)
	}
	if w := s.Metrics().Writes; w != uint64(writes) {
		t.Fatalf("%d writes committed, want %d", w, writes)
	}
	return walSyncs, s
}

func TestGroupCommit(t *testing.T) {
	const writes = 1000
	syncs, _ := syncsFor(t, true, 64, writes)
	t.Logf("64 writers: %d synced writes, %d WAL syncs (%.1f writes per sync)", writes, syncs, float64(writes)/float64(syncs))
	if syncs >= writes/2 {
		t.Fatalf("64 concurrent writers caused %d syncs for %d writes; group commit is not sharing syncs", syncs, writes)
	}
	if syncs == 0 {
		t.Fatal("synced writes did not sync the WAL")
	}
}

func TestSequentialWriterSyncsEveryWrite(t *testing.T) {
	const writes = 300
	syncs, _ := syncsFor(t, true, 1, writes)
	t.Logf("1 writer: %d synced writes, %d WAL syncs", writes, syncs)
	// Each write is acknowledged only after its own sync.
	if syncs < writes || syncs > writes+5 {
		t.Fatalf("one writer: %d syncs for %d writes, want about one each", syncs, writes)
	}
}

func TestNoSyncDoesNotSyncPerWrite(t *testing.T) {
	const writes = 1000
	syncs, _ := syncsFor(t, false, 8, writes)
	t.Logf("Sync=false: %d writes, %d WAL syncs", writes, syncs)
	if syncs != 0 {
		t.Fatalf("Sync=false: %d WAL syncs for %d writes, want none", syncs, writes)
	}
}

// A write that finds its result already stored is not acknowledged before
// that record is durable: the record may be another writer's, visible
// while its fsync still runs (a retried replication, a hint replayed while
// read repair writes the same set). Merge waits for a sync barrier;
// AddHint holds the key's lock until its commit is durable.
func TestUnchangedWriteWaitsForTheSyncItFound(t *testing.T) {
	k := tk("k")
	in := mustSet(t, "n1", "v")
	for _, tt := range []struct {
		name  string
		write func(s *Store) error
		find  func(s *Store) (version.Set, error)
	}{
		{"merge", func(s *Store) error { _, _, err := s.Merge(k, in); return err }, func(s *Store) (version.Set, error) { return s.Get(k) }},
		{"hint", func(s *Store) error { return addHint(s, "n2", k, in) }, func(s *Store) (version.Set, error) { return s.Hint("n2", k) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			fs := &countingFS{FS: vfs.NewMem()}
			s := openTest(t, fs, nil)
			gate := make(chan struct{})
			fs.gate.Store(&gate)
			var opened sync.Once
			open := func() { opened.Do(func() { fs.gate.Store(nil); close(gate) }) }
			t.Cleanup(open) // before the store's Close, which waits for the writes
			first := make(chan error, 1)
			go func() { first <- tt.write(s) }()
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
				got, err := tt.find(s)
				if err != nil {
					t.Fatal(err)
				}
				if !got.IsEmpty() {
					break // visible, its fsync held at the gate
				}
				if time.Now().After(deadline) {
					t.Fatal("the first write never became visible")
				}
			}
			// The second write must wait: for Merge, on a sync barrier of
			// its own, which shows as a second commit waiting for a sync;
			// for AddHint, on the key's lock, which the first holds.
			waiting := func() bool { return s.syncing.Load() >= 2 }
			if tt.name == "hint" {
				waiting = func() bool {
					mu := s.stripe(s.cfg.Hash(k))
					if mu.TryLock() {
						mu.Unlock()
						return false
					}
					return true
				}
			}
			second := make(chan error, 1)
			go func() { second <- tt.write(s) }()
			for !waiting() {
				select {
				case err := <-second:
					t.Fatalf("the unchanged write was acknowledged (%v) while the write it found waits for its fsync", err)
				default:
					runtime.Gosched()
				}
			}
			select {
			case err := <-second:
				t.Fatalf("the unchanged write was acknowledged (%v) while the write it found waits for its fsync", err)
			default:
			}
			open()
			for _, ch := range []chan error{first, second} {
				if err := <-ch; err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}
