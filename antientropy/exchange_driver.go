package antientropy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

// exchange drives one Exchange of partition p with peer id: the local side
// reads the forest and the store, the remote side is peer. It returns the
// machine's result and how many records it pushed and pulled that changed
// their receiver.
func (s *Service) exchange(ctx context.Context, p int, id string, peer Peer) (res ExchangeResult, pushed, pulled int, err error) {
	x := NewExchange(s.shape, ExchangeOptions{
		MaxHashes: s.cfg.MaxHashesPerCall,
		MaxLeaves: s.cfg.MaxLeavesPerCall,
		MaxKeys:   s.cfg.MaxKeysPerCall,
		Settled:   s.settledFor(id, p),
	})
	code := s.shape.code()
	first := true
	for {
		if err := ctx.Err(); err != nil {
			return x.Result(), pushed, pulled, err
		}
		st := x.Next()
		switch st.Kind {
		case StepDone:
			res = x.Result()
			s.m.nodesCompared.Add(uint64(res.NodesCompared))
			s.m.leavesDiffering.Add(uint64(res.LeavesDiffering))
			s.m.leavesSettled.Add(uint64(res.LeavesSettled))
			s.m.keysDiffering.Add(uint64(res.KeysDiffering))
			s.rememberStuck(id, p, res.Stuck)
			return res, pushed, pulled, nil

		case StepHashes:
			resp, err := peer.Hashes(ctx, &HashesRequest{Shape: code, Partition: p, Level: st.Level, Index: st.Nodes})
			if err != nil {
				return x.Result(), pushed, pulled, err
			}
			local := s.forest.Hashes(p, st.Level, st.Nodes, make([]uint64, 0, len(st.Nodes)))
			if first {
				first = false
				s.m.partitionsCompared.Add(1)
				if len(resp.Hashes) == 1 && resp.Hashes[0] == local[0] {
					s.m.partitionsEqual.Add(1)
				}
			}
			if err := x.OnHashes(local, resp.Hashes); err != nil {
				return x.Result(), pushed, pulled, err
			}

		case StepLeafKeys:
			resp, err := peer.LeafKeys(ctx, &LeafKeysRequest{Shape: code, Partition: p, Leaves: st.Nodes})
			if err != nil {
				return x.Result(), pushed, pulled, err
			}
			if len(resp.Leaves) != len(st.Nodes) {
				return x.Result(), pushed, pulled, fmt.Errorf("%w: %d leaves asked, %d listed", ErrProtocol, len(st.Nodes), len(resp.Leaves))
			}
			local := make([][]Entry, len(st.Nodes))
			remote := make([][]Entry, len(st.Nodes))
			for i, leaf := range st.Nodes {
				if local[i], err = s.listLeaf(p, int(leaf)); err != nil {
					return x.Result(), pushed, pulled, err
				}
				if remote[i], err = resp.Leaves[i].entries(s.shape, p, int(leaf)); err != nil {
					return x.Result(), pushed, pulled, err
				}
			}
			if err := x.OnLeafKeys(local, remote); err != nil {
				return x.Result(), pushed, pulled, err
			}

		case StepTransfer:
			moved, np, nl, err := s.transfer(ctx, p, id, peer, st.Fetch, st.Push)
			pushed += np
			pulled += nl
			if err != nil {
				return x.Result(), pushed, pulled, err
			}
			if err := x.OnTransfer(moved); err != nil {
				return x.Result(), pushed, pulled, err
			}
		}
	}
}

// listLeaf lists leaf i of partition p from the store and checks it
// against the tree: if no write touched the partition during the scan and
// the records do not hash to the stored leaf, the leaf is inconsistent and
// is rebuilt.
func (s *Service) listLeaf(p, i int) ([]Entry, error) {
	h0, w0 := s.forest.leafState(p, i)
	var out []Entry
	var sum uint64
	lo, hi := s.shape.LeafRange(p, i)
	err := s.st.Scan(lo, hi, func(h uint64, k, set []byte) error {
		e := Entry{Hash: h, KeyHash: RecordHash(k, set)}
		sum ^= e.KeyHash
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("antientropy: list leaf %d/%d: %w", p, i, err)
	}
	if h1, w1 := s.forest.leafState(p, i); w0 == w1 && h1 == h0 && sum != h0 {
		s.m.inconsistencies.Add(1)
		s.log.Warn().Int("partition", p).Int("leaf", i).Msg("merkle leaf does not match its records; rebuilding it")
		if err := s.forest.RebuildLeaves(s.st, p, i, i); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// reapTime is when a tombstone set may be reaped: its latest write time
// plus the grace period. It is the same on every replica holding the set,
// so marking twice never moves it.
func reapTime(set version.Set, grace time.Duration) time.Time {
	var latest int64
	for _, sib := range set.Siblings {
		latest = max(latest, sib.WriteTime)
	}
	return time.Unix(0, latest).Add(grace)
}

func (s *Service) replicates(k []byte, node string) bool {
	return s.cfg.Replicates == nil || s.cfg.Replicates(k, node)
}

// peerSet decodes set bytes received from a peer: a format byte and
// msgpack, whose lengths are checked before decoding (see checkMsgpack).
func (s *Service) peerSet(k, b []byte) (version.Set, error) {
	if len(b) == 0 {
		return version.Set{}, fmt.Errorf("%w: record %q: empty set", ErrBadRequest, k)
	}
	if err := checkMsgpack(b[1:]); err != nil {
		return version.Set{}, fmt.Errorf("%w: record %q: %v", ErrBadRequest, k, err)
	}
	set, err := s.cfg.DecodeSet(b)
	if err != nil {
		return version.Set{}, fmt.Errorf("%w: record %q: %v", ErrBadRequest, k, err)
	}
	return set, nil
}

// merge merges one record received from a peer into the store. A merge
// the store refuses because its result would be too large to replicate
// (store.ErrTooLarge) is skipped, counted and logged (sampled), not an
// error: the exchange goes on with the partition's other keys, and the
// key stays different until a client resolves its siblings. Nothing is
// lost, since the peer keeps its copy; each later exchange of the
// partition (every Interval, within the byte rate) pulls it again.
func (s *Service) merge(k, setBytes []byte) (bool, error) {
	set, err := s.peerSet(k, setBytes)
	if err != nil {
		return false, err
	}
	_, changed, err := s.st.Merge(k, set)
	if errors.Is(err, store.ErrTooLarge) {
		s.m.mergesTooLarge.Add(1)
		s.unreadableLog.Warn().Bytes("key", k).Err(err).Msg("not merging a record whose siblings would be too large together; the key must be resolved")
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("antientropy: merge %q: %w", k, err)
	}
	return changed, nil
}

// records returns the local records with key hash h. A record whose set
// bytes do not decode is left out: a peer could not merge it, and to the
// exchange the key then looks missing here, so the peer's copy is pulled
// and heals it (store.Store.Merge).
func (s *Service) records(h uint64, dst []Record) ([]Record, error) {
	err := s.st.Scan(h, h, func(h uint64, k, set []byte) error {
		if _, err := s.cfg.DecodeSet(set); err != nil {
			s.m.unreadable.Add(1)
			s.unreadableLog.Warn().Bytes("key", k).Err(err).Msg("not sending a record that does not decode")
			return nil
		}
		dst = append(dst, Record{Hash: h, Key: bytes.Clone(k), Set: bytes.Clone(set)})
		return nil
	})
	return dst, err
}

// transfer pulls the peer's records for fetch and merges them here, and
// pushes this node's records for push to the peer. It returns the key
// hashes whose merge changed a side, and the number of changing pushes and
// pulls.
func (s *Service) transfer(ctx context.Context, p int, id string, peer Peer, fetch, push []uint64) (moved []uint64, pushed, pulled int, err error) {
	code := s.shape.code()
	for len(fetch) > 0 {
		resp, err := peer.Fetch(ctx, &FetchRequest{Shape: code, Partition: p, Hashes: fetch})
		if err != nil {
			return moved, pushed, pulled, err
		}
		if resp.Served < 1 || resp.Served > len(fetch) {
			return moved, pushed, pulled, fmt.Errorf("%w: fetch of %d served %d", ErrProtocol, len(fetch), resp.Served)
		}
		for _, r := range resp.Records {
			if s.shape.Partition(r.Hash) != p || len(r.Key) == 0 || r.Set == nil {
				return moved, pushed, pulled, fmt.Errorf("%w: fetched record outside partition %d", ErrProtocol, p)
			}
			if !s.replicates(r.Key, s.cfg.NodeID) {
				continue
			}
			changed, err := s.merge(r.Key, r.Set)
			if err != nil {
				return moved, pushed, pulled, err
			}
			if changed {
				moved = append(moved, r.Hash)
				pulled++
				s.m.keysPulled.Add(1)
			}
		}
		fetch = fetch[resp.Served:]
	}

	var batch []Record
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		resp, err := peer.Push(ctx, &PushRequest{Shape: code, Partition: p, Records: batch})
		if err != nil {
			return err
		}
		if len(resp.Changed) != len(batch) {
			return fmt.Errorf("%w: pushed %d records, %d answers", ErrProtocol, len(batch), len(resp.Changed))
		}
		for i, c := range resp.Changed {
			if c {
				moved = append(moved, batch[i].Hash)
				pushed++
				s.m.keysPushed.Add(1)
			}
		}
		batch, size = batch[:0], 0
		return nil
	}
	var recs []Record
	for _, h := range push {
		if recs, err = s.records(h, recs[:0]); err != nil {
			return moved, pushed, pulled, fmt.Errorf("antientropy: read %016x: %w", h, err)
		}
		for _, r := range recs {
			if !s.replicates(r.Key, id) {
				continue
			}
			batch = append(batch, r)
			size += len(r.Key) + len(r.Set)
			if size >= s.cfg.MaxBatchBytes || len(batch) >= s.cfg.MaxKeysPerCall {
				if err := flush(); err != nil {
					return moved, pushed, pulled, err
				}
			}
		}
	}
	if err := flush(); err != nil {
		return moved, pushed, pulled, err
	}
	return moved, pushed, pulled, nil
}
