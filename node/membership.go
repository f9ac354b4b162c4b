package node

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/quorumkv/quorumkv/gossip"
	"github.com/quorumkv/quorumkv/handoff"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store"
)

// memberView is what the node routes by: the change computed from gossip,
// and when this node first saw every required member ready for it.
type memberView struct {
	ch      change
	place   quorum.Placement // placement{ch.C, ch.T}, boxed once, not per request
	readyAt time.Time        // zero until ch.Ready() was first seen
}

// ringConfig is the ring configuration every member uses.
func (n *Node) ringConfig() ring.Config {
	rcfg := ring.DefaultConfig()
	rcfg.Partitions = n.cfg.Partitions
	rcfg.Hash = n.hash
	return rcfg
}

// applyMembership recomputes the address book, the rings and this node's
// part in the change in progress, after any gossip change, a transfer's
// progress, or a tick. Only membershipLoop calls it.
func (n *Node) applyMembership() {
	n.keepRingPosition()
	members := n.gossip.Members()
	n.updateBook(members)
	defer n.persistGossip()

	l, ok := n.gossip.Layout()
	if !ok {
		n.maybeBootstrap(members)
		return
	}
	metas := make([]gossip.Meta, len(members))
	for i, m := range members {
		metas[i] = m.Meta
	}
	ch, err := computeChange(n.rings, l, metas)
	if err != nil {
		n.log.Error().Err(err).Msg("membership: cannot build the committed ring")
		return
	}
	old := n.view.Load()
	v := &memberView{ch: ch, place: placement{ch.C, ch.T}}
	if old != nil && old.ch.FP == ch.FP {
		v.readyAt = old.readyAt
	}
	if ch.Ready() && v.readyAt.IsZero() {
		v.readyAt = n.clk.Now()
	}
	n.view.Store(v)
	if old == nil || !old.ch.C.Equal(ch.C) {
		n.log.Info().Uint64("epoch", ch.Epoch).Int("members", ch.C.Len()).Msg("ring committed")
	}
	if old != nil && old.ch.Epoch != ch.Epoch {
		n.noteLost(old.ch.C, ch.C)
	}
	if old == nil || old.ch.FP != ch.FP {
		n.logChange(ch)
	}
	n.drive(v)
}

// logChange reports a change that starts or is modified.
func (n *Node) logChange(ch change) {
	if ch.TargetErr != nil {
		n.log.Warn().Err(ch.TargetErr).Msg("membership: the intents do not make a ring yet")
		return
	}
	if !ch.Changing {
		return
	}
	var from, to []string
	for _, m := range ch.C.Members() {
		from = append(from, m.ID)
	}
	for _, m := range ch.T.Members() {
		to = append(to, m.ID)
	}
	n.log.Info().Uint64("epoch", ch.Epoch).Strs("from", from).Strs("to", to).
		Strs("leaving", ch.Leaving).Strs("removing", ch.Removing).Msg("membership change in progress")
}

// drive does this node's part of the change in v: it advertises what it
// has seen and finished, streams its gains, hands its hints on, proposes
// the next layout when every member is done, tombstones the members that
// are gone, and tells the server to exit when this node has left.
func (n *Node) drive(v *memberView) {
	ch := v.ch
	self := n.cfg.ID
	myIntent := gossip.IntentJoin
	if m, ok := n.gossip.Member(self); ok {
		myIntent = intentOf(m.Meta, ch.C.Contains(self))
	}
	leaving := myIntent == gossip.IntentLeave || myIntent == gossip.IntentRemove
	n.hints.Evacuate(leaving && (ch.C.Contains(self) || ch.T.Contains(self)))

	switch {
	case !ch.Changing:
		n.transfers.Set(ch.FP, nil, nil)
	case ch.Ready():
		n.transfers.Set(ch.FP, n.gains(ch), n.keepFor(ch.T))
	}
	n.advertise(ch, n.synced(ch, leaving))

	if ch.Complete() && ch.TargetErr == nil {
		next := nextLayout(ch)
		if adopted, err := n.gossip.ProposeLayout(next); err != nil {
			n.log.Warn().Err(err).Msg("membership: propose the next layout")
		} else if adopted {
			n.log.Info().Uint64("epoch", next.Epoch).Int("members", len(next.Members)).Msg("membership change complete: next layout proposed")
			n.onMembershipChange() // adopt it at once
		}
		return
	}
	if ch.Changing {
		return
	}
	// No change in progress. This node has left when it is out of the
	// ring and was asked to leave (or was removed), even when another
	// member tombstoned it first, and it has handed off every partition
	// it held: a write it alone acknowledged late in the change reaches
	// the replicas that way.
	if !ch.C.Contains(self) && len(n.Lost().Pending) == 0 {
		if m, ok := n.gossip.Member(self); ok && (leaving || m.Meta.Removed()) {
			n.leftOnce.Do(func() {
				n.log.Info().Msg("this node has left the cluster")
				close(n.left)
			})
		}
	}
	// The members that left or were removed are no longer in the ring;
	// tombstone them so that no node waits for them or keeps their
	// hints, and their IDs never come back. Not before every member has
	// seen the layout without them: while only its proposer holds it, a
	// lost disk could take it back, and the tombstone would outlive it.
	if len(ch.NotSeen) > 0 {
		return
	}
	for _, m := range n.gossip.Members() {
		id := m.Meta.ID
		if id == self || ch.C.Contains(id) {
			continue
		}
		in := intentOf(m.Meta, false)
		if in != gossip.IntentLeave && in != gossip.IntentRemove {
			continue
		}
		if err := n.gossip.Remove(id); err != nil && !errors.Is(err, gossip.ErrClosed) {
			n.log.Warn().Err(err).Str("member", id).Msg("membership: tombstone a departed member")
		} else {
			n.log.Info().Str("member", id).Str("intent", in).Msg("membership: departed member tombstoned")
		}
	}
}

// synced reports whether this node has done its part of ch: every
// partition it gains is streamed and checked, and, when it leaves
// itself, it keeps no hint at all. Hints for a node that leaves the ring
// are not waited for: under load a down node being removed keeps getting
// new ones, and they go to the key's target replicas, during the change
// and after it.
func (n *Node) synced(ch change, leaving bool) bool {
	if !ch.Changing {
		return true
	}
	if !ch.Ready() || !n.transfers.Done(ch.FP) {
		return false
	}
	if _, total := n.hints.Outstanding(n.member); leaving && total > 0 {
		return false
	}
	return true
}

// advertise publishes this node's Seen and Synced for ch.
func (n *Node) advertise(ch change, synced bool) {
	m, ok := n.gossip.Member(n.cfg.ID)
	if !ok || m.Meta.Removed() {
		return
	}
	meta := m.Meta
	want := meta
	want.Seen = ch.FP
	if synced {
		want.Synced = ch.FP
	}
	if want.Seen == meta.Seen && want.Synced == meta.Synced {
		return
	}
	if err := n.gossip.UpdateMeta(want); err != nil && !errors.Is(err, gossip.ErrClosed) {
		n.log.Warn().Err(err).Msg("membership: advertise progress")
	}
}

// gains lists the partitions this node must stream for ch, each with the
// nodes to stream from (the replicas being replaced first, then the
// others), down ones last.
func (n *Node) gains(ch change) []handoff.Gain {
	moves := ring.Gains(ch.C, ch.T, n.cfg.ID, n.maxBucketN())
	out := make([]handoff.Gain, 0, len(moves))
	for _, mv := range moves {
		src := slices.Clone(mv.Sources)
		slices.SortStableFunc(src, func(a, b string) int {
			switch ua, ub := n.available(a), n.available(b); {
			case ua && !ub:
				return -1
			case ub && !ua:
				return 1
			}
			return 0
		})
		out = append(out, handoff.Gain{Partition: mv.Partition, Sources: src})
	}
	return out
}

// keepFor returns the filter of streamed records: the keys this node
// replicates on the target ring.
func (n *Node) keepFor(t *ring.Ring) func(k []byte) bool {
	return func(k []byte) bool {
		bucket, _, err := store.DecodeKey(k)
		if err != nil {
			return false
		}
		return replicatesIn(t, k, n.bucketProps(string(bucket)).N, n.cfg.ID)
	}
}

// member reports whether id is a member of the target ring: a node whose
// hints are still worth keeping for it. A node that is leaving or being
// removed is not: the writes hinted for it go to the key's target
// replicas, and the change completes only once no hint waits for it.
func (n *Node) member(id string) bool {
	v := n.view.Load()
	if v == nil {
		return true // nothing known yet: keep everything
	}
	return v.ch.T.Contains(id)
}

// targetReplicas returns the replicas of k on the target ring.
func (n *Node) targetReplicas(k []byte) []string {
	v := n.view.Load()
	if v == nil {
		return nil
	}
	bucket, _, err := store.DecodeKey(k)
	if err != nil {
		return nil
	}
	nv := min(n.bucketProps(string(bucket)).N, v.ch.T.Len())
	pref, err := v.ch.T.PreferenceList(k, nv)
	if err != nil {
		return nil
	}
	return pref[:nv]
}

// finishTransfer is the last step of streaming partition p: it waits until
// writes that started before every coordinator knew of the change have
// landed, then exchanges Merkle trees with every source that is up, so
// that whatever reached a source but not the stream is here too.
func (n *Node) finishTransfer(ctx context.Context, p int, sources []string) error {
	v := n.view.Load()
	if v == nil || v.readyAt.IsZero() {
		return errNotReady
	}
	if wait := n.cfg.TransferSettle - n.clk.Since(v.readyAt); wait > 0 {
		t := n.clk.NewTimer(wait)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	var errs []error
	for _, src := range sources {
		if src == n.cfg.ID || !n.available(src) {
			continue
		}
		if _, err := n.ae.ExchangeWith(ctx, p, src); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// errNotReady is returned by finishTransfer before the change is ready.
var errNotReady = errors.New("node: the membership change is not ready")

// maybeBootstrap proposes the first layout when none is known: at once on
// a node started without --join (a new cluster, or one whose members
// predate layouts), and, after Config.BootstrapWait, on the smallest-ID
// trusted member when nobody else did (every member was started with
// --join).
func (n *Node) maybeBootstrap(members []gossip.Member) {
	if len(n.cfg.Join) > 0 {
		if n.clk.Since(n.started) < n.cfg.BootstrapWait {
			return
		}
		for _, m := range members {
			if m.Meta.ID < n.cfg.ID && n.available(m.Meta.ID) {
				return // theirs to do
			}
		}
	}
	l := gossip.Layout{Epoch: 1}
	for _, m := range members {
		if intentOf(m.Meta, false) == gossip.IntentJoin {
			l.Members = append(l.Members, gossip.LayoutMember{ID: m.Meta.ID, Joined: m.Meta.Joined, Seed: m.Meta.Seed})
		}
	}
	if len(l.Members) == 0 {
		return // a staged node waits for a cluster to join
	}
	if adopted, err := n.gossip.ProposeLayout(l); err != nil {
		n.log.Warn().Err(err).Msg("membership: bootstrap the first layout")
	} else if adopted {
		n.log.Info().Int("members", len(l.Members)).Msg("membership: first layout of the cluster")
		n.onMembershipChange()
	}
}

// Left is closed when this node has left the cluster (a completed leave,
// or a removal): it serves nothing any more, and the server exits.
func (n *Node) Left() <-chan struct{} { return n.left }
