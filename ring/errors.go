package ring

import "errors"

// Sentinel errors. Functions wrap them with context; test with errors.Is.
var (
	// ErrInvalidConfig is wrapped by Config.Validate for every bad field.
	ErrInvalidConfig = errors.New("ring: invalid config")
	// ErrNoMembers is returned by New for an empty membership.
	ErrNoMembers = errors.New("ring: no members")
	// ErrEmptyID is returned by New for a member with an empty ID.
	ErrEmptyID = errors.New("ring: empty member id")
	// ErrDuplicateMember is returned by New when two members share an ID.
	ErrDuplicateMember = errors.New("ring: duplicate member id")
	// ErrDuplicateSeed is returned by New when two members have the same
	// effective seed (Member.EffectiveSeed), so they would claim alike.
	ErrDuplicateSeed = errors.New("ring: duplicate member seed")
	// ErrTooManyMembers is returned by New when there are more members than
	// partitions (some member would own nothing).
	ErrTooManyMembers = errors.New("ring: more members than partitions")
	// ErrTooFewMembers is returned by preference-list lookups when n exceeds
	// the number of members.
	ErrTooFewMembers = errors.New("ring: not enough members")
	// ErrInvalidN is returned by preference-list lookups when n < 1.
	ErrInvalidN = errors.New("ring: n must be at least 1")
	// ErrPartitionRange is returned for a partition outside [0, PartitionCount()).
	ErrPartitionRange = errors.New("ring: partition out of range")
	// ErrPartitionMismatch is returned by Moves when the two rings have
	// different partition counts, so no partition of one is a partition of
	// the other.
	ErrPartitionMismatch = errors.New("ring: partition counts differ")
)
