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
)
