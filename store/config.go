package store

import (
	"time"

	"fmt"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/quorumkv/quorumkv/internal/clock"
)

// Config parameterises a Store. Start from DefaultConfig: the zero Config
// is not valid, and its zero Sync would silently disable fsync.
type Config struct {
	// Dir is the pebble directory. Required; created if missing.
	Dir string
	// FS is the filesystem pebble uses. nil means vfs.Default (the OS).
	// Tests pass vfs.NewMem(), vfs.NewCrashableMem() or an errorfs wrapper.
	FS vfs.FS
	// Sync makes every data, hint and meta write fsync the WAL before it is
	// acknowledged. Concurrent writers share syncs (group commit), so the
	// cost is one fsync per batch of concurrent writes, not per write.
	// false (--sync=false) acknowledges once the write is in the OS page
	// cache: a machine crash loses the last writes. Default true.
	Sync bool
	// Hash maps an encoded key to its position; data rows are ordered by
	// it. It must be the ring's hash. Default xxhash.Sum64.
	Hash func([]byte) uint64
	// CacheSize is pebble's block cache, in bytes. Default 32 MiB.
	CacheSize int64
	// MemTableSize is the size of one pebble memtable, in bytes; at most
	// two exist at once (one filling, one flushing), so memtables cost up to
	// twice this. Together with CacheSize this is most of the node's
	// storage memory; the defaults keep it near 100 MiB. Default 32 MiB.
	MemTableSize uint64
	// RowCacheSize bounds the row cache, in bytes: the newest records of
	// recently used keys, kept decoded from Pebble so that hot keys are
	// read without a Pebble lookup. 0 disables it. Default 16 MiB.
	RowCacheSize int64
	// LockStripes is the number of mutexes that serialize Update, Merge,
	// AddHint, DeleteHint, MarkReapable and Reap per key (keys are mapped
	// to stripes by hash). Default 1024.
	LockStripes int
	// WALMinSyncInterval is the least time between two WAL syncs while
	// several synced commits are waiting (a lone writer is never delayed).
	// Commits that arrive within it share the next sync: fewer, fuller
	// fsyncs, which raises throughput and cuts queueing when the disk's
	// sync rate is the bottleneck. Zero syncs as soon as asked.
	WALMinSyncInterval time.Duration
	// OnWrite, if set, is called after every committed change to a data
	// row (Update, Merge, Reap), while the key's stripe lock is still held,
	// so the events of one key arrive in commit order. It must not call
	// back into the Store for a key of the same stripe. Default nil.
	OnWrite func(WriteEvent)
	// ReapMemory is how long a reaped key is remembered (see Reap): for
	// that long, a version the reaped tombstones superseded that arrives
	// late (a hint, a message in flight, a replica that missed the reap)
	// is dropped instead of bringing the key back, and a peer asking
	// whether this replica holds the tombstone is told yes. Default 6h.
	ReapMemory time.Duration
	// Clock times commits for Metrics, stamps reap memories, and times
	// reopen attempts. Default clock.Real().
	Clock clock.Clock
	// ReopenBackoff is how long a failed Store waits before it first tries
	// to reopen itself (Reopen); each failed try doubles the wait, up to
	// ReopenMaxBackoff. Zero leaves reopening to the caller. Default 1s.
	ReopenBackoff time.Duration
	// ReopenMaxBackoff caps the wait between two reopen tries. Default 30s.
	ReopenMaxBackoff time.Duration
	// ReopenHeadroom is the free space, in bytes, the filesystem must
	// report before a reopen is tried (where it can report it): pebble's
	// recovery flushes the WAL's contents, up to two memtables, to a new
	// table. Zero skips the check. Default 96 MiB.
	ReopenHeadroom int64
	// MaxMergeBytes caps the encoded size of a record (or hint) that a
	// merge builds: Merge and AddHint refuse, with a *TooLargeError, a
	// merge whose result would exceed it and be larger than what is
	// stored, and keep what they have. Update is not capped here (the
	// write path's version.Write.MaxBytes is). Concurrent writes issued
	// by different replicas, each within the write cap, meet in merges;
	// this keeps what they build well under the RPC frame limit, so the
	// key can still be read and replicated. 0: no cap. Default 32 MiB,
	// half the default 64 MiB frame.
	MaxMergeBytes int
}

// WriteEvent describes one committed change of a data row.
type WriteEvent struct {
	// Hash is Config.Hash of Key.
	Hash uint64
	// Key is the encoded key. It is the caller's slice: do not modify it.
	Key []byte
	// Old and New are the canonical set bytes (EncodeSet) before and after;
	// nil when the row is absent (Old for a new key, New for a reaped one).
	// They are not reused by the Store.
	Old, New []byte
}

// Default sizes.
const (
	defaultCacheSize    = 32 << 20
	defaultMemTableSize = 32 << 20
	defaultRowCacheSize = 16 << 20
	minMemTableSize     = 256 << 10
	maxMemTableSize     = 4<<30 - 1 // pebble's limit
)

// DefaultConfig returns the default configuration. Dir must still be set.
func DefaultConfig() Config {
	return Config{
		Dir:                "",                   // required
		FS:                 nil,                  // the OS filesystem
		Sync:               true,                 // fsync before acknowledging
		Hash:               xxhash.Sum64,         // the ring's hash
		CacheSize:          defaultCacheSize,     // 32 MiB block cache
		MemTableSize:       defaultMemTableSize,  // 32 MiB memtables, at most two
		RowCacheSize:       defaultRowCacheSize,  // 16 MiB of hot records
		LockStripes:        1024,                 // per-key serialization stripes
		WALMinSyncInterval: 5 * time.Millisecond, // under load, space WAL syncs by 5 ms (BENCHMARKS.md)
		OnWrite:            nil,                  // no hook
		ReapMemory:         6 * time.Hour,        // remember a reaped key for 6 h
		Clock:              clock.Real(),         // wall clock
		ReopenBackoff:      time.Second,          // first reopen try 1 s after a failure
		ReopenMaxBackoff:   30 * time.Second,     // then doubling, up to 30 s apart
		ReopenHeadroom:     96 << 20,             // two default memtables and some
		MaxMergeBytes:      32 << 20,             // half the 64 MiB RPC frame
	}
}

// Validate reports the first invalid field, wrapping ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case c.Dir == "":
		return fmt.Errorf("%w: empty dir", ErrInvalidConfig)
	case c.Hash == nil:
		return fmt.Errorf("%w: nil hash", ErrInvalidConfig)
	case c.Clock == nil:
		return fmt.Errorf("%w: nil clock", ErrInvalidConfig)
	case c.CacheSize <= 0:
		return fmt.Errorf("%w: cache size %d is not positive", ErrInvalidConfig, c.CacheSize)
	case c.MemTableSize < minMemTableSize || c.MemTableSize > maxMemTableSize:
		return fmt.Errorf("%w: memtable size %d outside [%d, %d]",
			ErrInvalidConfig, c.MemTableSize, minMemTableSize, uint64(maxMemTableSize))
	case c.RowCacheSize < 0:
		return fmt.Errorf("%w: row cache size %d is negative", ErrInvalidConfig, c.RowCacheSize)
	case c.ReapMemory <= 0:
		return fmt.Errorf("%w: reap memory %v is not positive", ErrInvalidConfig, c.ReapMemory)
	case c.LockStripes < 1:
		return fmt.Errorf("%w: lock stripes %d is less than 1", ErrInvalidConfig, c.LockStripes)
	case c.ReopenBackoff < 0 || c.ReopenHeadroom < 0:
		return fmt.Errorf("%w: reopen backoff %v and headroom %d must not be negative", ErrInvalidConfig, c.ReopenBackoff, c.ReopenHeadroom)
	case c.ReopenBackoff > 0 && c.ReopenMaxBackoff < c.ReopenBackoff:
		return fmt.Errorf("%w: reopen max backoff %v is less than the backoff %v", ErrInvalidConfig, c.ReopenMaxBackoff, c.ReopenBackoff)
	case c.MaxMergeBytes < 0:
		return fmt.Errorf("%w: max merge bytes %d is negative", ErrInvalidConfig, c.MaxMergeBytes)
	}
	return nil
}
