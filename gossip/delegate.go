package gossip

import (
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// delegate implements memberlist's Delegate, EventDelegate, MergeDelegate
// and AliveDelegate for a Gossip. memberlist calls some of these with its
// node lock held, so they take g.mu only briefly and never call back into
// memberlist.
type delegate struct{ g *Gossip }

var (
	_ memberlist.Delegate      = delegate{}
	_ memberlist.EventDelegate = delegate{}
	_ memberlist.MergeDelegate = delegate{}
	_ memberlist.AliveDelegate = delegate{}
)

// NodeMeta returns this node's encoded metadata.
func (d delegate) NodeMeta(limit int) []byte {
	g := d.g
	g.mu.Lock()
	v := g.tbl.members[g.tbl.self]
	g.mu.Unlock()
	b, err := encodeMeta(v)
	if err == nil && len(b) > limit {
		err = fmt.Errorf("%w: %d > %d bytes", ErrMetaTooLarge, len(b), limit)
	}
	if err != nil { // unreachable: Validate bounds every field
		g.log.Error().Err(err).Msg("gossip: encode node meta")
		return nil
	}
	return b
}

// NotifyMsg applies a broadcast bucket or member update, or a layout sent
// by ProposeLayout.
func (d delegate) NotifyMsg(b []byte) {
	g := d.g
	g.n.messages.Add(1)
	msg, err := decodeMessage(b)
	switch {
	case err != nil:
		g.n.decodeErrors.Add(1)
		g.log.Debug().Err(err).Msg("gossip: dropping message")
	case msg.bucket != nil:
		g.applyBucket(msg.bucket)
	case msg.member != nil:
		g.applyMember(*msg.member)
	case msg.layout != nil:
		if msg.layout.Cluster != g.cfg.Meta.Cluster {
			g.n.rejected.Add(1)
			return
		}
		if g.applyLayout(msg.layout.Layout) {
			g.notify()
		}
	default:
		g.n.decodeErrors.Add(1)
	}
}

// GetBroadcasts hands memberlist the queued bucket and member updates.
func (d delegate) GetBroadcasts(overhead, limit int) [][]byte {
	return d.g.queue.GetBroadcasts(overhead, limit)
}

// LocalState returns the whole member table, all buckets and the layout.
func (d delegate) LocalState(join bool) []byte {
	g := d.g
	g.mu.Lock()
	w := g.tbl.wire()
	g.mu.Unlock()
	b, err := encodeMessage(kindState, w)
	if err != nil {
		g.log.Error().Err(err).Msg("gossip: encode local state")
		return nil
	}
	return b
}

// MergeRemoteState merges a peer's member table, buckets and layout.
func (d delegate) MergeRemoteState(buf []byte, join bool) {
	g := d.g
	msg, err := decodeMessage(buf)
	if err != nil || msg.state == nil {
		g.n.decodeErrors.Add(1)
		g.log.Debug().Err(err).Msg("gossip: dropping remote state")
		return
	}
	s := msg.state
	if s.Cluster != g.cfg.Meta.Cluster {
		g.n.rejected.Add(1)
		return
	}
	g.n.pushPulls.Add(1)
	// memberlist asked NotifyMerge first, which vetted the live nodes of
	// the sender's state (Config.Vet): their entries pass at once here.
	// An entry of a node not vetted yet (one the sender says is dead, say)
	// is left out until that node proves itself.
	members := make([]versioned, 0, len(s.Members))
	for _, w := range s.Members {
		v, err := w.versioned()
		if err != nil {
			g.n.decodeErrors.Add(1)
			continue
		}
		if err := g.vet(v.Meta, false); err != nil {
			g.n.rejected.Add(1)
			continue
		}
		members = append(members, v)
	}
	changed := false
	g.mu.Lock()
	for _, v := range members {
		if ok, _ := g.tbl.mergeMember(v); ok {
			g.n.memberUpds.Add(1)
			changed = true
		}
	}
	for name, p := range s.Buckets {
		ok, err := g.tbl.mergeBucket(name, p)
		if err != nil {
			g.n.decodeErrors.Add(1)
		}
		if ok {
			g.n.bucketUpds.Add(1)
			changed = true
		}
	}
	g.mu.Unlock()
	if s.Layout != nil && g.applyLayout(*s.Layout) {
		changed = true
	}
	if changed {
		g.notify()
	}
}

// NotifyJoin records a node seen alive and its metadata.
func (d delegate) NotifyJoin(n *memberlist.Node) {
	d.g.n.joins.Add(1)
	d.g.observe(n, StatusAlive)
}

// NotifyUpdate records changed metadata.
func (d delegate) NotifyUpdate(n *memberlist.Node) {
	d.g.n.updates.Add(1)
	d.g.observe(n, StatusAlive)
}

// NotifyLeave records a node memberlist declared failed (or that left). It
// stays a ring member.
func (d delegate) NotifyLeave(n *memberlist.Node) {
	g := d.g
	g.n.leaves.Add(1)
	g.mu.Lock()
	changed := false
	if _, ok := g.tbl.members[n.Name]; ok {
		changed = g.setStatusLocked(n.Name, StatusDead)
	}
	g.mu.Unlock()
	if changed {
		g.notify()
	}
}

// NotifyAlive admits a node only if its metadata decodes, names this
// cluster and its own node name, and it was not removed.
func (d delegate) NotifyAlive(peer *memberlist.Node) error {
	g := d.g
	v, err := decodeMeta(peer.Meta)
	if err != nil {
		g.n.decodeErrors.Add(1)
		return err
	}
	if err := d.admit(peer.Name, v.Meta); err != nil {
		g.n.rejected.Add(1)
		return err
	}
	// The packet path cannot wait: a node still being vetted is refused
	// now and admitted by a later alive message or push-pull.
	if err := g.vet(v.Meta, false); err != nil {
		g.n.rejected.Add(1)
		return err
	}
	if peer.Name != g.tbl.self {
		g.mu.Lock()
		cur, ok := g.tbl.members[peer.Name]
		g.mu.Unlock()
		if ok && cur.Meta.Removed() {
			g.n.rejected.Add(1)
			return fmt.Errorf("%w: %q", ErrRemoved, peer.Name)
		}
	}
	return nil
}

// NotifyMerge refuses a join if any node of the other side is not of this
// cluster.
func (d delegate) NotifyMerge(peers []*memberlist.Node) error {
	g := d.g
	for _, p := range peers {
		v, err := decodeMeta(p.Meta)
		if err == nil {
			// Only live nodes are vetted (Config.Vet): the sender is one,
			// so a merge from a node that cannot prove itself is refused
			// whole, and the dead or suspect nodes a vetted sender
			// carries were vetted where they were admitted. A dead
			// member must not make every join fail.
			err = d.admit(p.Name, v.Meta)
			if err == nil && p.State == memberlist.StateAlive {
				err = g.vet(v.Meta, true)
			}
		}
		if err != nil {
			g.n.rejected.Add(1)
			g.log.Warn().Err(err).Str("peer", p.Name).Msg("gossip: refusing merge")
			return err
		}
	}
	return nil
}

// admit checks that a node is of this cluster and its meta names it.
func (d delegate) admit(name string, m Meta) error {
	if m.Cluster != d.g.cfg.Meta.Cluster {
		return fmt.Errorf("%w: %q is in cluster %q", ErrWrongCluster, name, m.Cluster)
	}
	if m.ID != name {
		return fmt.Errorf("%w: meta id %q differs from node name %q", ErrBadMeta, m.ID, name)
	}
	return nil
}

// vet asks Config.Vet about another node's live entry, unless the table
// holds that node at the same RPC address already (vetted then, or
// persisted by an earlier run): a member that is down must not block the
// gossip that carries it.
func (g *Gossip) vet(m Meta, wait bool) error {
	if g.cfg.Vet == nil || m.ID == g.cfg.Meta.ID || m.Removed() {
		return nil
	}
	g.mu.Lock()
	cur, known := g.tbl.members[m.ID]
	g.mu.Unlock()
	if known && (m.RPCAddr == "" || cur.Meta.RPCAddr == m.RPCAddr) {
		return nil
	}
	if err := g.cfg.Vet(m, wait); err != nil {
		return fmt.Errorf("%w: %q: %w", ErrNotVetted, m.ID, err)
	}
	return nil
}

// observe merges the metadata of a live node and marks it with status s.
func (g *Gossip) observe(n *memberlist.Node, s Status) {
	v, err := decodeMeta(n.Meta)
	if err != nil {
		g.n.decodeErrors.Add(1)
		return
	}
	g.mu.Lock()
	merged, err := g.tbl.mergeMember(v)
	flipped := err == nil && g.setStatusLocked(v.Meta.ID, s)
	haveLayout := g.tbl.layout != nil
	g.mu.Unlock()
	if merged {
		g.n.memberUpds.Add(1)
	}
	if merged || flipped {
		g.notify()
	}
	if flipped && s == StatusAlive && haveLayout && v.Meta.ID != g.tbl.self {
		// A member that comes alive may have missed the layout (it
		// joined before there was one, or was down): send it to that
		// member now rather than at the next push-pull.
		g.kickSpread(v.Meta.ID)
	}
}

// applyBucket merges a broadcast bucket update and relays it if it was news.
func (g *Gossip) applyBucket(m *bucketMsg) {
	if m.Cluster != g.cfg.Meta.Cluster {
		g.n.rejected.Add(1)
		return
	}
	g.mu.Lock()
	changed, err := g.tbl.mergeBucket(m.Name, m.Props)
	g.mu.Unlock()
	if err != nil {
		g.n.decodeErrors.Add(1)
		return
	}
	if changed {
		g.n.bucketUpds.Add(1)
		g.queueBucket(m.Name, m.Props)
		g.notify()
	}
}

// applyLayout merges a layout received from a peer, counts the outcome
// and reports whether it was adopted. It is not forwarded: the sender
// reaches every member itself, and push-pull covers the rest.
func (g *Gossip) applyLayout(l Layout) bool {
	g.mu.Lock()
	adopted, lost, err := g.tbl.mergeLayout(l)
	g.mu.Unlock()
	switch {
	case err != nil:
		g.n.layoutsRejected.Add(1)
		g.n.decodeErrors.Add(1)
		g.log.Debug().Err(err).Msg("gossip: dropping invalid layout")
	case lost:
		g.n.layoutsRejected.Add(1)
	case adopted:
		g.n.layoutsAdopted.Add(1)
		g.log.Info().Uint64("epoch", l.Epoch).Int("members", len(l.Members)).Msg("gossip: layout adopted")
	}
	return adopted
}

// applyMember merges a broadcast member entry and relays it if it was news.
func (g *Gossip) applyMember(v versioned) {
	if err := g.vet(v.Meta, false); err != nil {
		g.n.rejected.Add(1)
		return
	}
	g.mu.Lock()
	changed, err := g.tbl.mergeMember(v)
	cur := g.tbl.members[v.Meta.ID] // v, or this node's own entry outbidding it
	g.mu.Unlock()
	if errors.Is(err, ErrWrongCluster) {
		g.n.rejected.Add(1)
		return
	}
	if !changed {
		return
	}
	g.n.memberUpds.Add(1)
	g.queueMember(cur)
	g.notify()
}
