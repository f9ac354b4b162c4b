package antientropy

import (
	"maps"
	"slices"

	"github.com/vmihailenco/msgpack/v5"
)

// Prioritize queues partition p to be exchanged before the others: the
// background loop takes prioritized partitions first and Run orders them
// first. Hinted handoff calls it when a hint could not be kept. The flag is
// persisted through Meta so it survives a restart, and is cleared once the
// partition was exchanged with every other replica. Out-of-range
// partitions are ignored; a failure to persist is logged (the flag still
// holds in memory).
func (s *Service) Prioritize(p int) {
	if p < 0 || p >= s.cfg.Partitions {
		s.log.Warn().Int("partition", p).Msg("anti-entropy: prioritize: partition out of range")
		return
	}
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
