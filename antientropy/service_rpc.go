package antientropy

import (
	"bytes"
	"context"
	"fmt"
	"time"

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
		now := s.clk.Now()
		for i, it := range r.Items {
			has, err := s.hasTomb(it, now)
			if err != nil {
				return nil, err
			}
			resp.Has[i] = has
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

// hasTomb reports whether this node holds, for the item's key, a
// tombstone-only set equal to or newer than the item's (merging the item
// into it would change nothing). A node without the key counts as holding
// it once the item's grace period is over: it has nothing the tombstone
// must supersede, and anti-entropy no longer copies such a tombstone to a
// replica lacking the key, so waiting for it would keep the tombstone
// forever on the others.
func (s *Service) hasTomb(it Record, now time.Time) (bool, error) {
	t, err := s.peerSet(it.Key, it.Set)
	if err != nil {
		return false, err
	}
	if !t.Deleted() {
		return false, nil
	}
	var found bool
	var local version.Set
	err = s.st.Scan(it.Hash, it.Hash, func(_ uint64, k, set []byte) error {
		if !bytes.Equal(k, it.Key) {
			return nil
		}
		found = true
		var derr error
		local, derr = s.cfg.DecodeSet(set)
		return derr
	})
	if err != nil {
		return false, fmt.Errorf("antientropy: read %q: %w", it.Key, err)
	}
	if !found {
		return s.expired(t, now), nil
	}
	return local.Deleted() && version.Sync(local, t).Equal(local), nil
}
