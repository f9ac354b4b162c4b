package node

import (
	"context"

	"github.com/quorumkv/quorumkv/transport"
)

// MethodKV is the RPC method of coordinator requests to a replica.
const MethodKV = rpcKV

// ServeRPC serves one internode request as the node's transport would,
// for tests that play a peer sending it.
func (n *Node) ServeRPC(ctx context.Context, req *transport.Request) ([]byte, error) {
	return n.serveRPC(ctx, req)
}
