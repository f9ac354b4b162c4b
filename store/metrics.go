package store

import "sync/atomic"

// counters are the Store's running totals.
type counters struct {
	gets, updates, merges    atomic.Uint64
	writes, unchanged        atomic.Uint64
	commits, commitNanos     atomic.Uint64
	bytesWritten, walSyncs   atomic.Uint64
	hintsAdded, hintsDeleted atomic.Uint64
	marked, reaped, errors   atomic.Uint64
	forgotten                atomic.Uint64
	quarantined, skipped     atomic.Uint64
	failures, reopens        atomic.Uint64
	mergesTooLarge           atomic.Uint64
}

// Metrics is a snapshot of a Store's counters and of pebble's state.
type Metrics struct {
	// Gets counts Get calls; Updates and Merges count calls of those.
	Gets, Updates, Merges uint64
	// Writes counts data-row changes committed by Update and Merge.
	Writes uint64
	// Unchanged counts Update/Merge calls whose result equalled the stored
	// set, so nothing was written.
	Unchanged uint64
	// Commits counts pebble batch commits of every kind (data, hints, meta,
	// reap marks and deletions); CommitNanos is their total latency.
	Commits, CommitNanos uint64
	// BytesWritten is the total size of committed batches.
	BytesWritten uint64
	// WALSyncs counts fsyncs of the write-ahead log. With group commit it
	// grows slower than Writes.
	WALSyncs uint64
	// HintsAdded counts new hint rows; HintsDeleted counts replayed hints
	// deleted. HintBytes is the size of all pending hints.
	HintsAdded, HintsDeleted uint64
	HintBytes                int64
	// Marked counts MarkReapable writes; Reaped counts tombstone records
	// Reap replaced by a reaped key's memory; Forgotten counts such
	// memories deleted when their time was up.
	Marked, Reaped, Forgotten uint64
	// Errors counts failed operations: I/O errors, corrupt records,
	// pebble background errors and storage failures.
	Errors uint64
	// Quarantined counts corrupt records set aside with their bytes kept
	// (see ScanQuarantine): data records a merge replaced, and hints a
	// new hint replaced or a hint scan dropped. Skipped counts rows a scan
	// or Reap passed over because they did not decode.
	Quarantined, Skipped uint64
	// Failed reports that a storage failure stopped the Store: it refuses
	// every operation until a reopen succeeds.
	// MergesTooLarge counts merges (data or hint) refused because their
	// result would exceed Config.MaxMergeBytes.
	MergesTooLarge uint64
	// Failed reports that a storage failure stopped the Store.
	Failed bool
	// Failures counts storage failures (a failed WAL write or sync, a
	// pebble panic); Reopens counts reopens that brought the Store back.
	Failures, Reopens uint64
	// RowCacheHits and RowCacheMisses count data-row reads answered by the
	// row cache or not; RowCacheBytes and RowCacheEntries are its size.
	RowCacheHits, RowCacheMisses uint64
	RowCacheBytes                int64
	RowCacheEntries              int

	// From pebble (zero after Close and while Failed).
	// DiskUsage is the bytes of all pebble files (tables, WAL, manifest).
	DiskUsage uint64
	// MemTableBytes is the memory allocated to memtables.
	MemTableBytes uint64
	// BlockCacheBytes, BlockCacheHits and BlockCacheMisses describe the
	// block cache.
	BlockCacheBytes, BlockCacheHits, BlockCacheMisses int64
	// Flushes and Compactions count pebble's background jobs; ReadAmp is
	// the current read amplification (sorted runs a read may visit).
	Flushes, Compactions int64
	ReadAmp              int
}

// Metrics returns a snapshot of the counters. It is safe to call at any
// time, including after Close (pebble's fields are then zero, as they are
// while the Store is failed).
func (s *Store) Metrics() Metrics {
	m := Metrics{
		Gets:           s.m.gets.Load(),
		Updates:        s.m.updates.Load(),
		Merges:         s.m.merges.Load(),
		Writes:         s.m.writes.Load(),
		Unchanged:      s.m.unchanged.Load(),
		Commits:        s.m.commits.Load(),
		CommitNanos:    s.m.commitNanos.Load(),
		BytesWritten:   s.m.bytesWritten.Load(),
		WALSyncs:       s.m.walSyncs.Load(),
		HintsAdded:     s.m.hintsAdded.Load(),
		HintsDeleted:   s.m.hintsDeleted.Load(),
		HintBytes:      s.totalHintBytes(),
		Marked:         s.m.marked.Load(),
		Reaped:         s.m.reaped.Load(),
		Forgotten:      s.m.forgotten.Load(),
		Quarantined:    s.m.quarantined.Load(),
		Skipped:        s.m.skipped.Load(),
		Errors:         s.m.errors.Load(),
		Failed:         s.failure.Load() != nil,
		Failures:       s.m.failures.Load(),
		Reopens:        s.m.reopens.Load(),
		MergesTooLarge: s.m.mergesTooLarge.Load(),
	}
	if s.rows != nil {
		m.RowCacheHits, m.RowCacheMisses = s.rows.hits.Load(), s.rows.misses.Load()
		m.RowCacheBytes, m.RowCacheEntries = s.rows.usage()
	}
	s.inflight.Add(1)
	defer s.exit()
	// A failed Store's pebble may be replaced or gone (Reopen).
	if s.closing.Load() || s.wedged.Load() || s.failure.Load() != nil {
		return m
	}
	pm := s.db.Metrics()
	m.DiskUsage = pm.DiskSpaceUsage()
	m.MemTableBytes = pm.MemTable.Size
	m.BlockCacheBytes = pm.BlockCache.Size
	m.BlockCacheHits = pm.BlockCache.Hits
	m.BlockCacheMisses = pm.BlockCache.Misses
	m.Flushes = pm.Flush.Count
	m.Compactions = pm.Compact.Count
	m.ReadAmp = pm.ReadAmp()
	return m
}
