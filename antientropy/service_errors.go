package antientropy

import "errors"

// Anti-entropy sentinel errors. Functions wrap them with context; test with
// errors.Is.
var (
	// ErrConfig is wrapped by Config.Validate and Shape.Validate for every
	// bad field.
	ErrConfig = errors.New("antientropy: invalid config")
	// ErrClosed is returned by a Service after Close.
	ErrClosed = errors.New("antientropy: closed")
	// ErrNotStarted is returned by exchanges and RPCs before Start has
	// built the trees.
	ErrNotStarted = errors.New("antientropy: not started")
	// ErrBadRequest is returned for an ae.* request that does not decode or
	// asks for something out of range.
	ErrBadRequest = errors.New("antientropy: bad request")
	// ErrShapeMismatch means the two nodes of an exchange use different
	// tree shapes (partitions, leaves or fanout), so their hashes cannot be
	// compared.
	ErrShapeMismatch = errors.New("antientropy: tree shape mismatch")
	// ErrUnknownMethod is returned by HandleRPC for a method it does not
	// serve.
	ErrUnknownMethod = errors.New("antientropy: unknown method")
	// ErrProtocol means a peer's reply does not match its request (wrong
	// number of hashes or leaves).
	ErrProtocol = errors.New("antientropy: protocol violation")
	// ErrNotReplica means the partition asked for is not one this node
	// replicates (under the current ring).
	ErrNotReplica = errors.New("antientropy: not a replica of the partition")
)
