package node

import (
	"context"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/handoff"
	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

// scanSource fetches batches of a partition from another node over the
// transport: the Source of the node's handoff.Transfers.
type scanSource struct{ n *Node }

var (
	_ handoff.Source        = scanSource{}
	_ handoff.ScanStore     = (*store.Store)(nil)
	_ handoff.TransferStore = (*store.Store)(nil)
)

func (s scanSource) Scan(ctx context.Context, node string, req *handoff.ScanRequest) (*handoff.ScanResponse, error) {
	if node == s.n.cfg.ID {
		return nil, fmt.Errorf("node: a transfer from itself")
	}
	m, ok := s.n.meta(node)
	if !ok {
		return nil, fmt.Errorf("node: unknown member %q", node)
	}
	body, err := msgpack.Marshal(req)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, internalTimeout)
	defer cancel()
	out, err := s.n.tr.CallNode(ctx, node, m.RPCAddr, rpcScan, body)
	if err != nil {
		return nil, err
	}
	if err := wire.Check(out); err != nil {
		return nil, fmt.Errorf("node: scan reply from %s: %w", node, err)
	}
	var resp handoff.ScanResponse
	if err := msgpack.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("node: decode scan reply from %s: %w", node, err)
	}
	return &resp, nil
}

// serveScan answers another node's handoff.scan: a batch of this node's
// rows of one partition.
func (n *Node) serveScan(body []byte) ([]byte, error) {
	var req handoff.ScanRequest
	if err := msgpack.Unmarshal(body, &req); err != nil {
		return nil, fmt.Errorf("node: decode %s: %w", rpcScan, err)
	}
	resp, err := handoff.ServeScan(n.transferCfg, n.store, &req)
	if err != nil {
		return nil, err
	}
	return msgpack.Marshal(resp)
}

// rehomeHint gives a hint held by this node (which is leaving) to another
// live member, which keeps it for its owner.
func (n *Node) rehomeHint(ctx context.Context, owner string, k []byte, set version.Set) error {
	ctx, cancel := context.WithTimeout(ctx, internalTimeout)
	defer cancel()
	v := n.view.Load()
	if v == nil {
		return errNotReady
	}
	var last error
	for _, m := range v.ch.T.Members() {
		id := m.ID
		if id == n.cfg.ID || id == owner || !n.available(id) {
			continue
		}
		resp, err := sender{n}.Send(ctx, id, &quorum.Request{Kind: quorum.KindMerge, Key: k, Partition: v.ch.C.Partition(k), Set: set, HintFor: owner})
		if err == nil && resp.HintStored {
			return nil
		}
		if err == nil {
			err = fmt.Errorf("node: %s kept no hint for %s (its budget is full)", id, owner)
		}
		last = err
	}
	if last == nil {
		last = fmt.Errorf("node: no live member to keep a hint for %s", owner)
	}
	return last
}
