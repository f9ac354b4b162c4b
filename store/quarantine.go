package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// metaActorEpoch is the meta row holding the actor epoch (see ActorEpoch).
const metaActorEpoch = "actor-epoch"

// healable reports whether a stored record that failed to decode with err
// may be replaced by a merge: it is corrupt, not merely in a format this
// version does not know (a newer version's record must survive a
// downgrade untouched).
func healable(err error) bool {
	var fe *FormatError
	return errors.Is(err, ErrCorrupt) && !errors.As(err, &fe)
}

// ActorEpoch is how many times this store replaced a record that did not
// decode. Such a record may have held dots this node issued that no other
// replica has yet; reusing their counters would give two different writes
// one dot, and one of them would be silently dropped wherever they meet.
// A node therefore issues its dots under a fresh actor name once the epoch
// changes (see quorum.Replica). The epoch is stored in the same batch as
// the record that replaced the corrupt one, and it only grows.
func (s *Store) ActorEpoch() uint64 { return s.epoch.Load() }

// loadActorEpoch reads the actor epoch at Open.
func (s *Store) loadActorEpoch() error {
	v, closer, err := s.db.Get(metaRow(metaActorEpoch))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: read actor epoch: %w", err)
	}
	defer closer.Close()
	if len(v) != 8 {
		return &CorruptError{Key: []byte(metaActorEpoch), Err: fmt.Errorf("%d bytes, want 8", len(v))}
	}
	s.epoch.Store(binary.BigEndian.Uint64(v))
	return nil
}

// quarantineCopy adds to b a copy of the raw bytes stored at row, under
// the quarantine prefix, and returns their length. The caller holds the
// row's stripe lock.
func (s *Store) quarantineCopy(b *pebble.Batch, row []byte) (int, error) {
	raw, closer, err := s.db.Get(row)
	if err != nil {
		return 0, fmt.Errorf("store: quarantine: %w", err)
	}
	defer closer.Close()
	_ = b.Set(quarantineRow(s.quarantineTime(), row), raw, nil) // Set copies raw
	return len(raw), nil
}

// quarantineTime is the time of a quarantine row: the clock's, but always
// after the previous one, so that two copies of one row never share a key
// (a coarse or a test clock may repeat a reading).
func (s *Store) quarantineTime() int64 {
	at := s.cfg.Clock.Now().UnixNano()
	for {
		last := s.lastQuarantine.Load()
		next := max(at, last+1)
		if s.lastQuarantine.CompareAndSwap(last, next) {
			return next
		}
	}
}

// nextEpoch adds the next actor epoch to b and returns it. The caller holds
// epochMu, and publishes the epoch with s.epoch.Store once b is applied and
// before it releases the key's lock.
func (s *Store) nextEpoch(b *pebble.Batch) uint64 {
	epoch := s.epoch.Load() + 1
	_ = b.Set(metaRow(metaActorEpoch), binary.BigEndian.AppendUint64(nil, epoch), nil)
	return epoch
}

// Quarantined is a stored record that did not decode and was set aside: a
// data record a merge replaced, or a hint that was replaced by a new hint or
// dropped by a hint scan.
type Quarantined struct {
	// At is when it was set aside.
	At time.Time
	// Owner is the replica a hint was held for; "" for a data record.
	Owner string
	// Key is the encoded user key.
	Key []byte
	// Raw is the stored value as it was found.
	Raw []byte
}

// ScanQuarantine calls fn for every quarantined record, oldest first. fn
// must not retain the slices. An operator can inspect them; nothing in the
// node reads them back.
func (s *Store) ScanQuarantine(fn func(q Quarantined) error) (err error) {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	var inUser bool
	defer s.recoverPebble(&err, &inUser)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixQuarantine}, UpperBound: []byte{prefixQuarantine + 1}})
	if err != nil {
		return fmt.Errorf("store: scan quarantine: %w", err)
	}
	defer func() {
		if cerr := it.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("store: scan quarantine: %w", cerr)
		}
	}()
	for valid := it.First(); valid; valid = it.Next() {
		q, ok := parseQuarantineRow(it.Key())
		if !ok {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("store: scan quarantine: %w", err)
		}
		q.Raw = v
		inUser = true
		err = fn(q)
		inUser = false
		if err != nil {
			return err
		}
	}
	return it.Error()
}

// parseQuarantineRow splits a quarantine key into its time and the row the
// record was found at (Key aliases key).
func parseQuarantineRow(key []byte) (q Quarantined, ok bool) {
	if len(key) < 10 || key[0] != prefixQuarantine {
		return q, false
	}
	at := binary.BigEndian.Uint64(key[1:9])
	if at > math.MaxInt64 {
		return q, false
	}
	q.At = time.Unix(0, int64(at))
	switch row := key[9:]; row[0] {
	case prefixData:
		_, q.Key, ok = parseDataRow(row)
	case prefixHint:
		q.Owner, q.Key, ok = parseHintRow(row)
	}
	return q, ok
}
