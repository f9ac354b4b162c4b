package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2"

	"github.com/quorumkv/quorumkv/version"
)

// metaDotFloor is the meta row holding the dot counter reservation (see
// NextCounter).
const metaDotFloor = "dot-floor"

// metaIncarnation is the meta row holding the store's incarnation (see
// Incarnation).
const metaIncarnation = "incarnation"

// dotReserve is how many counters one reservation covers: one fsynced meta
// write per million issued dots.
const dotReserve = 1 << 20

// dotCounter hands out node-wide unique counters. Its mu guards next and
// reserved: every counter below reserved may have been handed out before,
// and reserved is durable before a counter at or past the old value is.
type dotCounter struct {
	mu       sync.Mutex
	next     uint64
	reserved uint64
}

// NextCounter returns a counter this store has never returned before, not
// in this run and not in any earlier one, whatever the clock did. A
// replica passes it as version.Write.CounterFloor, so the dot it issues for
// a key is new even when the key's history was reaped everywhere it looked
// (a reaped tombstone's dots may still sit on a replica that did not reap
// yet, or in a hint, or in a message in flight).
//
// Counters come from a reservation kept in a meta row: when the counters of
// one reservation are used up, the next one is written and fsynced (with
// Config.Sync) before any of its counters is returned, so after a crash the
// store resumes past every counter it may have handed out. The first open
// of a store without the row starts at the clock in microseconds, which is
// where earlier versions of quorumkv started a key's counters.
func (s *Store) NextCounter() (c uint64, err error) {
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.exit()
	defer s.recoverPebble(&err, nil)
	d := &s.dots
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.next >= d.reserved {
		r := d.next + dotReserve
		if r > version.MaxCounter {
			return 0, fmt.Errorf("%w: the dot counter reservation would pass %d", version.ErrCounterExhausted, version.MaxCounter)
		}
		b := s.db.NewBatch()
		_ = b.Set(metaRow(metaDotFloor), binary.BigEndian.AppendUint64(nil, r), nil)
		if err := s.commit(b, s.cfg.Sync); err != nil {
			return 0, fmt.Errorf("store: reserve dot counters: %w", err)
		}
		d.reserved = r
	}
	c = d.next
	d.next++
	return c, nil
}

// loadDotFloor reads the dot counter reservation at Open. The next counter
// is the reserved bound itself: every one below it may have been issued.
func (s *Store) loadDotFloor() error {
	v, closer, err := s.db.Get(metaRow(metaDotFloor))
	if errors.Is(err, pebble.ErrNotFound) {
		floor := uint64(max(s.cfg.Clock.Now().UnixMicro(), 1))
		s.dots.next, s.dots.reserved = floor, floor
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: read dot floor: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return &CorruptError{Key: []byte(metaDotFloor), Err: fmt.Errorf("%d bytes, want 8", len(v))}
	}
	floor := binary.BigEndian.Uint64(v)
	s.dots.next, s.dots.reserved = floor, floor
	return nil
}

// Incarnation identifies this store's life: a number fixed when the store
// is first opened (the clock in microseconds then, at least 1) and kept
// ever after. A node whose disk is lost starts a new store, with a new
// incarnation. A replica issues its dots under a name that includes it
// (quorum.Replica): a version's context claims every earlier dot of its
// issuer for the key as seen, which holds only while the issuer still has
// its history; the dots the lost disk had issued may live on elsewhere,
// and the new store must not claim them.
func (s *Store) Incarnation() uint64 { return s.incarnation }

// loadIncarnation reads the incarnation at Open, or makes one for a new
// store (and for a store written by a version without one).
func (s *Store) loadIncarnation() error {
	v, closer, err := s.db.Get(metaRow(metaIncarnation))
	if errors.Is(err, pebble.ErrNotFound) {
		inc := uint64(max(s.cfg.Clock.Now().UnixMicro(), 1))
		b := s.db.NewBatch()
		_ = b.Set(metaRow(metaIncarnation), binary.BigEndian.AppendUint64(nil, inc), nil)
		if err := s.commit(b, s.cfg.Sync); err != nil {
			return fmt.Errorf("store: record incarnation: %w", err)
		}
		s.incarnation = inc
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: read incarnation: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return &CorruptError{Key: []byte(metaIncarnation), Err: fmt.Errorf("%d bytes, want 8", len(v))}
	}
	s.incarnation = binary.BigEndian.Uint64(v)
	return nil
}
