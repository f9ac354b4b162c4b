package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/quorumkv/quorumkv/version"
)

// MarkReapable sets ReapAfter on a tombstone-only record, provided its set
// still equals expect (no write slipped in since the caller saw it on every
// replica). It returns ErrNotFound for an absent key, ErrChanged when the
// stored set differs from expect, and ErrNotTombstone when the set holds a
// live sibling. Marking again moves the time. The mark is written without
// an fsync: losing it in a crash only delays reaping.
func (s *Store) MarkReapable(k []byte, expect version.Set, after time.Time) (err error) {
	if _, _, err := DecodeKey(k); err != nil {
		return err
	}
	at := after.UnixNano()
	if at <= 0 {
		return fmt.Errorf("store: mark reapable: time %v is not after the Unix epoch", after)
	}
	hash := s.cfg.Hash(k) // caller code: computed outside recoverPebble
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	defer s.recoverPebble(&err, nil)

	row := dataRow(hash, k)
	mu := s.stripe(hash)
	mu.Lock()
	defer mu.Unlock()

	rec, _, found, err := s.readData(hash, row, k)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("store: mark reapable %q: %w", k, ErrNotFound)
	}
	if !bytes.Equal(rec.Set, EncodeSet(expect)) {
		return fmt.Errorf("store: mark reapable %q: %w", k, ErrChanged)
	}
	set, err := s.decodeStored(k, rec)
	if err != nil {
		return err
	}
	if !set.Deleted() {
		return fmt.Errorf("store: mark reapable %q: %w", k, ErrNotTombstone)
	}
	if rec.ReapAfter == at {
		return nil
	}
	b := s.db.NewBatch()
	if rec.ReapAfter != 0 {
		_ = b.Delete(reapRow(rec.ReapAfter, hash, k), nil)
	}
	marked := record{Set: rec.Set, ReapAfter: at}
	stored := encodeRecord(marked)
	_ = b.Set(row, stored, nil)
	_ = b.Set(reapRow(at, hash, k), nil, nil)
	if err := s.commit(b, false); err != nil {
		return err
	}
	s.rows.put(hash, row, cachedRow{rec: marked, size: len(stored)})
	s.m.marked.Add(1)
	return nil
}

// reapEntry is one reap index row.
type reapEntry struct {
	after int64
	hash  uint64
	k     []byte
}

// Reap turns up to limit records (limit <= 0: no limit) whose set is all
// tombstones and whose ReapAfter is at or before now into the memory of a
// reaped key: the row keeps only the tombstones' context, with no sibling,
// until now + Config.ReapMemory. Each is rechecked under its key lock: a
// record written since it was marked has ReapAfter 0 and is skipped. The
// memory is not data (Scan passes over it, OnWrite reports the record as
// deleted), but it still supersedes everything the tombstones did: a late
// merge of an old version changes nothing, and a peer's sweep is told this
// replica holds the tombstones. Reap also deletes the memories whose time
// is up, and returns how many records it reaped (not counting those).
// Deletions are not fsynced: one lost in a crash leaves the marked
// tombstone, which a later Reap removes. An index entry whose key or
// record does not decode is dropped and counted in Metrics.Skipped (the
// record stays), so one bad record does not stop the reaping of every
// other.
func (s *Store) Reap(now time.Time, limit int) (n int, err error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.exit()
	var inUser bool
	defer s.recoverPebble(&err, &inUser)

	cutoff := now.UnixNano()
	if cutoff <= 0 {
		return 0, nil
	}
	entries, err := s.dueReapEntries(prefixReap, cutoff, limit)
	if err != nil {
		return 0, err
	}
	forget := now.Add(s.cfg.ReapMemory).UnixNano()
	for _, e := range entries {
		reaped, err := s.reapOne(e, forget, &inUser)
		if err != nil {
			return n, err
		}
		if reaped {
			n++
		}
	}
	due, err := s.dueReapEntries(prefixForget, cutoff, limit)
	if err != nil {
		return n, err
	}
	for _, e := range due {
		if err := s.forgetOne(e); err != nil {
			return n, err
		}
	}
	return n, nil
}

// dueReapEntries lists up to limit entries of the reap or forget index
// (prefix) with after <= cutoff.
func (s *Store) dueReapEntries(prefix byte, cutoff int64, limit int) (_ []reapEntry, err error) {
	upper := reapRow(cutoff, 0, nil)[:9]
	upper[0] = prefix
	upper = incrementBound(upper)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefix}, UpperBound: upper})
	if err != nil {
		s.m.errors.Add(1)
		return nil, fmt.Errorf("store: reap: %w", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store: reap: %w", cerr)
		}
	}()
	var out []reapEntry
	var bad [][]byte
	for valid := it.First(); valid && (limit <= 0 || len(out) < limit); valid = it.Next() {
		after, hash, k, ok := parseReapRow(it.Key())
		if !ok {
			// Not an entry Reap can act on, now or later: drop it.
			s.skip("reap index", it.Key(), errors.New("bad reap index key"))
			bad = append(bad, bytes.Clone(it.Key()))
			continue
		}
		out = append(out, reapEntry{after: after, hash: hash, k: bytes.Clone(k)})
	}
	if err := it.Error(); err != nil {
		s.m.errors.Add(1)
		return nil, fmt.Errorf("store: reap: %w", err)
	}
	if len(bad) > 0 {
		b := s.db.NewBatch()
		for _, key := range bad {
			_ = b.Delete(key, nil)
		}
		if err := s.commit(b, false); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// incrementBound returns the smallest key greater than every key with
// prefix b (b must not be all 0xff).
func incrementBound(b []byte) []byte {
	out := bytes.Clone(b)
	for i := len(out) - 1; i >= 0; i-- {
		out[i]++
		if out[i] != 0 {
			return out[:i+1]
		}
	}
	return out
}

// reapOne replaces e's record by the memory of a reaped key (forgotten at
// forget) if it is still marked with e.after and all tombstones, and calls
// OnWrite, all under the key's lock; it always drops the index entry. A
// record that does not decode is kept and skipped (it is not known to be
// a tombstone; a merge that heals it resets its mark), so that one bad
// record cannot stop every later reap. *inUser is set while OnWrite runs.
func (s *Store) reapOne(e reapEntry, forget int64, inUser *bool) (reaped bool, err error) {
	mu := s.stripe(e.hash)
	mu.Lock()
	defer mu.Unlock()
	row := dataRow(e.hash, e.k)
	rec, _, found, err := s.readData(e.hash, row, e.k)
	set, found, err := s.decodeRead(e.k, rec, found, err)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return false, err
	}
	b := s.db.NewBatch()
	_ = b.Delete(reapRow(e.after, e.hash, e.k), nil)
	var mem record
	var stored []byte
	switch {
	case err != nil: // counted in Errors by the read
		s.passOver("reap", e.k, err)
	case found && rec.ReapAfter == e.after && set.Deleted():
		mem = record{Set: EncodeSet(version.Set{Context: set.Context}), Forget: forget}
		stored = encodeRecord(mem)
		_ = b.Set(row, stored, nil)
		_ = b.Set(forgetRow(forget, e.hash, e.k), nil, nil)
		reaped = true
	}
	if err := s.commit(b, false); err != nil {
		return false, err
	}
	if !reaped {
		return false, nil
	}
	s.rows.put(e.hash, row, cachedRow{rec: mem, size: len(stored)})
	s.m.reaped.Add(1)
	if s.cfg.OnWrite != nil {
		*inUser = true
		s.cfg.OnWrite(WriteEvent{Hash: e.hash, Key: e.k, Old: rec.Set, New: nil})
		*inUser = false
	}
	return true, nil
}

// forgetOne deletes the memory of a reaped key whose time is up, if the
// row still is that memory, and drops the index entry.
func (s *Store) forgetOne(e reapEntry) error {
	mu := s.stripe(e.hash)
	mu.Lock()
	defer mu.Unlock()
	row := dataRow(e.hash, e.k)
	rec, _, found, err := s.readData(e.hash, row, e.k)
	if err != nil && !errors.Is(err, ErrCorrupt) {
		return err
	}
	b := s.db.NewBatch()
	_ = b.Delete(forgetRow(e.after, e.hash, e.k), nil)
	gone := err == nil && found && rec.Forget == e.after
	if gone {
		_ = b.Delete(row, nil)
	}
	if err := s.commit(b, false); err != nil {
		return err
	}
	if gone {
		s.rows.drop(e.hash, row)
		s.m.forgotten.Add(1)
	}
	return nil
}
