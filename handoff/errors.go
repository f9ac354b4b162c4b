package handoff

import "errors"

// Sentinel errors. Functions wrap them with context; test with errors.Is.
var (
	// ErrConfig is wrapped by the Validate methods for every bad field
	// and by the constructors for a missing dependency.
	ErrConfig = errors.New("handoff: invalid config")
	// ErrClosed is returned by Hints.Store after Close.
	ErrClosed = errors.New("handoff: closed")
	// ErrBadOwner is returned by Hints.Store for an owner name the
	// hint key layout cannot hold (empty, or containing a 0x00 byte).
	ErrBadOwner = errors.New("handoff: bad hint owner")
	// ErrBadRequest is returned by ServeScan for a request it cannot
	// serve: a partition out of range or a cursor outside the partition.
	ErrBadRequest = errors.New("handoff: bad scan request")
	// ErrBadResponse is what Transfers makes of a ScanResponse that breaks
	// the protocol (records out of order, outside the partition or past
	// the budget, or no progress): the source is treated as failed.
	ErrBadResponse = errors.New("handoff: bad scan response")
	// ErrNotMember is the reason of a RefusedError for a hint whose owner
	// is not a member of the cluster (HintConfig.Member).
	ErrNotMember = errors.New("handoff: hint owner is not a member")
	// ErrHolderFull is the reason of a RefusedError for a hint that would
	// take this node's hints past HintConfig.MaxHintBytesTotal.
	ErrHolderFull = errors.New("handoff: hint budget of this node is full")
)

// RefusedError is returned by Hints.Store for a hint it kept nowhere
// because it may not be kept here: Reason is ErrNotMember or
// ErrHolderFull. The writer must count the hint as not stored and turn
// to another node. Test with errors.As, or errors.Is on the reason.
type RefusedError struct {
	Reason error
}

// Error implements error.
func (e *RefusedError) Error() string { return "hint refused: " + e.Reason.Error() }

// Unwrap returns the reason.
func (e *RefusedError) Unwrap() error { return e.Reason }

// HintRefused reports true: the replica answers such an error with its
// hint-refused code (quorum.CodeHintRefused), not as a failure.
func (e *RefusedError) HintRefused() bool { return true }
