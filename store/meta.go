package store

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// PutMeta durably stores a small node-local value (node identity,
// persisted gossip state) under name. It is fsynced when Config.Sync is
// set.
func (s *Store) PutMeta(name string, v []byte) (err error) {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.exit()
	defer s.recoverPebble(&err, nil)
	b := s.db.NewBatch()
	_ = b.Set(metaRow(name), v, nil)
	return s.commit(b, s.cfg.Sync)
}

// GetMeta returns a copy of the value stored under name, or ErrNotFound.
func (s *Store) GetMeta(name string) (v []byte, err error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.exit()
	defer s.recoverPebble(&err, nil)
	val, closer, err := s.db.Get(metaRow(name))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("store: meta %q: %w", name, ErrNotFound)
	}
	if err != nil {
		s.m.errors.Add(1)
		return nil, fmt.Errorf("store: meta %q: %w", name, err)
	}
	v = bytes.Clone(val)
	if v == nil {
		v = []byte{}
	}
	_ = closer.Close()
	return v, nil
}
