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
// A tombstone may be reaped only when nothing anywhere could bring back
// what it deleted, and its grace period — Config.TombstoneGrace after its
// latest write time — is over. Then the key stays deleted everywhere,
// before and after.
//
// The sweep establishes the first condition. It scans a partition this
// node replicates for tombstone-only records not yet marked, and asks
// every member of the ring, in batches (ae.hastomb), whether reaping each
// is safe as far as that node knows (see hasTomb): a replica of the key
// must hold the tombstones, or remember reaping them, and no node may keep
// a hint or a stray record of the key with a live version they do not
// supersede. The node answers the same question for itself. A replica
// that lacks the key does not agree: it may never have received the
// delete, and a hint for it may still carry the old value. A node that
// cannot be reached does not agree either. When all agree, the node marks
// its record reapable at reapTime (latest write time + grace: the same
// instant on every replica) and tells the key's other replicas to mark
// theirs (ae.markreap), so they all reap together. No coordinator marks a
// tombstone: a delete acknowledged by every replica still says nothing of
// the hints and strays elsewhere.
//
// The reaper loop calls the store's Reap, which turns the marked records
// whose time has come into memories of the reaped keys: for
// store.Config.ReapMemory, a late version the tombstones superseded (a
// message in flight, a hint replayed late) is dropped on arrival, and a
// peer's sweep is told this replica agrees. Anti-entropy copies a
// tombstone to a replica that lacks the key (absence is not agreement), and
// the memory makes that copy a no-op on a replica that reaped it.

// SweepReport summarises one tombstone sweep.
type SweepReport struct {
	Tombstones int     `json:"tombstones"` // unmarked tombstones found
	Marked     int     `json:"marked"`     // marked reapable here
	Notified   int     `json:"notified"`   // marks the other replicas made on being told
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
	peers, self, err := s.peers(p)
	if err != nil {
		return rep, err
	}
	if !self {
		return rep, fmt.Errorf("%w: %d", ErrNotReplica, p)
	}
	var everyone []string
	if s.members != nil {
		everyone = s.members()
	} else {
		r := s.ring()
		if everyone, err = r.PartitionPreference(p, r.Len()); err != nil {
			return rep, fmt.Errorf("antientropy: members of partition %d: %w", p, err)
		}
	}
	s.mu.Lock()
	marked := s.marked[p]
	s.mu.Unlock()
	still := map[uint64]uint64{} // marked tombstones still present

	var cands []tombCandidate
	lo, hi := s.shape.PartitionRange(p)
	err = s.st.Scan(lo, hi, func(h uint64, k, setBytes []byte) error {
		set, err := s.cfg.DecodeSet(setBytes)
		if err != nil || !set.Deleted() || !s.replicates(k, s.cfg.NodeID) {
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
		for i, c := range batch {
			has, err := s.hasTomb(c.rec) // this node's own hints and strays
			if err != nil {
				errs = append(errs, err)
			}
			ok[i] = has && err == nil
		}
		for _, id := range everyone {
			if id == s.cfg.NodeID {
				continue
			}
			if err := s.askHasTomb(ctx, p, id, batch, ok, m); err != nil {
				errs = append(errs, err)
			}
		}
		var confirmed []tombCandidate
		for i, c := range batch {
			if ok[i] && s.markReapable(p, c.rec, c.set) {
				still[c.rec.Hash] = c.kh
				rep.Marked++
				confirmed = append(confirmed, c)
			}
		}
		n, err := s.tellReplicas(ctx, p, peers, confirmed, m)
		rep.Notified += n
		if err != nil {
			errs = append(errs, err)
		}
	}
	s.mu.Lock()
	for h, kh := range s.marked[p] { // marks peers made meanwhile
		if _, ok := still[h]; !ok {
			still[h] = kh
		}
	}
	s.marked[p] = still
	s.mu.Unlock()
	rep.Traffic = m.t
	return rep, errors.Join(errs...)
}

// markReapable marks this node's record of rec reapable at its reap time,
// if this node replicates the key and the record still equals set. It
// reports whether it did.
func (s *Service) markReapable(p int, rec Record, set version.Set) bool {
	if !s.replicates(rec.Key, s.cfg.NodeID) {
		return false
	}
	if err := s.st.MarkReapable(rec.Key, set, reapTime(set, s.cfg.TombstoneGrace)); err != nil {
		// Most likely a write slipped in since the scan; the next sweep
		// looks again.
		s.log.Debug().Err(err).Bytes("key", rec.Key).Msg("tombstone not marked")
		return false
	}
	s.m.tombMarked.Add(1)
	s.mu.Lock()
	if s.marked[p] == nil {
		s.marked[p] = map[uint64]uint64{}
	}
	s.marked[p][rec.Hash] = RecordHash(rec.Key, rec.Set)
	s.mu.Unlock()
	return true
}

// tellReplicas asks the other replicas of each confirmed tombstone to mark
// their records too (ae.markreap), and returns how many marks they made.
// A replica that misses it marks on its own next sweep.
func (s *Service) tellReplicas(ctx context.Context, p int, peers []string, confirmed []tombCandidate, m *meter) (int, error) {
	n := 0
	var errs []error
	for _, id := range peers {
		var items []Record
		for _, c := range confirmed {
			if s.replicates(c.rec.Key, id) {
				items = append(items, c.rec)
			}
		}
		if len(items) == 0 {
			continue
		}
		addr, err := s.resolve(id)
		if err != nil {
			errs = append(errs, fmt.Errorf("antientropy: mark reapable on %s: %w", id, err))
			continue
		}
		resp, err := NewRPCPeer(s.caller, id, addr, m).MarkReap(ctx, &MarkReapRequest{Shape: s.shape.code(), Partition: p, Items: items})
		if err != nil {
			errs = append(errs, fmt.Errorf("antientropy: mark reapable on %s: %w", id, err))
			continue
		}
		for _, ok := range resp.Marked {
			if ok {
				n++
			}
		}
	}
	return n, errors.Join(errs...)
}

// askHasTomb asks node id whether each of the batch's tombstones may be
// reaped (see hasTomb) and clears ok for every one it does not confirm
// (all of them if it cannot be reached).
func (s *Service) askHasTomb(ctx context.Context, p int, id string, batch []tombCandidate, ok []bool, m *meter) error {
	var idx []int
	var items []Record
	for i, c := range batch {
		if ok[i] {
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
	resp, err := NewRPCPeer(s.caller, id, addr, m).HasTomb(ctx, &HasTombRequest{Shape: s.shape.code(), Partition: p, Items: items})
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
