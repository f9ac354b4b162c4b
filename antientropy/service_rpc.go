package antientropy

import (
	"context"
	"fmt"

	"github.com/quorumkv/quorumkv/transport"
	"github.com/quorumkv/quorumkv/version"
)

// HandleRPC serves the ae.* requests of peers exchanging trees with this
// node. The node routes every method with MethodPrefix here. Requests are
// validated (shape, partition, ranges, sizes) and a bad one fails with
// ErrBadRequest or ErrShapeMismatch; nothing a peer sends can panic it.
func (s *Service) HandleRPC(ctx context.Context, req *transport.Request) ([]byte, error) {
	if err := s.enter(true); err != nil {
		return nil, err
	}
	defer s.wg.Done()
	s.m.rpcsServed.Add(1)
	out, err := s.serve(ctx, req.From, req.Method, req.Body)
	if err != nil {
		s.m.rpcErrors.Add(1)
		return nil, err
	}
	s.m.bytesServed.Add(uint64(len(req.Body) + len(out)))
	return out, nil
}

func (s *Service) serve(ctx context.Context, from, method string, body []byte) ([]byte, error) {
	switch method {
	case MethodHashes:
		var r HashesRequest
		if err := decodeMsg(body, &r); err != nil {
			return nil, err
		}
		if err := r.validate(s.shape); err != nil {
			return nil, err
		}
		h := s.forest.Hashes(r.Partition, r.Level, r.Index, make([]uint64, 0, len(r.Index)))
		return encodeMsg(&HashesResponse{Hashes: h}), nil

	case MethodLeafKeys:
		var r LeafKeysRequest
		if err := decodeMsg(body, &r); err != nil {
			return nil, err
		}
		if err := r.validate(s.shape); err != nil {
			return nil, err
		}
		resp := LeafKeysResponse{Leaves: make([]LeafList, len(r.Leaves))}
		for i, leaf := range r.Leaves {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			es, err := s.listLeaf(r.Partition, int(leaf))
			if err != nil {
				return nil, err
			}
			resp.Leaves[i] = leafList(es)
		}
		return encodeMsg(&resp), nil

	case MethodFetch:
		var r FetchRequest
		if err := decodeMsg(body, &r); err != nil {
			return nil, err
		}
		if err := r.validate(s.shape); err != nil {
			return nil, err
		}
		return s.serveFetch(ctx, from, &r)

	case MethodPush:
		var r PushRequest
		if err := decodeMsg(body, &r); err != nil {
			return nil, err
		}
		if err := r.validate(s.shape); err != nil {
			return nil, err
		}
		resp := PushResponse{Changed: make([]bool, len(r.Records))}
		for i, rec := range r.Records {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			if !s.replicates(rec.Key, s.cfg.NodeID) {
				continue
			}
			changed, err := s.merge(rec.Key, rec.Set)
			if err != nil {
				return nil, err
			}
			resp.Changed[i] = changed
		}
		return encodeMsg(&resp), nil

	case MethodHasTomb:
		var r HasTombRequest
		if err := decodeMsg(body, &r); err != nil {
			return nil, err
		}
		if err := r.validate(s.shape); err != nil {
			return nil, err
		}
		resp := HasTombResponse{Has: make([]bool, len(r.Items))}
		for i, it := range r.Items {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			has, err := s.hasTomb(it)
			if err != nil {
				return nil, err
			}
			resp.Has[i] = has
		}
		return encodeMsg(&resp), nil

	case MethodMarkReap:
		var r MarkReapRequest
		if err := decodeMsg(body, &r); err != nil {
			return nil, err
		}
		if err := r.validate(s.shape); err != nil {
			return nil, err
		}
		resp := MarkReapResponse{Marked: make([]bool, len(r.Items))}
		for i, it := range r.Items {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			set, err := s.peerSet(it.Key, it.Set)
			if err != nil {
				return nil, err
			}
			resp.Marked[i] = s.markReapable(r.Partition, it, set)
		}
		return encodeMsg(&resp), nil

	case MethodPrioritize:
		var r PrioritizeRequest
		if err := decodeMsg(body, &r); err != nil {
			return nil, err
		}
		if r.Partition < 0 || r.Partition >= s.cfg.Partitions {
			return nil, fmt.Errorf("%w: partition %d", ErrBadRequest, r.Partition)
		}
		if _, self, err := s.peers(r.Partition); err == nil && self {
			s.queuePriority(r.Partition)
		}
		return encodeMsg(&struct{}{}), nil
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownMethod, method)
}

// serveFetch returns the records with the requested key hashes that the
// caller should hold, stopping after MaxBatchBytes.
func (s *Service) serveFetch(ctx context.Context, from string, r *FetchRequest) ([]byte, error) {
	var resp FetchResponse
	size := 0
	var recs []Record
	for i, h := range r.Hashes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var err error
		if recs, err = s.records(h, recs[:0]); err != nil {
			return nil, fmt.Errorf("antientropy: read %016x: %w", h, err)
		}
		for _, rec := range recs {
			if !s.replicates(rec.Key, from) {
				continue
			}
			resp.Records = append(resp.Records, rec)
			size += len(rec.Key) + len(rec.Set)
		}
		resp.Served = i + 1
		if size >= s.cfg.MaxBatchBytes {
			break
		}
	}
	return encodeMsg(&resp), nil
}

// hasTomb reports whether, as far as this node knows, the item's
// tombstone set may be reaped: nothing here could bring back what it
// deleted. As one of the key's replicas, the node must hold the tombstones
// (its record equals the set or supersedes it, still all tombstones), or
// remember reaping them; a replica that lacks the key entirely does not
// agree, since it may never have received the delete (a lost disk) while a
// hint for it holds the old value. And whatever else it keeps for the key,
// a stray record of a partition it no longer replicates or a hint for any
// owner, must hold no live version the tombstones do not supersede.
func (s *Service) hasTomb(it Record) (bool, error) {
	t, err := s.peerSet(it.Key, it.Set)
	if err != nil {
		return false, err
	}
	if !t.Deleted() {
		return false, nil
	}
	local, err := s.st.Get(it.Key)
	if err != nil {
		return false, fmt.Errorf("antientropy: read %q: %w", it.Key, err)
	}
	if s.replicates(it.Key, s.cfg.NodeID) {
		merged := version.Sync(local, t)
		if len(local.Siblings) == 0 {
			// Absent, or the memory of a reap: only the memory agrees.
			if len(merged.Siblings) != 0 {
				return false, nil
			}
		} else if !local.Deleted() || !merged.Equal(local) {
			return false, nil
		}
	} else if !supersedes(t, local) {
		return false, nil
	}
	for _, owner := range s.st.HintOwners() {
		h, err := s.st.Hint(owner, it.Key)
		if err != nil {
			return false, fmt.Errorf("antientropy: read hint for %s of %q: %w", owner, it.Key, err)
		}
		if !supersedes(t, h) {
			return false, nil
		}
	}
	return true, nil
}

// supersedes reports whether every live sibling of x is one t holds or
// covers: merging x into t could bring no deleted value back.
func supersedes(t, x version.Set) bool {
	for _, sib := range x.Siblings {
		if !sib.Deleted && !t.Has(sib.Dot) && !t.Context.Covers(sib.Dot) {
			return false
		}
	}
	return true
}
