package store

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/quorumkv/quorumkv/version"
)

// AddHint durably stores set as a hint for owner: a write this node
// accepted on owner's behalf, to hand off when owner is reachable again.
// A hint for an (owner, key) that already has one is merged with it
// (version.Sync). An empty set is not stored. Hints are fsynced like data
// writes when Config.Sync is set. A stored hint that is corrupt (not one in
// a newer format) is replaced by set, and its bytes are quarantined: its
// write is lost here either way, and set is what can still be handed off.
// The actor epoch does not change, since no dot is issued from a hint.
//
// limit, when positive, caps the bytes of owner's pending hints (HintBytes):
// a hint that would grow them past it is not stored, and AddHint returns
// stored == false and no error. A merge that does not grow the hint (a
// tombstone replacing a live value, say) is always stored, even over the
// limit: refusing it would leave the superseded hint to be handed off
// later. total, when positive, caps the pending hint bytes of all owners
// together the same way, but a hint past it is refused with ErrHintsFull
// (stored == false). Concurrent calls cannot overrun either limit
// together. A merged hint larger than Config.MaxMergeBytes (and than the
// hint it replaces) is refused with a *TooLargeError, as Merge refuses it.
func (s *Store) AddHint(owner string, k []byte, set version.Set, limit, total int64) (stored bool, err error) {
	if err := validOwner(owner); err != nil {
		return false, err
	}
	if _, _, err := DecodeKey(k); err != nil {
		return false, err
	}
	if set.IsEmpty() {
		return true, nil
	}
	hash := s.cfg.Hash(k) // caller code: computed outside recoverPebble
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.exit()
	defer s.recoverPebble(&err, nil)

	row := hintRow(owner, hash, k)
	mu := s.stripe(hash)
	mu.Lock()
	defer mu.Unlock()

	old, oldSize, found, err := s.readRow(row, k)
	cur, found, err := s.decodeRead(k, old, found, err)
	corrupt := err != nil
	if corrupt && !healable(err) {
		return false, err
	}
	merged := set
	if found && !corrupt {
		merged = version.Sync(cur, set)
	}
	newBytes := EncodeSet(merged)
	if !corrupt && bytes.Equal(newBytes, old.Set) {
		return true, nil
	}
	if err := s.checkMerged(k, newBytes, old.Set); err != nil {
		return false, err
	}
	val := encodeRecord(record{Set: newBytes})
	b := s.db.NewBatch()
	if corrupt {
		if oldSize, err = s.quarantineCopy(b, row); err != nil {
			_ = b.Close()
			s.m.errors.Add(1)
			return false, err
		}
	}
	delta, rows := int64(len(row)+len(val)), int64(1)
	if found || corrupt {
		delta, rows = delta-int64(len(row)+oldSize), 0
	}
	if ok, err := s.reserveHint(owner, delta, limit, total); !ok {
		_ = b.Close()
		return false, err
	}
	defer s.releaseHint(owner, delta)
	_ = b.Set(row, val, nil)
	if err := s.commit(b, s.cfg.Sync); err != nil {
		return false, err
	}
	if corrupt {
		s.m.quarantined.Add(1)
		s.log.Warn().Str("owner", owner).Bytes("key", k).Msg("replaced a corrupt hint by a new one; its bytes are quarantined")
	}
	if rows == 1 {
		s.m.hintsAdded.Add(1)
	}
	s.addHints(owner, delta, rows)
	return true, nil
}

// reserveHint reserves delta bytes of owner's hint budget for a hint being
// written, if they fit under limit for owner and under total for all
// owners together (<= 0: no limit). A delta that does not grow the hints
// always fits. Past total it returns ErrHintsFull.
func (s *Store) reserveHint(owner string, delta, limit, total int64) (bool, error) {
	s.hintMu.Lock()
	defer s.hintMu.Unlock()
	if delta > 0 && limit > 0 && s.hintBytes[owner]+s.hintPending[owner]+delta > limit {
		return false, nil
	}
	if delta > 0 && total > 0 && s.allHintBytesLocked()+delta > total {
		return false, ErrHintsFull
	}
	s.hintPending[owner] += delta
	return true, nil
}

// allHintBytesLocked returns the pending and reserved hint bytes of all
// owners. s.hintMu must be held.
func (s *Store) allHintBytesLocked() int64 {
	var n int64
	for _, b := range s.hintBytes {
		n += b
	}
	for _, b := range s.hintPending {
		n += b
	}
	return n
}

// releaseHint returns a reservation made by reserveHint.
func (s *Store) releaseHint(owner string, delta int64) {
	s.hintMu.Lock()
	defer s.hintMu.Unlock()
	if s.hintPending[owner] -= delta; s.hintPending[owner] == 0 {
		delete(s.hintPending, owner)
	}
}

// Hint returns the hint held for owner's key k; none is the zero Set and
// no error. A fallback answers reads with it (sloppy reads).
func (s *Store) Hint(owner string, k []byte) (set version.Set, err error) {
	if err := validOwner(owner); err != nil {
		return version.Set{}, err
	}
	if _, _, err := DecodeKey(k); err != nil {
		return version.Set{}, err
	}
	hash := s.cfg.Hash(k) // caller code: computed outside recoverPebble
	if err := s.enter(); err != nil {
		return version.Set{}, err
	}
	defer s.exit()
	defer s.recoverPebble(&err, nil)
	rec, _, found, err := s.readRow(hintRow(owner, hash, k), k)
	if err != nil || !found {
		return version.Set{}, err
	}
	return s.decodeStored(k, rec)
}

// ScanHints calls fn for every hint of owner, in hash order, from a
// consistent snapshot. fn must not retain k; the set is its own. fn may call
// other Store methods (DeleteHint after a successful replay), but not Close.
// An error from fn stops the scan and is returned as is. A hint that is
// corrupt (not one in a newer format, which is skipped) is moved to the
// quarantine instead of being handed to fn: its write cannot be handed off,
// and left in place it would stop every replay and fail every sloppy read
// of its key here. Both count in Metrics.Skipped.
func (s *Store) ScanHints(owner string, fn func(k []byte, set version.Set) error) (err error) {
	if err := validOwner(owner); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	var inUser bool
	defer s.recoverPebble(&err, &inUser)

	lower := hintPrefix(owner)
	parse := func(row []byte) (uint64, []byte, bool) {
		_, k, ok := parseHintRow(row)
		return 0, k, ok
	}
	drop := func(k []byte, err error) error {
		if !healable(err) {
			return nil
		}
		return s.dropCorruptHint(owner, k)
	}
	return s.scanRecords("scan hints", lower, incrementBound(lower), parse, drop, func(_ uint64, k []byte, rec record) error {
		set, err := DecodeSet(rec.Set)
		if err != nil {
			s.skip("scan hints", k, err)
			return drop(k, &CorruptError{Key: k, Err: err})
		}
		inUser = true // left set if fn panics: recoverPebble re-raises it
		err = fn(k, set)
		inUser = false
		return err
	})
}

// dropCorruptHint moves owner's hint for k to the quarantine and deletes it,
// if it is still corrupt (a concurrent AddHint may have replaced it).
func (s *Store) dropCorruptHint(owner string, k []byte) error {
	hash := s.cfg.Hash(k)
	row := hintRow(owner, hash, k)
	mu := s.stripe(hash)
	mu.Lock()
	defer mu.Unlock()
	rec, _, found, err := s.readRow(row, k)
	if _, _, err = s.decodeRead(k, rec, found, err); err == nil || !healable(err) {
		return nil // gone, replaced meanwhile, or not to be replaced
	}
	b := s.db.NewBatch()
	size, err := s.quarantineCopy(b, row)
	if err != nil {
		_ = b.Close()
		s.m.errors.Add(1)
		return err
	}
	_ = b.Delete(row, nil)
	// Not fsynced: if a crash loses the batch, the hint is still corrupt
	// and the next scan drops it again.
	if err := s.commit(b, false); err != nil {
		return err
	}
	s.m.quarantined.Add(1)
	s.addHints(owner, -int64(len(row)+size), -1)
	s.log.Warn().Str("owner", owner).Bytes("key", k).Msg("dropped a corrupt hint; its bytes are quarantined")
	return nil
}

// DeleteHint deletes owner's hint for k if it still equals replayed, the
// set that was handed off; a hint merged after the replay began survives
// (and is replayed next time). It reports whether it deleted. The delete is
// not fsynced: if a crash loses it, the hint is replayed again, which is
// harmless because Merge is idempotent.
func (s *Store) DeleteHint(owner string, k []byte, replayed version.Set) (deleted bool, err error) {
	if err := validOwner(owner); err != nil {
		return false, err
	}
	if _, _, err := DecodeKey(k); err != nil {
		return false, err
	}
	hash := s.cfg.Hash(k) // caller code: computed outside recoverPebble
	if err := s.enter(); err != nil {
		return false, err
	}
	defer s.exit()
	defer s.recoverPebble(&err, nil)

	row := hintRow(owner, hash, k)
	mu := s.stripe(hash)
	mu.Lock()
	defer mu.Unlock()

	rec, size, found, err := s.readRow(row, k)
	if err != nil || !found {
		return false, err
	}
	if !bytes.Equal(rec.Set, EncodeSet(replayed)) {
		return false, nil
	}
	b := s.db.NewBatch()
	_ = b.Delete(row, nil)
	if err := s.commit(b, false); err != nil {
		return false, err
	}
	s.m.hintsDeleted.Add(1)
	s.addHints(owner, -int64(len(row)+size), -1)
	return true, nil
}

// HintBytes returns the bytes (keys plus values) of owner's pending hints.
func (s *Store) HintBytes(owner string) int64 {
	s.hintMu.Lock()
	defer s.hintMu.Unlock()
	return s.hintBytes[owner]
}

// HintOwners returns the owners with pending hints, sorted.
func (s *Store) HintOwners() []string {
	s.hintMu.Lock()
	defer s.hintMu.Unlock()
	out := make([]string, 0, len(s.hintBytes))
	for o := range s.hintBytes {
		out = append(out, o)
	}
	slices.Sort(out)
	return out
}

// HintCount returns the number of owner's pending hints (one per key).
// It implements handoff.HintCounter, so that hint metrics need no scan.
func (s *Store) HintCount(owner string) int64 {
	s.hintMu.Lock()
	defer s.hintMu.Unlock()
	return s.hintCount[owner]
}

// addHints adds to owner's pending hint bytes and rows.
func (s *Store) addHints(owner string, bytes, rows int64) {
	s.hintMu.Lock()
	defer s.hintMu.Unlock()
	n, c := s.hintBytes[owner]+bytes, s.hintCount[owner]+rows
	if n <= 0 || c <= 0 {
		delete(s.hintBytes, owner)
		delete(s.hintCount, owner)
		return
	}
	s.hintBytes[owner], s.hintCount[owner] = n, c
}

func (s *Store) totalHintBytes() int64 {
	s.hintMu.Lock()
	defer s.hintMu.Unlock()
	var n int64
	for _, b := range s.hintBytes {
		n += b
	}
	return n
}

// loadHintBytes rebuilds hintBytes and hintCount from the hint rows; Open
// and Reopen call it.
func (s *Store) loadHintBytes() error {
	sizes, counts, err := s.countHints()
	if err != nil {
		return err
	}
	s.hintMu.Lock()
	s.hintBytes, s.hintCount = sizes, counts
	s.hintMu.Unlock()
	return nil
}

// countHints sums the pending hint rows per owner: their bytes (keys plus
// values) and their number.
func (s *Store) countHints() (sizes, counts map[string]int64, err error) {
	defer s.recoverPebble(&err, nil)
	it, err := s.db.NewIter(&pebble.IterOptions{
		LowerBound: []byte{prefixHint}, UpperBound: []byte{prefixHint + 1},
	})
	if err != nil {
		return nil, nil, fmt.Errorf("store: open: loading hints: %w", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store: open: loading hints: %w", cerr)
		}
	}()
	sizes, counts = make(map[string]int64), make(map[string]int64)
	for valid := it.First(); valid; valid = it.Next() {
		owner, _, ok := parseHintRow(it.Key())
		if !ok {
			return nil, nil, &CorruptError{Key: bytes.Clone(it.Key()), Err: fmt.Errorf("bad hint row key")}
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, nil, fmt.Errorf("store: open: loading hints: %w", err)
		}
		sizes[owner] += int64(len(it.Key()) + len(v))
		counts[owner]++
	}
	if err := it.Error(); err != nil {
		return nil, nil, fmt.Errorf("store: open: loading hints: %w", err)
	}
	return sizes, counts, nil
}
