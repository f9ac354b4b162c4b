package node

import (
	"context"

	"github.com/quorumkv/quorumkv/antientropy"
	"github.com/quorumkv/quorumkv/transport"
)

// MethodKV is the RPC method of coordinator requests to a replica.
const MethodKV = rpcKV

// RPCMethods are every method serveRPC knows, for the fuzz test.
var RPCMethods = []string{rpcKV, rpcPing, rpcPartSizes, rpcTransfers, rpcScan, rpcGossipKeys,
	antientropy.MethodHashes, antientropy.MethodLeafKeys, antientropy.MethodFetch, antientropy.MethodPush,
	antientropy.MethodHasTomb, antientropy.MethodMarkReap, antientropy.MethodPrioritize, "ae.unknown", "nope"}

// ServeRPC serves one internode request as the node's transport would,
// for tests that play a peer sending it.
func (n *Node) ServeRPC(ctx context.Context, req *transport.Request) ([]byte, error) {
	return n.serveRPC(ctx, req)
}
