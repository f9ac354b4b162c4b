// Package store is a node's durable storage: causal version sets (package
// version) kept in a pebble LSM, plus hinted-handoff queues and small
// node-local metadata.
//
// # Key layout
//
// A user key is a (bucket, key) pair, encoded once as
//
//	k = uvarint(len(bucket)) ‖ bucket ‖ key          (EncodeKey, DecodeKey)
//
// Its hash, Config.Hash(k) (xxhash by default), is the hash the ring uses,
// so a key's partition is the top bits of it. Every pebble key starts with
// a one-byte prefix:
//
//	'd' ‖ be64(hash) ‖ k                    data row     → record
//	'h' ‖ owner ‖ 0x00 ‖ be64(hash) ‖ k     hint row     → record
//	'm' ‖ name                              meta row     → raw bytes
//	'r' ‖ be64(reapAfter) ‖ be64(hash) ‖ k  reap index   → empty
//	'f' ‖ be64(forget) ‖ be64(hash) ‖ k     forget index → empty
//
// Data rows sort by hash, so any hash range [lo, hi] (a ring partition, or
// a Merkle leaf inside one) is one contiguous pebble range: Scan. Hint rows
// group by owner, then hash. The reap index lists marked tombstones by
// deadline so Reap does not read every record.
//
// # Records and canonical sets
//
//	record = 0x01 ‖ msgpack{ s: setBytes, r: ReapAfter, f: Forget (each omitted when 0) }
//	setBytes = 0x01 ‖ msgpack(version.Set)       (EncodeSet, DecodeSet)
//
// setBytes is canonical: the msgpack map version.Set marshals to, with
// siblings sorted by dot, the context normalised, the vector's keys sorted
// and integers in their shortest form, so replicas holding Equal sets hold
// byte-identical setBytes, which anti-entropy hashes. Node-local metadata
// (ReapAfter: when a tombstone-only record may be deleted, 0 = not known to
// be on every replica) lives beside setBytes, never inside. An unknown
// format byte decodes to a *FormatError, malformed bytes to an error
// matching ErrCorrupt; a stored row that fails is reported as a
// *CorruptError naming its key. Scans skip such rows (Metrics.Skipped),
// and Merge heals a corrupt one (not one in a newer format): the raw bytes
// go to the quarantine ('q' rows, ScanQuarantine), the incoming set takes
// their place, and the actor epoch advances so that this node never
// reissues a dot the lost record may have held (ActorEpoch). Get and Update
// keep failing on the record until then. A corrupt hint is quarantined
// too: AddHint replaces it, and ScanHints drops it rather than stop the
// replay of every other hint (the epoch stays: hints issue no dots).
// Decoders never panic (fuzzed), and no length prefix can make them
// allocate more than the input justifies (msgpack/v5.4.1's own allocation
// limit for slices is broken; the input's structure is vetted first).
//
// # Reaped keys
//
// Reap does not simply delete a tombstone's record: it leaves the memory
// of the reaped key in the data row, a record whose set holds no sibling
// and the tombstones' context, with Forget set to when it goes (now +
// Config.ReapMemory; the forget index finds it then). The memory is not
// data: Scan passes over it, so it is absent from the Merkle trees, and a
// read sees an absent key with that context. But it is merged against: a
// late copy of a version the tombstones superseded (a hint, a message
// still in flight, a replica that missed the reap) changes nothing, a new
// write keeps the context, and a set with no sibling merged into a record
// (a peer's memory, through read repair) is stored as a memory too.
//
// # Dots
//
// NextCounter hands out counters this store never returned before, from a
// reservation kept in the 'dot-floor' meta row; a replica uses one as the
// floor of every dot it issues, so that a dot is never reused after a key
// was reaped or when the clock steps back. Incarnation ('incarnation'
// meta) is fixed when the store is first opened; it is part of the name a
// node issues dots under, so a node whose disk was lost issues under a new
// name.
//
// # Writes
//
// Update, Merge, AddHint, DeleteHint, MarkReapable and Reap take a per-key
// stripe lock (Config.LockStripes, chosen by hash) around read, compute and
// commit, so writes of one key on one node are serialized and Config.OnWrite
// sees them in commit order, while writes of different keys commit
// concurrently. A result equal to the stored set writes nothing.
//
// With Config.Sync a write is acknowledged only after pebble has fsynced the
// WAL record (pebble.Sync). Pebble's WAL writer batches those syncs: a
// synced commit queues itself, and the WAL flusher goroutine writes
// everything pending and issues one fsync for every commit queued by then,
// so concurrent writers share fsyncs (group commit; see the tests for the
// measured ratio). Without Sync (--sync=false) writes are acknowledged once
// in the memtable and the WAL buffer; a crash can lose the latest ones.
// Reap deletions, reap marks and hint deletions are never fsynced: losing
// them only repeats idempotent work.
//
// # Storage failures (what pebble v2.1.7 does, and what this package does)
//
// Pebble's WAL is written by one flusher goroutine. A synced commit queues
// itself and waits; the flusher writes and fsyncs, then reports the result
// to every commit queued by then. A failed WAL write or fsync is sticky in
// the flusher (every later sync fails too) and is delivered only to synced
// commits; NoSync commits never hear of it. Pebble does not return it as
// an error either:
//
//   - DB.Apply calls Options.Logger.Fatalf("pebble: fatal commit error"),
//     and the default logger calls os.Exit(1). The batch is by then already
//     in the memtable, visible to reads, though its WAL record may not be
//     durable.
//   - Once the error has reached the WAL writer (when a 32 KiB block
//     fills), the next commit panics inside the commit pipeline while
//     holding its mutex, wedging it; DB.Close would then block.
//   - When a full memtable makes a commit rotate the WAL, closing the old
//     WAL or creating the new one can fail; pebble then panics with its DB
//     mutex released under a deferred unlock, and Go aborts the process
//     with "fatal error: sync: unlock of unlocked mutex", which no recover
//     can catch (reproduced with errorfs while writing this package).
//
// MANIFEST write failures during flushes and compactions also go to
// Fatalf, on pebble's background goroutines.
//
// So pebble must never see a WAL error. The Store passes pebble a
// filesystem wrapper (guardFS) that watches the WAL files. On the first
// failed WAL write, sync, or creation it first marks the Store failed, and
// then freezes the WAL: that call and every later WAL write and sync report
// success without touching the disk, and later WAL files are kept in
// memory. The WAL on disk stays as a crash at that instant would leave it,
// which pebble's recovery handles. Every commit checks the failure after
// pebble returns and reports ErrFailed instead of acknowledging, and the
// failure is recorded before pebble can wake any committer, so no write
// whose WAL record is not durable is acknowledged. After the failure every
// operation, reads included (the memtable may hold unacknowledged writes),
// returns ErrFailed wrapping the first cause, and Health reports it.
// Close still closes pebble cleanly, and Open on the same directory
// recovers. So does Reopen, in place: once the failed instance's
// operations have returned and a probe file can be written and synced, it
// closes pebble and opens it again from the directory, empties the row
// cache and counts the hints again. With Config.ReopenBackoff the Store
// calls it by itself, 1 s after a failure and then at doubling intervals
// (30 s at most), so a node whose disk filled serves again once the disk
// has room, without a restart.
//
// As a second line, pebble gets a Logger whose Fatalf logs through zerolog
// and panics with a *FatalError instead of exiting. Every Store method that
// calls into pebble recovers that (and any other pebble panic) into an
// ErrFailed error, while panics from the caller's own callbacks (Update
// functions, Scan callbacks, OnWrite) propagate untouched. After a raw
// pebble panic Close does not call DB.Close, which could block forever;
// the process should restart. A Fatalf on a pebble background goroutine
// (MANIFEST failures) cannot be recovered and still ends the process, as
// pebble intends.
//
// A write that returned nil was fsynced (with Sync) and survives a crash; a
// write that returned an error may or may not be there after a reopen.
package store
