package antientropy

import (
	"context"
	"maps"
	"slices"
	"time"

	"github.com/vmihailenco/msgpack/v5"
)

// Prioritize queues partition p to be exchanged before the others: the
// background loop takes prioritized partitions first and Run orders them
// first. Hinted handoff calls it when a hint could not be kept. The flag is
// persisted through Meta so it survives a restart, and is cleared once the
// partition was exchanged with every other replica. Out-of-range
// partitions are ignored; a failure to persist is logged (the flag still
// holds in memory). A node that does not replicate p (a fallback whose
// hint budget overflowed) cannot exchange it: it asks p's replicas to
// queue it instead (MethodPrioritize), in the background.
func (s *Service) Prioritize(p int) {
	if p < 0 || p >= s.cfg.Partitions {
		s.log.Warn().Int("partition", p).Msg("anti-entropy: prioritize: partition out of range")
		return
	}
	if replicas, self, err := s.peers(p); err == nil && !self {
		s.forwardPriority(p, replicas)
		return
	}
	s.queuePriority(p)
}

// forwardPriorityTimeout bounds the calls that ask replicas to queue a
// partition.
const forwardPriorityTimeout = 10 * time.Second

// forwardPriority asks each of p's replicas to queue it, on a goroutine
// the Service tracks. A replica that cannot be reached is skipped: its
// hints and the other replicas' round-robin still cover it.
func (s *Service) forwardPriority(p int, replicas []string) {
	if s.caller == nil || s.enter(false) != nil {
		return
	}
	s.m.prioritiesForwarded.Add(1)
	go func() {
		defer s.wg.Done()
		ctx, cancel := context.WithTimeout(s.ctx, forwardPriorityTimeout)
		defer cancel()
		body := encodeMsg(&PrioritizeRequest{Partition: p})
		for _, id := range replicas {
			addr, err := s.resolve(id)
			if err == nil {
				_, err = s.caller.CallNode(ctx, id, addr, MethodPrioritize, body)
			}
			if err != nil {
				s.log.Debug().Err(err).Str("replica", id).Int("partition", p).Msg("anti-entropy: could not forward a priority")
			}
		}
	}()
}

// queuePriority adds p to this node's priority queue.
func (s *Service) queuePriority(p int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.priority[p] {
		return
	}
	s.priority[p] = true
	s.savePriorityLocked()
}

// Prioritized returns the queued partitions in ascending order.
func (s *Service) Prioritized() []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.priority))
}

func (s *Service) clearPriority(p int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.priority[p] {
		return
	}
	delete(s.priority, p)
	s.savePriorityLocked()
}

// savePriorityLocked writes the queue to Meta. Writing under s.mu keeps
// concurrent updates from persisting out of order; the value is tiny.
func (s *Service) savePriorityLocked() {
	if s.meta == nil {
		return
	}
	b, err := msgpack.Marshal(slices.Sorted(maps.Keys(s.priority)))
	if err == nil {
		err = s.meta.PutMeta(metaPriority, b)
	}
	if err != nil {
		s.log.Error().Err(err).Msg("anti-entropy: persisting prioritized partitions failed")
	}
}

// loadPriority restores the queue. An absent or unreadable value means an
// empty queue: priorities only order work.
func (s *Service) loadPriority() {
	if s.meta == nil {
		return
	}
	b, err := s.meta.GetMeta(metaPriority)
	if err != nil {
		return
	}
	var parts []int
	if err := msgpack.Unmarshal(b, &parts); err != nil {
		s.log.Warn().Err(err).Msg("anti-entropy: ignoring unreadable prioritized partitions")
		return
	}
	for _, p := range parts {
		if p >= 0 && p < s.cfg.Partitions {
			s.priority[p] = true
		}
	}
}
