package node

import (
	"context"

	"github.com/quorumkv/quorumkv/transport"

	"github.com/quorumkv/quorumkv/store"
)

type transportMetrics = transport.Metrics

// antiEntropy is what the node needs of the Merkle anti-entropy service.
type antiEntropy interface {
	HandleRPC(ctx context.Context, req *transport.Request) ([]byte, error)
	OnWrite(ev store.WriteEvent)
	Prioritize(partition int)
	Metrics() any
	Close() error
}

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

func (n *Node) openAntiEntropy() error { return nil }
