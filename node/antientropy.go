package node

import (
	"fmt"

	"github.com/quorumkv/quorumkv/antientropy"
	"github.com/quorumkv/quorumkv/store"
)

// onWrite feeds every committed write to the Merkle trees.
func (n *Node) onWrite(ev store.WriteEvent) {
	if ae := n.ae; ae != nil {
		ae.OnWrite(ev)
	}
}

// prioritize queues a partition for anti-entropy ahead of the others: its
// hints overflowed the owner's budget.
func (n *Node) prioritize(partition int) {
	if ae := n.ae; ae != nil {
		ae.Prioritize(partition)
	}
}

// replicates reports whether node should hold key k: it is among the first
// n of the key's preference list, n being the key's bucket's, on the
// committed ring or, during a membership change, on the target ring.
func (n *Node) replicates(k []byte, node string) bool {
	bucket, _, err := store.DecodeKey(k)
	if err != nil {
		return false
	}
	v := n.view.Load()
	if v == nil {
		// No layout known yet (a node just started on an empty disk):
		// it cannot tell, so it keeps what it gets and, asked whether a
		// tombstone may be reaped, answers as a replica would.
		return true
	}
	nv := n.bucketProps(string(bucket)).N
	return replicatesIn(v.ch.C, k, nv, node) || v.ch.T != v.ch.C && replicatesIn(v.ch.T, k, nv, node)
}

func (n *Node) openAntiEntropy() error {
	cfg := n.cfg.AntiEntropy
	cfg.NodeID = n.cfg.ID
	cfg.Partitions = n.cfg.Partitions
	cfg.TombstoneGrace = n.cfg.TombstoneGrace
	cfg.Replicates = n.replicates
	cfg.MaxN = n.maxBucketN
	if cfg.N < n.cfg.DefaultBucket.N {
		cfg.N = n.cfg.DefaultBucket.N
	}
	ae, err := antientropy.New(cfg, antientropy.Deps{
		Store: n.store,
		Meta:  n.store,
		Ring: func() antientropy.Ring {
			if r := n.committed(); r != nil {
				return r
			}
			return nil // not a typed nil: the service then knows no ring
		},
		Caller: n.tr,
		Resolve: func(id string) (string, error) {
			m, ok := n.meta(id)
			if !ok {
				return "", fmt.Errorf("node: unknown member %q", id)
			}
			return m.RPCAddr, nil
		},
		Clock:   n.clk,
		Members: n.ringMembers,
	}, n.log.With().Str("part", "antientropy").Logger())
	if err != nil {
		return fmt.Errorf("anti-entropy: %w", err)
	}
	n.ae = ae
	return nil
}

// ringMembers returns the members of the committed ring and, during a
// membership change, of the target ring: every node that may hold a key.
func (n *Node) ringMembers() []string {
	v := n.view.Load()
	if v == nil {
		return nil
	}
	return unionIDs(v.ch.C, v.ch.T)
}

// maxBucketN returns the largest n of the default bucket and of every
// bucket whose properties were set.
func (n *Node) maxBucketN() int {
	m := n.cfg.DefaultBucket.N
	if n.gossip != nil {
		for _, p := range n.gossip.Buckets() {
			m = max(m, p.N)
		}
	}
	return m
}
