package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/cockroachdb/pebble/v2"
	"github.com/quorumkv/quorumkv/version"
)

// Get returns the key's set; an absent key is the zero Set and no error.
func (s *Store) Get(k []byte) (set version.Set, err error) {
	if _, _, err := DecodeKey(k); err != nil {
		return version.Set{}, err
	}
	hash := s.cfg.Hash(k) // caller code: computed outside recoverPebble
	if err := s.enter(); err != nil {
		return version.Set{}, err
	}
	defer s.exit()
	defer s.recoverPebble(&err, nil)
	s.m.gets.Add(1)
	row := dataRow(hash, k)
	rec, found := record{}, false
	if r, ok := s.rows.get(hash, row); ok {
		rec, found = r.rec, true
	} else if s.rows != nil {
		// Take the key's lock to fill the cache: see rowCache. Pebble
		// read under the lock is current, so the cache is not asked again.
		mu := s.stripe(hash)
		mu.Lock()
		rec, _, found, err = s.fillData(hash, row, k)
		mu.Unlock()
	} else {
		rec, _, found, err = s.readRow(row, k)
	}
	if err != nil || !found {
		return version.Set{}, err
	}
	return s.decodeStored(k, rec)
}

// decodeRead finishes a read of key k's stored record (readRow's or
// readData's results): it decodes the set of a record that was found. A
// record that does not decode comes back as a *CorruptError (healable
// says whether a write may replace it); found then says whether its
// framing decoded, in which case rec holds its set bytes.
func (s *Store) decodeRead(k []byte, rec record, found bool, err error) (set version.Set, _ bool, _ error) {
	if err != nil || !found {
		return version.Set{}, false, err
	}
	set, err = s.decodeStored(k, rec)
	return set, true, err
}

// decodeStored decodes the set of a stored record of key k. A failure is
// counted and reported as a *CorruptError naming k.
func (s *Store) decodeStored(k []byte, rec record) (version.Set, error) {
	set, err := DecodeSet(rec.Set)
	if err != nil {
		s.m.errors.Add(1)
		return version.Set{}, &CorruptError{Key: bytes.Clone(k), Err: err}
	}
	return set, nil
}

// Update reads the key's current set, calls fn, and durably writes fn's
// result, all while holding the key's lock: concurrent updates of one key on
// one node are serialized; different keys are not. fn gets a set it may
// modify and return. If fn returns an error nothing is written and the error
// is returned. If the result equals the current set, nothing is written
// (idempotent retries cost no fsync of their own), but the call still
// returns only once the record it found is durable. A result that IsEmpty
// deletes the row. Update returns the stored set and whether it changed.
// Any write resets the record's ReapAfter.
//
// A key that was reaped (see Reap) comes to fn as a set with no sibling
// and the reaped tombstones' context, so that what they superseded stays
// superseded: a merge of such a version changes nothing, and a new write
// keeps the context. A result with no sibling but a context is stored as
// such a memory again, which is also how a replica that still holds the
// tombstones takes over the reap from a peer that already reaped.
func (s *Store) Update(k []byte, fn func(cur version.Set) (version.Set, error)) (version.Set, bool, error) {
	s.m.updates.Add(1)
	return s.update(k, fn, nil, false)
}

// UpdateAsync is Update that returns as soon as the write is applied and
// visible, before its WAL sync: the caller must call wait, which returns
// once the write is durable (or the error that kept it from being), before
// acknowledging it to anyone. A coordinator uses it to start replicating a
// write while its own fsync is still running. wait is nil when nothing was
// written or the store does not sync.
func (s *Store) UpdateAsync(k []byte, fn func(cur version.Set) (version.Set, error)) (set version.Set, changed bool, wait func() error, err error) {
	s.m.updates.Add(1)
	set, changed, err = s.update(k, fn, &wait, false)
	return set, changed, wait, err
}

// checkMerged refuses, with a *TooLargeError, a merge result of merged
// bytes that exceeds Config.MaxMergeBytes and grows the stored bytes
// (stored). A merge that does not grow the record is always taken: it is
// how a client's resolution shrinks a record over the cap.
func (s *Store) checkMerged(k, merged, stored []byte) error {
	limit := s.cfg.MaxMergeBytes
	if limit <= 0 || len(merged) <= limit || len(merged) <= len(stored) {
		return nil
	}
	s.m.mergesTooLarge.Add(1)
	return &TooLargeError{Key: k, Bytes: len(merged), Limit: limit}
}

// Merge syncs an incoming set into the stored one (version.Sync).
// Replication, read repair, hint replay and anti-entropy all use it;
// merging a set already reflected costs no write. It never resolves
// siblings, also not for a last-write-wins bucket: a resolution drops the
// losers while their dots stay in the context, so replicas that merged in
// different orders would keep different winners, and merging those would
// drop both. Reads resolve what they return instead.
//
// A merge whose result would be larger than Config.MaxMergeBytes, and
// larger than the stored record, is refused with a *TooLargeError and
// changes nothing: the sender still holds what it sent, so nothing it
// acknowledged is lost, and the key's reader resolves the siblings.
//
// A stored record that is corrupt (it does not decode, and not because
// its format is newer than this version) is healed: its raw bytes move to
// the quarantine (ScanQuarantine), the incoming set takes its place, and
// the actor epoch advances (ActorEpoch). Update does not heal: issuing a
// dot needs the record's history.
func (s *Store) Merge(k []byte, in version.Set) (version.Set, bool, error) {
	s.m.merges.Add(1)
	return s.update(k, func(cur version.Set) (version.Set, error) {
		return version.Sync(cur, in), nil
	}, nil, true)
}

// update applies fn to k's record under the key's stripe lock. The lock is
// released before the WAL sync is awaited, so writers of a hot key queue
// behind each other's memtable inserts, not behind their fsyncs; a later
// writer's sync covers every earlier WAL entry. With async set, the wait
// for the sync is handed to the caller instead of done here.
func (s *Store) update(k []byte, fn func(cur version.Set) (version.Set, error), async *func() error, heal bool) (res version.Set, changed bool, err error) {
	if _, _, err := DecodeKey(k); err != nil {
		return version.Set{}, false, err
	}
	hash := s.cfg.Hash(k) // caller code: computed outside recoverPebble
	if err := s.enter(); err != nil {
		return version.Set{}, false, err
	}
	defer s.exit()
	var inUser bool
	defer s.recoverPebble(&err, &inUser)

	row := dataRow(hash, k)
	mu := s.stripe(hash)
	mu.Lock()
	locked := true
	defer func() {
		if locked {
			mu.Unlock()
		}
	}()

	// corrupt is set when the stored record does not decode and this
	// write replaces it (heal). A record whose framing is bad is absent
	// from Scan, hence from the Merkle trees, so its old bytes are nil
	// for OnWrite; one whose set bytes are bad is present with them.
	old, _, found, err := s.readData(hash, row, k)
	cur, found, err := s.decodeRead(k, old, found, err)
	corrupt := err != nil
	if corrupt && (!heal || !healable(err)) {
		return version.Set{}, false, err
	}
	inUser = true
	next, err := fn(cur)
	inUser = false
	if err != nil {
		return version.Set{}, false, err
	}
	next = canonicalSet(next)
	// The row holds data (a set with siblings), or the memory of a reaped
	// key (a context alone: see Reap), or nothing.
	var newBytes []byte
	var rec record
	switch {
	case len(next.Siblings) > 0:
		newBytes = EncodeSet(next)
		rec = record{Set: newBytes}
	case !next.Context.IsEmpty():
		newBytes = EncodeSet(next)
		rec = record{Set: newBytes, Forget: s.cfg.Clock.Now().Add(s.cfg.ReapMemory).UnixNano()}
		if found && old.reaped() {
			rec.Forget = old.Forget
		}
	}
	if heal {
		if err := s.checkMerged(k, newBytes, old.Set); err != nil {
			return version.Set{}, false, err
		}
	}
	if !corrupt && bytes.Equal(newBytes, old.Set) { // nil for an absent row
		s.m.unchanged.Add(1)
		mu.Unlock()
		locked = false
		wait, err := s.durableBarrier()
		if err != nil {
			return version.Set{}, false, err
		}
		if async != nil {
			*async = wait
		} else if wait != nil {
			if err := wait(); err != nil {
				return version.Set{}, false, err
			}
		}
		return next, false, nil
	}

	b := s.db.NewBatch()
	var epoch uint64
	epochHeld := false
	defer func() {
		if epochHeld {
			s.epochMu.Unlock()
		}
	}()
	if corrupt {
		// Heals are serialized from reading the epoch to publishing it, so
		// that both the stored and the published epoch only grow. The lock
		// is released once the epoch is published: not held through
		// OnWrite (which may write other keys) or the fsync wait.
		s.epochMu.Lock()
		epochHeld = true
		if _, err = s.quarantineCopy(b, row); err != nil {
			_ = b.Close()
			s.m.errors.Add(1)
			return version.Set{}, false, err
		}
		epoch = s.nextEpoch(b)
	}
	var stored []byte
	if newBytes == nil {
		_ = b.Delete(row, nil)
	} else {
		stored = encodeRecord(rec)
		_ = b.Set(row, stored, nil)
	}
	if old.ReapAfter != 0 {
		_ = b.Delete(reapRow(old.ReapAfter, hash, k), nil)
	}
	if old.Forget != rec.Forget {
		if old.Forget != 0 {
			_ = b.Delete(forgetRow(old.Forget, hash, k), nil)
		}
		if rec.Forget != 0 {
			_ = b.Set(forgetRow(rec.Forget, hash, k), nil, nil)
		}
	}
	wait, err := s.commitNoSyncWait(b, s.cfg.Sync)
	if err != nil {
		return version.Set{}, false, err
	}
	if corrupt {
		// Published before the key's lock is released: no dot for this
		// key is issued under the old actor after the heal.
		s.epoch.Store(epoch)
		s.epochMu.Unlock()
		epochHeld = false
		s.m.quarantined.Add(1)
		s.log.Warn().Bytes("key", k).Uint64("actor_epoch", epoch).Msg("replaced a corrupt record by a merge; its bytes are quarantined")
	}
	if newBytes == nil {
		s.rows.drop(hash, row)
	} else {
		s.rows.put(hash, row, cachedRow{rec: rec, size: len(stored)})
	}
	s.m.writes.Add(1)
	// The Merkle trees hold data only: a reaped key's memory is absent
	// from them, as it is from Scan.
	oldData, newData := old.Set, newBytes
	if old.reaped() {
		oldData = nil
	}
	if rec.reaped() {
		newData = nil
	}
	if s.cfg.OnWrite != nil && (oldData != nil || newData != nil) {
		inUser = true
		s.cfg.OnWrite(WriteEvent{Hash: hash, Key: k, Old: oldData, New: newData})
		inUser = false
	}
	mu.Unlock()
	locked = false
	if async != nil {
		*async = wait
		return next, true, nil
	}
	if wait != nil {
		if err := wait(); err != nil {
			return version.Set{}, false, err
		}
	}
	return next, true, nil
}

// Scan calls fn for every data row whose hash is in [lo, hi], in hash order
// (then key order), from a consistent snapshot. fn gets the row's encoded
// key and its canonical set bytes; it must not retain or modify the slices.
// fn may call other Store methods, but not Close. An error from fn stops
// the scan and is returned as is. A record whose framing does not decode
// is skipped and counted in Metrics.Skipped: to anti-entropy the key looks
// absent here, so a peer's copy is merged in, which heals it (Merge). The
// set bytes are handed out undecoded.
func (s *Store) Scan(lo, hi uint64, fn func(hash uint64, k []byte, setBytes []byte) error) (err error) {
	if lo > hi {
		return nil
	}
	return s.scanData(dataBound(lo), hi, fn)
}

// ScanAfter is Scan over the rows of [lo, hi] that sort strictly after the
// row of (afterHash, afterKey): it resumes a scan that stopped at that row.
// afterHash must be in [lo, hi]; use Scan to start at lo.
func (s *Store) ScanAfter(lo, hi, afterHash uint64, afterKey []byte, fn func(hash uint64, k []byte, setBytes []byte) error) (err error) {
	if lo > hi || afterHash < lo || afterHash > hi {
		return fmt.Errorf("%w: resume point %016x outside [%016x, %016x]", ErrBadKey, afterHash, lo, hi)
	}
	// The row's immediate successor: rows compare as bytes, and no row
	// sorts between r and r‖0x00.
	return s.scanData(append(dataRow(afterHash, afterKey), 0), hi, fn)
}

// scanData is Scan from the row lower up to hash hi.
func (s *Store) scanData(lower []byte, hi uint64, fn func(hash uint64, k []byte, setBytes []byte) error) (err error) {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	var inUser bool
	defer s.recoverPebble(&err, &inUser)

	return s.scanRecords("scan", lower, dataUpper(hi), parseDataRow, nil, func(hash uint64, k []byte, rec record) error {
		if rec.reaped() {
			return nil // not data: see Reap
		}
		inUser = true // left set if fn panics: recoverPebble re-raises it
		err := fn(hash, k, rec.Set)
		inUser = false
		return err
	})
}

// scanRecords calls fn for every row in [lower, upper) from a consistent
// snapshot, with the row's hash and encoded key (from parse) and its
// decoded record. fn, not scanRecords, marks where the caller's code runs
// (recoverPebble's inUser). A row key that does not
// parse or a record that does not decode is skipped and counted (one bad
// row must not stop anti-entropy or hint replay for all the others), and
// a record that does not decode is then passed to bad, if set, with its
// *CorruptError. An error from fn or bad stops the scan and is returned as
// is. what names the scan in errors.
func (s *Store) scanRecords(what string, lower, upper []byte, parse func(row []byte) (uint64, []byte, bool),
	bad func(k []byte, err error) error, fn func(hash uint64, k []byte, rec record) error) (err error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		s.m.errors.Add(1)
		return fmt.Errorf("store: %s: %w", what, err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			s.m.errors.Add(1)
			err = fmt.Errorf("store: %s: %w", what, cerr)
		}
	}()
	for valid := it.First(); valid; valid = it.Next() {
		// A storage failure stops a scan too: the memtable may hold
		// writes that were never acknowledged, and Reopen waits for
		// every running operation.
		if err := s.failedErr(); err != nil {
			return err
		}
		hash, k, ok := parse(it.Key())
		if !ok {
			s.skip(what, it.Key(), errors.New("bad row key"))
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			s.m.errors.Add(1)
			return fmt.Errorf("store: %s: %w", what, err)
		}
		rec, err := decodeRecord(v)
		if err != nil {
			s.skip(what, k, err)
			if bad != nil {
				if err := bad(k, &CorruptError{Key: k, Err: err}); err != nil {
					return err
				}
			}
			continue
		}
		if err := fn(hash, k, rec); err != nil {
			return err
		}
	}
	if err := it.Error(); err != nil {
		s.m.errors.Add(1)
		return fmt.Errorf("store: %s: %w", what, err)
	}
	return nil
}

// skipLogBurst is how many skipped rows a minute are logged. Every scan
// meets the same bad rows again (anti-entropy scans each partition every
// round), so the log would repeat them forever; Metrics.Skipped counts all.
const skipLogBurst = 5

// skip counts a row a scan passes over because it does not decode.
func (s *Store) skip(what string, k []byte, err error) {
	s.m.errors.Add(1)
	s.passOver(what, k, err)
}

// passOver is skip for a failure the read already counted in Errors.
func (s *Store) passOver(what string, k []byte, err error) {
	s.m.skipped.Add(1)
	s.skipLog.Warn().Str("scan", what).Bytes("key", k).Err(err).Msg("skipping a row that does not decode")
}

// Discard deletes k's record if it still equals expect, and reports
// whether it did. It is for a record whose content this node has handed
// to the key's replicas (kept as hints for them) because it does not
// replicate the key itself: nothing of it is remembered here, unlike a
// reaped key. The delete is fsynced with Config.Sync, so that a crash
// cannot leave both the record and its hints to be handed off twice (which
// would be harmless, but wasteful).
func (s *Store) Discard(k []byte, expect version.Set) (deleted bool, err error) {
	return s.discard(k, expect, s.cfg.Sync)
}

// DiscardUnsynced is Discard without waiting for the delete to be durable:
// for dropping many records that the key's replicas are known to hold
// already (a partition this node handed off), where a crash that brings
// some back only means handing them off again. Sync makes them durable.
func (s *Store) DiscardUnsynced(k []byte, expect version.Set) (deleted bool, err error) {
	return s.discard(k, expect, false)
}

func (s *Store) discard(k []byte, expect version.Set, sync bool) (deleted bool, err error) {
	if _, _, err := DecodeKey(k); err != nil {
		return false, err
	}
	hash := s.cfg.Hash(k) // caller code: computed outside recoverPebble
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.exit()
	var inUser bool
	defer s.recoverPebble(&err, &inUser)

	row := dataRow(hash, k)
	mu := s.stripe(hash)
	mu.Lock()
	defer mu.Unlock()
	rec, _, found, err := s.readData(hash, row, k)
	if err != nil || !found || rec.reaped() || !bytes.Equal(rec.Set, EncodeSet(expect)) {
		return false, err
	}
	b := s.db.NewBatch()
	_ = b.Delete(row, nil)
	if rec.ReapAfter != 0 {
		_ = b.Delete(reapRow(rec.ReapAfter, hash, k), nil)
	}
	if err := s.commit(b, sync); err != nil {
		return false, err
	}
	s.rows.drop(hash, row)
	s.m.writes.Add(1)
	if s.cfg.OnWrite != nil {
		inUser = true
		s.cfg.OnWrite(WriteEvent{Hash: hash, Key: k, Old: rec.Set, New: nil})
		inUser = false
	}
	return true, nil
}

// CompactRange asks pebble to compact the data rows with hashes in
// [lo, hi], so that the space of rows deleted there (a partition handed
// off) is given back to the file system now rather than whenever
// compactions reach them.
func (s *Store) CompactRange(lo, hi uint64) (err error) {
	if lo > hi {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	var inUser bool
	defer s.recoverPebble(&err, &inUser)
	if err := s.db.Compact(context.Background(), dataBound(lo), dataUpper(hi), true); err != nil {
		s.m.errors.Add(1)
		return fmt.Errorf("store: compact: %w", err)
	}
	return nil
}

// Sync makes every write committed so far durable, those committed
// without waiting for their sync included.
func (s *Store) Sync() (err error) {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	var inUser bool
	defer s.recoverPebble(&err, &inUser)
	if !s.cfg.Sync {
		return nil
	}
	b := s.db.NewBatch()
	_ = b.LogData(nil, nil)
	return s.commit(b, true)
}

// dataUpper returns the exclusive upper bound of the data rows with hashes
// up to hi.
func dataUpper(hi uint64) []byte {
	if hi == math.MaxUint64 {
		return []byte{prefixData + 1}
	}
	return dataBound(hi + 1)
}
