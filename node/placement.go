package node

import (
	"slices"

	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/ring"
)

// placement routes one request: reads and the primaries of writes on the
// committed ring c, and, while a change is in progress, writes also to the
// pending replicas of the target ring t (t == c otherwise).
type placement struct{ c, t *ring.Ring }

var _ quorum.PendingPlacement = placement{}

func (p placement) PreferenceList(key []byte, n int) ([]string, error) {
	return p.c.PreferenceList(key, n)
}
func (p placement) Partition(key []byte) int { return p.c.Partition(key) }
func (p placement) Size() int                { return p.c.Len() }

// Pending implements quorum.PendingPlacement.
func (p placement) Pending(key []byte, n int) []string {
	if p.t == p.c {
		return nil
	}
	next, err := p.t.PreferenceList(key, min(n, p.t.Len()))
	if err != nil {
		return nil
	}
	cur, err := p.c.PreferenceList(key, min(n, p.c.Len()))
	if err != nil {
		return nil
	}
	cur = cur[:min(n, len(cur))]
	var out []string
	for _, id := range next[:min(n, len(next))] {
		if !slices.Contains(cur, id) {
			out = append(out, id)
		}
	}
	return out
}

// placement returns the routing of the current view. Before the node knows
// any layout it routes nothing (ringless).
func (n *Node) placement() quorum.Placement {
	v := n.view.Load()
	if v == nil {
		return ringless{}
	}
	return v.place
}

// ringless is the placement of a node that knows no layout yet: a node
// started with --join that has not heard from the cluster.
type ringless struct{}

func (ringless) PreferenceList([]byte, int) ([]string, error) { return nil, ErrNoRing }
func (ringless) Partition([]byte) int                         { return 0 }
func (ringless) Size() int                                    { return 0 }

// replicatesIn reports whether node is among the first n replicas of k on r.
func replicatesIn(r *ring.Ring, k []byte, n int, node string) bool {
	if r == nil || !r.Contains(node) {
		return false
	}
	n = min(n, r.Len())
	pref, err := r.PreferenceList(k, n)
	if err != nil {
		return false
	}
	return slices.Contains(pref[:n], node)
}
