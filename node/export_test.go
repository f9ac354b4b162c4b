package node

import (
	"context"

	"github.com/quorumkv/quorumkv/transport"
)

// ServeRPC lets external tests call a node's internode RPC handler
// directly, as a program on the network would reach it.
func ServeRPC(n *Node, ctx context.Context, req *transport.Request) ([]byte, error) {
	return n.serveRPC(ctx, req)
}
