package antientropy

import "errors"

// Hinted handoff sentinel errors. Functions wrap them with context; test
// with errors.Is.
var (
	// ErrHandoffConfig is wrapped by HandoffConfig.Validate for every bad
	// field.
	ErrHandoffConfig = errors.New("antientropy: invalid handoff config")
	// ErrHandoffClosed is returned by Handoff.Store after Close.
	ErrHandoffClosed = errors.New("antientropy: handoff closed")
	// ErrHintBadOwner is returned by Handoff.Store for an owner name the
	// hint key layout cannot hold (empty, or containing a 0x00 byte).
	ErrHintBadOwner = errors.New("antientropy: bad hint owner")
)
