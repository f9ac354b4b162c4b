package gossip

import (
	"cmp"
	"fmt"
)

// Conflict resolution modes of a bucket.
const (
	// ConflictSiblings keeps concurrent writes as siblings for the client
	// to resolve.
	ConflictSiblings = "siblings"
	// ConflictLWW keeps the write with the latest timestamp.
	ConflictLWW = "lww"
)

// Bounds on bucket properties.
const (
	// MaxN is the largest replication factor a bucket may ask for.
	MaxN = 16
	// MaxBucketNameLen bounds bucket names, in bytes.
	MaxBucketNameLen = 255
)

// BucketProps are the cluster-wide properties of a bucket. They are merged
// last-writer-wins on (Updated, UpdatedBy).
type BucketProps struct {
	// N is the replication factor.
	N int `msgpack:"n" json:"n"`
	// R is the default read quorum.
	R int `msgpack:"r" json:"r"`
	// W is the default write quorum.
	W int `msgpack:"w" json:"w"`
	// Conflict is ConflictSiblings or ConflictLWW.
	Conflict string `msgpack:"conflict" json:"conflict"`
	// Updated is the unix-nanosecond time of the change, from the clock
	// of the node that made it. SetBucket fills it in.
	Updated int64 `msgpack:"updated" json:"updated"`
	// UpdatedBy is the ID of the node that made the change. SetBucket
	// fills it in.
	UpdatedBy string `msgpack:"updated_by" json:"updated_by"`
}

// DefaultBucketProps returns N=3, R=2, W=2, siblings.
func DefaultBucketProps() BucketProps {
	return BucketProps{N: 3, R: 2, W: 2, Conflict: ConflictSiblings}
}

// Validate checks 1 <= R, W <= N <= MaxN and the conflict mode.
func (p BucketProps) Validate() error {
	switch {
	case p.N < 1 || p.N > MaxN:
		return fmt.Errorf("%w: n=%d, want 1..%d", ErrBadN, p.N, MaxN)
	case p.R < 1 || p.R > p.N:
		return fmt.Errorf("%w: r=%d, want 1..%d", ErrBadR, p.R, p.N)
	case p.W < 1 || p.W > p.N:
		return fmt.Errorf("%w: w=%d, want 1..%d", ErrBadW, p.W, p.N)
	case p.Conflict != ConflictSiblings && p.Conflict != ConflictLWW:
		return fmt.Errorf("%w: %q", ErrBadConflict, p.Conflict)
	case p.Updated < 0 || len(p.UpdatedBy) > MaxIDLen:
		return fmt.Errorf("%w: updated=%d, updated_by %d bytes", ErrBadStamp, p.Updated, len(p.UpdatedBy))
	}
	return nil
}

// validBucketName checks a bucket name.
func validBucketName(name string) error {
	if name == "" || len(name) > MaxBucketNameLen {
		return fmt.Errorf("%w: must be 1..%d bytes", ErrBucketName, MaxBucketNameLen)
	}
	return nil
}

// supersedes reports whether p should replace q: the later (Updated,
// UpdatedBy) wins, and a deterministic comparison of the content breaks a
// full tie so every node keeps the same value.
func (p BucketProps) supersedes(q BucketProps) bool {
	return cmp.Or(
		cmp.Compare(p.Updated, q.Updated),
		cmp.Compare(p.UpdatedBy, q.UpdatedBy),
		cmp.Compare(p.N, q.N),
		cmp.Compare(p.R, q.R),
		cmp.Compare(p.W, q.W),
		cmp.Compare(p.Conflict, q.Conflict),
	) > 0
}
