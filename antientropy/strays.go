package antientropy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
)

// Strays.
//
// A node may keep records of keys it does not replicate: the ring moved
// since they were written, or a bucket's n is smaller than the largest
// one, so a partition's replica holds keys of the smaller bucket that are
// not its own. Nothing would maintain such a record (no sweep reaps it, no
// exchange involves it), and it could hold a value that the key's replicas
// deleted and reaped long ago. So it is never an answer to a read
// (quorum.Replica refuses such reads), and it does not stay: a loop visits
// one partition per Config.StrayInterval and hands each such record to
// the key's replicas, as a durable hint for each (hinted handoff delivers
// it), then drops it here. Until then a tombstone sweep of the key counts
// it like any hint: it must hold nothing the tombstones do not supersede.

// StrayReport summarises one pass over a partition's strays.
type StrayReport struct {
	Found     int `json:"found"`      // records of keys this node does not replicate
	HandedOff int `json:"handed_off"` // of those, kept as hints for the replicas and dropped
}

func (s *Service) tickStrays() {
	s.mu.Lock()
	p := s.strayAt % s.cfg.Partitions
	s.strayAt = p + 1
	s.mu.Unlock()
	if _, err := s.handOffStrays(s.ctx, p); err != nil && s.ctx.Err() == nil {
		s.log.Warn().Err(err).Int("partition", p).Msg("stray hand-off failed")
	}
}

// HandOffStrays runs one pass over partition p's strays now.
func (s *Service) HandOffStrays(ctx context.Context, p int) (StrayReport, error) {
	if err := s.enter(true); err != nil {
		return StrayReport{}, err
	}
	defer s.wg.Done()
	if p < 0 || p >= s.cfg.Partitions {
		return StrayReport{}, fmt.Errorf("%w: partition %d", ErrBadRequest, p)
	}
	return s.handOffStrays(ctx, p)
}

type stray struct{ k, set []byte }

func (s *Service) handOffStrays(ctx context.Context, p int) (StrayReport, error) {
	var rep StrayReport
	r := s.ring()
	replicas, err := r.PartitionPreference(p, min(s.n(), r.Len()))
	if err != nil {
		return rep, fmt.Errorf("antientropy: preference list of partition %d: %w", p, err)
	}
	var found []stray
	lo, hi := s.shape.PartitionRange(p)
	err = s.st.Scan(lo, hi, func(_ uint64, k, set []byte) error {
		if !s.replicates(k, s.cfg.NodeID) && len(found) < s.cfg.StrayBatch {
			found = append(found, stray{k: bytes.Clone(k), set: bytes.Clone(set)})
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("antientropy: strays of partition %d: %w", p, err)
	}
	rep.Found = len(found)
	var errs []error
	for _, st := range found {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		ok, err := s.handOff(st, replicas)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			rep.HandedOff++
			s.m.straysHandedOff.Add(1)
		}
	}
	return rep, errors.Join(errs...)
}

// handOff keeps one stray as a hint for each replica of its key among
// replicas, then drops it, unless it changed meanwhile.
func (s *Service) handOff(st stray, replicas []string) (bool, error) {
	set, err := s.cfg.DecodeSet(st.set)
	if err != nil {
		return false, nil // a corrupt record: a merge heals it, or it stays
	}
	owners := 0
	for _, id := range replicas {
		if id == s.cfg.NodeID || !s.replicates(st.k, id) {
			continue
		}
		if _, err := s.st.AddHint(id, st.k, set, 0, 0); err != nil {
			return false, fmt.Errorf("antientropy: hand stray %q to %s: %w", st.k, id, err)
		}
		owners++
	}
	if owners == 0 {
		return false, nil // no replica known: keep it
	}
	return s.st.Discard(st.k, set)
}
