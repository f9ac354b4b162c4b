package antientropy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/quorumkv/quorumkv/version"
)

// Tombstone reaping.
//
// A tombstone may be deleted (reaped) only when every replica in its key's
// preference list holds it (or something newer that is still all
// tombstones), and its grace period — Config.TombstoneGrace after its
// latest write time — is over. Then no replica holds a version the
// tombstone supersedes, so no exchange, read repair or hint can bring the
// old value back: the key stays deleted everywhere before and after.
//
// Who learns that every replica holds a tombstone:
//   - the coordinator of a delete, when all N replicas acked it (it calls
//     the store's MarkReapable itself);
//   - otherwise the sweep here: it scans a partition for tombstone-only
//     records not yet marked and asks each other replica of the key
//     (ae.hastomb, in batches) whether it holds an equal-or-newer
//     tombstone set. When all say yes, it marks the record reapable at
//     reapTime (latest write time + grace: the same instant on every
//     replica, so re-marking never postpones it).
//
// The reaper loop calls the store's Reap, which deletes the marked records
// whose time has come (rechecking that they did not change since).
//
// After the grace period, a replica that has no record of the key answers
// yes too (see hasTomb), and exchanges do not copy an expired tombstone to
// a replica that lacks the key. Without both rules the first replica to
// reap would make the others' sweeps fail forever, or get the tombstone
// copied back by the next exchange.

// SweepReport summarises one tombstone sweep.
type SweepReport struct {
	Tombstones int     `json:"tombstones"` // unmarked tombstones found
	Marked     int     `json:"marked"`     // marked reapable
	Traffic    Traffic `json:"traffic"`
}

// tombCandidate is a tombstone a sweep asks about.
type tombCandidate struct {
	rec Record
	set version.Set
	kh  uint64
}

func (s *Service) tickSweep() {
	parts := s.ring().PartitionsFor(s.cfg.NodeID, s.n())
	if len(parts) == 0 {
		return
	}
	s.mu.Lock()
	i, _ := slices.BinarySearch(parts, s.sweepAt)
	if i == len(parts) {
		i = 0
	}
	p := parts[i]
	s.sweepAt = p + 1
	s.mu.Unlock()
	if _, err := s.sweep(s.ctx, p); err != nil && s.ctx.Err() == nil {
		s.log.Warn().Err(err).Int("partition", p).Msg("tombstone sweep failed")
	}
}

// Sweep runs one tombstone sweep of partition p now.
func (s *Service) Sweep(ctx context.Context, p int) (SweepReport, error) {
	if err := s.enter(true); err != nil {
		return SweepReport{}, err
	}
	defer s.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	return s.sweep(ctx, p)
}

func (s *Service) sweep(ctx context.Context, p int) (SweepReport, error) {
	var rep SweepReport
	peers, _, err := s.peers(p)
	if err != nil {
		return rep, err
	}
	s.mu.Lock()
	marked := s.marked[p]
	s.mu.Unlock()
	still := map[uint64]uint64{} // marked tombstones still present

	var cands []tombCandidate
	lo, hi := s.shape.PartitionRange(p)
	err = s.st.Scan(lo, hi, func(h uint64, k, setBytes []byte) error {
		set, err := s.cfg.DecodeSet(setBytes)
		if err != nil || !set.Deleted() {
			return nil
		}
		kh := RecordHash(k, setBytes)
		if marked[h] == kh {
			still[h] = kh
			return nil
		}
		cands = append(cands, tombCandidate{
			rec: Record{Hash: h, Key: bytes.Clone(k), Set: bytes.Clone(setBytes)},
			set: set, kh: kh,
		})
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("antientropy: sweep partition %d: %w", p, err)
	}
	rep.Tombstones = len(cands)
	s.m.tombChecked.Add(uint64(len(cands)))

	m := &meter{s: s}
	var errs []error
	for len(cands) > 0 {
		batch := cands[:min(len(cands), s.cfg.SweepBatch)]
		cands = cands[len(batch):]
		ok := make([]bool, len(batch))
		for i := range ok {
			ok[i] = true
		}
		for _, id := range peers {
			if err := s.askHasTomb(ctx, p, id, batch, ok, m); err != nil {
				errs = append(errs, err)
			}
		}
		for i, c := range batch {
			if !ok[i] {
				continue
			}
			if err := s.st.MarkReapable(c.rec.Key, c.set, reapTime(c.set, s.cfg.TombstoneGrace)); err != nil {
				// Most likely a write slipped in since the scan; the
				// next sweep looks again.
				s.log.Debug().Err(err).Bytes("key", c.rec.Key).Msg("tombstone not marked")
				continue
			}
			still[c.rec.Hash] = c.kh
			rep.Marked++
			s.m.tombMarked.Add(1)
		}
	}
	s.mu.Lock()
	s.marked[p] = still
	s.mu.Unlock()
	rep.Traffic = m.t
	return rep, errors.Join(errs...)
}

// askHasTomb asks peer id about the batch's tombstones it should hold and
// clears ok for every one it does not confirm (all of them if it cannot be
// reached).
func (s *Service) askHasTomb(ctx context.Context, p int, id string, batch []tombCandidate, ok []bool, m *meter) error {
	var idx []int
	var items []Record
	for i, c := range batch {
		if ok[i] && s.replicates(c.rec.Key, id) {
			idx = append(idx, i)
			items = append(items, c.rec)
		}
	}
	if len(items) == 0 {
		return nil
	}
	fail := func(err error) error {
		for _, i := range idx {
			ok[i] = false
		}
		return fmt.Errorf("antientropy: sweep partition %d with %s: %w", p, id, err)
	}
	addr, err := s.resolve(id)
	if err != nil {
		return fail(err)
	}
	resp, err := NewRPCPeer(s.caller, addr, m).HasTomb(ctx, &HasTombRequest{Shape: s.shape.code(), Partition: p, Items: items})
	if err != nil {
		return fail(err)
	}
	if len(resp.Has) != len(items) {
		return fail(fmt.Errorf("%w: asked %d tombstones, %d answers", ErrProtocol, len(items), len(resp.Has)))
	}
	for j, has := range resp.Has {
		if !has {
			ok[idx[j]] = false
		}
	}
	return nil
}

func (s *Service) tickReap() {
	if _, err := s.reap(); err != nil && s.ctx.Err() == nil {
		s.log.Warn().Err(err).Msg("tombstone reap failed")
	}
}

// Reap runs the store's Reap now and returns how many records it deleted.
func (s *Service) Reap() (int, error) {
	if err := s.enter(true); err != nil {
		return 0, err
	}
	defer s.wg.Done()
	return s.reap()
}

func (s *Service) reap() (int, error) {
	n, err := s.st.Reap(s.clk.Now(), s.cfg.ReapBatch)
	s.m.tombReaped.Add(uint64(max(n, 0)))
	if err != nil {
		return n, fmt.Errorf("antientropy: reap: %w", err)
	}
	return n, nil
}
