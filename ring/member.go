package ring

import (
	"cmp"
	"fmt"
	"slices"
)

// NodeID names a physical node. It is an alias so that IDs move freely
// between this package and code that uses plain strings.
type NodeID = string

// Member is one physical node of the ring. Ring membership is not liveness: a
// node that is down stays a member, and its partitions are served by the
// fallbacks in the preference lists until it returns or is removed.
type Member struct {
	// ID names the node; unique and non-empty. Lookups (Contains,
	// PartitionsFor, the NodeIDs in preference lists) always use the ID.
	ID NodeID
	// Joined is the node's first-start time in unix nanoseconds, persisted in
	// its data directory. It orders the claims: a node that joins with the
	// largest Joined moves the fewest partitions.
	Joined int64
	// Seed is the name the ring hashes for this member's claims and its place
	// in fallback orders; empty means the ID. Effective seeds (EffectiveSeed)
	// must be unique. A node that replaces a dead one takes over its layout
	// by taking the dead node's effective seed and Joined time: it then gets
	// exactly the partitions and preference-list positions the old node had.
	Seed string
}

// EffectiveSeed returns the name the ring hashes for m: Seed, or the ID when
// Seed is empty.
func (m Member) EffectiveSeed() string {
	if m.Seed != "" {
		return m.Seed
	}
	return m.ID
}

// compareMembers orders members by (Joined, effective seed), the claim order.
// It is total on a valid membership, whose effective seeds are unique.
func compareMembers(a, b Member) int {
	if c := cmp.Compare(a.Joined, b.Joined); c != 0 {
		return c
	}
	return cmp.Compare(a.EffectiveSeed(), b.EffectiveSeed())
}

// sortedMembers validates members and returns a sorted copy.
func sortedMembers(members []Member, partitions int) ([]Member, error) {
	if len(members) == 0 {
		return nil, ErrNoMembers
	}
	if len(members) > partitions {
		return nil, fmt.Errorf("%w: %d members, %d partitions",
			ErrTooManyMembers, len(members), partitions)
	}
	sorted := slices.Clone(members)
	slices.SortFunc(sorted, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
	for i, m := range sorted {
		if m.ID == "" {
			return nil, ErrEmptyID
		}
		if i > 0 && sorted[i-1].ID == m.ID {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateMember, m.ID)
		}
	}
	slices.SortFunc(sorted, func(a, b Member) int { return cmp.Compare(a.EffectiveSeed(), b.EffectiveSeed()) })
	for i := 1; i < len(sorted); i++ {
		if a, b := sorted[i-1], sorted[i]; a.EffectiveSeed() == b.EffectiveSeed() {
			return nil, fmt.Errorf("%w: %q (members %q and %q)", ErrDuplicateSeed, b.EffectiveSeed(), a.ID, b.ID)
		}
	}
	slices.SortFunc(sorted, compareMembers)
	return sorted, nil
}
