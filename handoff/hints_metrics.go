package handoff

import "github.com/quorumkv/quorumkv/version"

// HintMetrics is a snapshot of the hinted handoff counters. Pending figures
// are read from the store, so they include hints stored before a restart;
// the event counters count since NewHints.
type HintMetrics struct {
	// PendingHints and PendingBytes are the hints waiting in the store,
	// over all owners.
	PendingHints int64
	PendingBytes int64
	// Stored counts hints kept by Store (a hint merged into an existing
	// one counts again).
	Stored uint64
	// Overflowed counts hints Store did not keep because the owner's
	// budget was full; their partitions were prioritized.
	Overflowed uint64
	// StoreErrors counts hints Store did not keep because the store
	// failed; their partitions were prioritized too.
	StoreErrors uint64
	// RefusedNotMember counts hints Store refused because their owner is
	// not a member; RefusedFull those refused because this node's hints
	// would pass MaxHintBytesTotal (partitions prioritized);
	// RefusedTooLarge those whose merged hint would be too large to
	// replicate (store.Config.MaxMergeBytes).
	RefusedNotMember, RefusedFull, RefusedTooLarge uint64
	// DeliveriesTooLarge counts deliveries the receiver refused because
	// the key's siblings would be too large together; each such hint is
	// kept and tried again next round, after the other hints.
	DeliveriesTooLarge uint64
	// DeliveriesImplausible counts deliveries the receiver refused as
	// implausible versions (a hint stored before receivers checked); each
	// is kept and passed over, and logged.
	DeliveriesImplausible uint64
	// Delivered counts hints the owners acknowledged, re-deliveries
	// included.
	Delivered uint64
	// Replayed counts hints delivered and then deleted.
	Replayed uint64
	// Superseded counts delivered hints that were kept because a newer
	// write was merged into them during delivery.
	Superseded uint64
	// ReplayFailures counts failed deliveries and failed deletes.
	ReplayFailures uint64
	// Passes counts finished replay passes.
	Passes uint64
	// Retargeted counts hints of owners that are no longer members that
	// were handed to their keys' replicas and deleted.
	Retargeted uint64
	// Rehomed counts hints sent to another node by Rehome while this one
	// was evacuating, and deleted.
	Rehomed uint64
	// Replaying is how many owners are being replayed now.
	Replaying int
	// Evacuating is whether Evacuate is on.
	Evacuating bool
}

// HintOwnerStats is one owner's part of the figures, for GET /v1/cluster.
type HintOwnerStats struct {
	PendingHints   int64  `json:"pending_hints"`
	PendingBytes   int64  `json:"pending_bytes"`
	Stored         uint64 `json:"stored"`
	Overflowed     uint64 `json:"overflowed"`
	StoreErrors    uint64 `json:"store_errors"`
	Delivered      uint64 `json:"delivered"`
	Replayed       uint64 `json:"replayed"`
	Superseded     uint64 `json:"superseded"`
	ReplayFailures uint64 `json:"replay_failures"`
	Retargeted     uint64 `json:"retargeted"`
	Rehomed        uint64 `json:"rehomed"`
	Replaying      bool   `json:"replaying"`
}

// Metrics returns a snapshot of the counters.
func (h *Hints) Metrics() HintMetrics {
	var m HintMetrics
	for _, owner := range h.st.HintOwners() {
		m.PendingHints += h.hintCount(owner)
		m.PendingBytes += h.st.HintBytes(owner)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.totals
	m.Stored, m.Overflowed, m.StoreErrors = t.stored, t.overflowed, t.storeErrors
	m.RefusedNotMember, m.RefusedFull, m.RefusedTooLarge = t.refusedNotMember, t.refusedFull, t.refusedTooLarge
	m.DeliveriesTooLarge, m.DeliveriesImplausible = t.deliveriesTooLarge, t.deliveriesImplausible
	m.Delivered, m.Replayed, m.Superseded = t.delivered, t.replayed, t.superseded
	m.ReplayFailures, m.Passes = t.replayFailures, t.passes
	m.Retargeted, m.Rehomed = t.retargeted, t.rehomed
	m.Replaying = len(h.replaying)
	m.Evacuating = h.evacuating
	return m
}

// Pending returns per-owner figures for every owner that has pending hints
// or any counted event.
func (h *Hints) Pending() map[string]HintOwnerStats {
	out := make(map[string]HintOwnerStats)
	for _, owner := range h.st.HintOwners() {
		out[owner] = HintOwnerStats{
			PendingHints: h.hintCount(owner),
			PendingBytes: h.st.HintBytes(owner),
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for owner, c := range h.owners {
		s := out[owner]
		s.Stored, s.Overflowed, s.StoreErrors = c.stored, c.overflowed, c.storeErrors
		s.Delivered, s.Replayed, s.Superseded = c.delivered, c.replayed, c.superseded
		s.ReplayFailures = c.replayFailures
		s.Retargeted, s.Rehomed = c.retargeted, c.rehomed
		out[owner] = s
	}
	for owner := range h.replaying {
		s := out[owner]
		s.Replaying = true
		out[owner] = s
	}
	return out
}

// hintCount returns owner's pending hints, from the store's counter if it
// keeps one and by scanning otherwise. A scan error yields the hints
// counted so far.
func (h *Hints) hintCount(owner string) int64 {
	if c, ok := h.st.(HintCounter); ok {
		return c.HintCount(owner)
	}
	var n int64
	_ = h.st.ScanHints(owner, func([]byte, version.Set) error { n++; return nil })
	return n
}

// Outstanding returns how many hints this node holds: for owners that
// member reports as no longer members, and in total. A leaving node is
// done with its hints when total is 0; a node is done retargeting when
// forNonMembers is 0. A nil member counts every owner as a member.
func (h *Hints) Outstanding(member func(owner string) bool) (forNonMembers, total int64) {
	for _, owner := range h.st.HintOwners() {
		n := h.hintCount(owner)
		total += n
		if member != nil && !member(owner) {
			forNonMembers += n
		}
	}
	return forNonMembers, total
}
