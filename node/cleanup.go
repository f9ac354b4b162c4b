package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store"
)

// Handing off lost partitions.
//
// When a change completes, a node may no longer replicate (all of) some
// partitions it held. Their rows are handed to the partition's replicas,
// by a Merkle exchange with each (which sends what a replica lacks), and
// then deleted here, each only if it did not change meanwhile. The set of
// partitions to hand off is persisted, so a restart goes on with it. The
// stray loop of anti-entropy stays as the safety net for single records.

const metaLost = "membership.lost"

// lostState is the persisted hand-off work, and what was done.
type lostState struct {
	Partitions []int `msgpack:"p"`
	// Dropped counts the rows deleted and the partitions finished since
	// the node's data directory was created.
	Dropped    uint64 `msgpack:"d"`
	Finished   uint64 `msgpack:"f"`
	LastBefore uint64 `msgpack:"b"` // disk bytes before the last hand-off
	LastAfter  uint64 `msgpack:"a"` // and after it, compacted
}

// LostStatus reports the hand-off of partitions this node no longer
// replicates.
type LostStatus struct {
	// Pending lists the partitions still to hand off.
	Pending []int `json:"pending"`
	// RowsDropped and PartitionsFinished count what was handed off.
	RowsDropped        uint64 `json:"rows_dropped"`
	PartitionsFinished uint64 `json:"partitions_finished"`
	// DiskBefore and DiskAfter are the store's disk bytes before the last
	// completed hand-off and after it (compacted).
	DiskBefore uint64 `json:"disk_bytes_before"`
	DiskAfter  uint64 `json:"disk_bytes_after"`
}

func (n *Node) loadLost() (lostState, error) {
	b, err := n.store.GetMeta(metaLost)
	if errors.Is(err, store.ErrNotFound) {
		return lostState{}, nil
	}
	if err != nil {
		return lostState{}, err
	}
	var st lostState
	if err := msgpack.Unmarshal(b, &st); err != nil {
		return lostState{}, fmt.Errorf("node: decode %s: %w", metaLost, err)
	}
	return st, nil
}

func (n *Node) saveLost(st lostState) error {
	b, err := msgpack.Marshal(&st)
	if err != nil {
		return err
	}
	return n.store.PutMeta(metaLost, b)
}

// noteLost records the partitions this node stops replicating between the
// committed rings from and to, and wakes the hand-off.
func (n *Node) noteLost(from, to *ring.Ring) {
	lost := ring.Lost(from, to, n.cfg.ID, n.maxBucketN())
	if len(lost) == 0 {
		return
	}
	n.lostMu.Lock()
	defer n.lostMu.Unlock()
	st, err := n.loadLost()
	if err != nil {
		n.log.Warn().Err(err).Msg("membership: read the hand-off state")
	}
	for _, p := range lost {
		if !slices.Contains(st.Partitions, p) {
			st.Partitions = append(st.Partitions, p)
		}
	}
	slices.Sort(st.Partitions)
	if err := n.saveLost(st); err != nil {
		n.log.Warn().Err(err).Msg("membership: persist the hand-off state")
	}
	n.log.Info().Ints("partitions", lost).Msg("membership: partitions to hand off")
	select {
	case n.lostCh <- struct{}{}:
	default:
	}
}

// lostLoop hands off lost partitions, when told and every
// MembershipInterval·30 as a retry.
func (n *Node) lostLoop() {
	defer n.wg.Done()
	t := n.clk.NewTicker(30 * n.cfg.MembershipInterval)
	defer t.Stop()
	for {
		n.handOffLost(n.ctx)
		select {
		case <-n.ctx.Done():
			return
		case <-n.lostCh:
		case <-t.C():
		}
	}
}

// handOffLost hands off every pending lost partition it can now.
func (n *Node) handOffLost(ctx context.Context) {
	n.lostMu.Lock()
	st, err := n.loadLost()
	n.lostMu.Unlock()
	if err != nil || len(st.Partitions) == 0 {
		return
	}
	before := n.store.Metrics().DiskUsage
	var done []int
	var dropped uint64
	for _, p := range st.Partitions {
		if ctx.Err() != nil {
			return
		}
		k, err := n.handOffPartition(ctx, p)
		dropped += uint64(k)
		if err != nil {
			n.log.Debug().Err(err).Int("partition", p).Msg("membership: hand-off not finished; retrying later")
			continue
		}
		done = append(done, p)
	}
	if len(done) == 0 {
		return
	}
	if err := n.store.Sync(); err != nil {
		return
	}
	for _, p := range done {
		lo, hi := n.transferCfg.PartitionRange(p)
		if err := n.store.CompactRange(lo, hi); err != nil {
			n.log.Warn().Err(err).Int("partition", p).Msg("membership: compact a handed-off partition")
		}
	}
	after := n.store.Metrics().DiskUsage
	n.lostMu.Lock()
	defer n.lostMu.Unlock()
	st, err = n.loadLost()
	if err != nil {
		return
	}
	st.Partitions = slices.DeleteFunc(st.Partitions, func(p int) bool { return slices.Contains(done, p) })
	st.Dropped += dropped
	st.Finished += uint64(len(done))
	st.LastBefore, st.LastAfter = before, after
	if err := n.saveLost(st); err != nil {
		n.log.Warn().Err(err).Msg("membership: persist the hand-off state")
		return
	}
	n.log.Info().Ints("partitions", done).Uint64("rows_dropped", dropped).
		Uint64("disk_before", before).Uint64("disk_after", after).Msg("membership: partitions handed off")
}

// handOffPartition hands partition p's rows that this node no longer
// replicates to their replicas and deletes them here. It fails, to be
// retried, while a replica of p cannot be reached.
func (n *Node) handOffPartition(ctx context.Context, p int) (dropped int, err error) {
	v := n.view.Load()
	if v == nil {
		return 0, errNotReady
	}
	// The replicas on both rings, for every bucket's n: whoever will
	// hold what this node lets go.
	peers := map[string]bool{}
	for _, r := range []*ring.Ring{v.ch.C, v.ch.T} {
		pref, err := r.PartitionPreference(p, min(n.maxBucketN(), r.Len()))
		if err != nil {
			return 0, err
		}
		for _, id := range pref {
			if id != n.cfg.ID {
				peers[id] = true
			}
		}
	}
	for id := range peers {
		if !n.available(id) {
			return 0, fmt.Errorf("node: replica %s of partition %d is down", id, p)
		}
	}
	// The rows to let go, read before the exchanges: a write that lands
	// here later changes its row, which then stays (a stray, moved on by
	// the stray loop) rather than go unhanded.
	type row struct{ k, set []byte }
	var rows []row
	lo, hi := n.transferCfg.PartitionRange(p)
	err = n.store.Scan(lo, hi, func(_ uint64, k, set []byte) error {
		if !n.replicates(k, n.cfg.ID) {
			rows = append(rows, row{bytes.Clone(k), bytes.Clone(set)})
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for id := range peers {
		rep, err := n.ae.ExchangeWith(ctx, p, id)
		if err != nil {
			return 0, err
		}
		n.log.Debug().Int("partition", p).Str("peer", id).Int("keys", rep.KeysDiffering).Int("pushed", rep.KeysPushed).Msg("membership: hand-off exchange")
	}
	for _, r := range rows {
		set, err := store.DecodeSet(r.set)
		if err != nil {
			continue // the stray loop deals with what does not decode
		}
		ok, err := n.store.DiscardUnsynced(r.k, set)
		if err != nil {
			return dropped, err
		}
		if ok {
			dropped++
		}
	}
	return dropped, nil
}

// Lost returns the hand-off of partitions this node no longer replicates.
func (n *Node) Lost() LostStatus {
	n.lostMu.Lock()
	st, _ := n.loadLost()
	n.lostMu.Unlock()
	return LostStatus{
		Pending: st.Partitions, RowsDropped: st.Dropped, PartitionsFinished: st.Finished,
		DiskBefore: st.LastBefore, DiskAfter: st.LastAfter,
	}
}
