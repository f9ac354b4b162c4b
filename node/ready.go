package node

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/quorumkv/quorumkv/gossip"
)

// ErrStoreFailed is wrapped by Ready while the node's store has failed
// (store.ErrFailed) and is not open again yet.
var ErrStoreFailed = errors.New("node: store failed; retrying to reopen it")

// readyBody is the body of GET /v1/ready.
type readyBody struct {
	Ready  bool   `json:"ready"`
	Reason string `json:"reason,omitempty"`
}

// Ready reports whether the node serves its replicas: nil, or why not
// (ErrStoreFailed while its store is failed, ErrNoRing before it knows a
// layout). While its store is failed the node advertises
// gossip.StateUnavailable, and every coordinator, its own included, routes
// around it.
func (n *Node) Ready() error {
	if _, err := n.store.Health(); err != nil {
		return fmt.Errorf("%w: %w", ErrStoreFailed, err)
	}
	if n.committed() == nil {
		return ErrNoRing
	}
	return nil
}

// handleReady serves GET /v1/ready, the short form of GET /readyz (the
// same checks): 200 {"ready":true}, or 503 with the failed checks' details
// as the reason.
func (n *Node) handleReady(w http.ResponseWriter, r *http.Request) {
	rd := n.Readiness()
	if rd.Ready {
		writeJSON(w, http.StatusOK, readyBody{Ready: true})
		return
	}
	var why []string
	for _, c := range rd.Checks {
		if !c.OK {
			why = append(why, c.Name+": "+c.Detail)
		}
	}
	writeJSON(w, http.StatusServiceUnavailable, readyBody{Reason: strings.Join(why, "; ")})
}

// storeOK reports whether the node's own store served when its health
// was last applied (watchStore): cheap enough for every request's plan.
func (n *Node) storeOK() bool { return !n.storeDown.Load() }

// watchStore applies the store's health and returns the channel that
// signals its next change. Only membershipLoop calls it, so that the
// node's own gossip entry has one writer (advertise is the other part).
// After a reopen the Merkle trees are rebuilt first, since they saw writes
// the failed instance applied and may have lost, and the hints this node
// keeps for others are replayed.
func (n *Node) watchStore(wasOK bool) (changed <-chan struct{}, ok bool) {
	changed, err := n.store.Health()
	ok = err == nil
	n.storeDown.Store(!ok)
	if ok && !wasOK {
		n.rebuildTrees()
		n.hints.Kick()
	}
	if ok != wasOK {
		n.log.Info().Bool("ready", ok).AnErr("cause", err).Msg("store health changed")
	}
	state := gossip.StateUp
	if !ok {
		state = gossip.StateUnavailable
	}
	n.advertiseState(state)
	return changed, ok
}

// rebuildTrees rebuilds every partition's Merkle tree from the store.
func (n *Node) rebuildTrees() {
	f := n.ae.Forest()
	for p := range f.Shape().Partitions() {
		if err := f.Rebuild(n.store, p); err != nil {
			n.log.Warn().Err(err).Int("partition", p).Msg("rebuilding the merkle tree after a store reopen")
			return
		}
	}
}

// advertiseState publishes this node's state in gossip.
func (n *Node) advertiseState(state string) {
	m, ok := n.gossip.Member(n.cfg.ID)
	if !ok || m.Meta.Removed() || m.Meta.State == state {
		return
	}
	want := m.Meta
	want.State = state
	if err := n.gossip.UpdateMeta(want); err != nil && !errors.Is(err, gossip.ErrClosed) {
		n.log.Warn().Err(err).Str("state", state).Msg("advertise state")
	}
}

// readyMetrics is the node part of /metrics.
type readyMetrics struct {
	// Ready is true while Ready returns nil.
	Ready bool
}
