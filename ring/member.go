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
	// ID names the node; unique and non-empty.
	ID NodeID
	// Joined is the node's first-start time in unix nanoseconds, persisted in
	// its data directory. It orders the claims: a node that joins with the
	// largest Joined moves the fewest partitions.
	Joined int64
}

// compareMembers orders members by (Joined, ID), the claim order.
func compareMembers(a, b Member) int {
	if c := cmp.Compare(a.Joined, b.Joined); c != 0 {
		return c
	}
	return cmp.Compare(a.ID, b.ID)
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
	slices.SortFunc(sorted, compareMembers)
	return sorted, nil
}
