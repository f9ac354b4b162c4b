package store

import (
	"errors"
	"fmt"

	"github.com/quorumkv/quorumkv/version"
)

// Sentinel errors. Functions wrap them with context; test with errors.Is.
var (
	// ErrInvalidConfig is wrapped by Config.Validate for every bad field.
	ErrInvalidConfig = errors.New("store: invalid config")
	// ErrNotFound is returned by GetMeta and MarkReapable for an absent row.
	ErrNotFound = errors.New("store: not found")
	// ErrClosed is returned by every operation after Close has begun.
	ErrClosed = errors.New("store: closed")
	// ErrCorrupt is matched by every CorruptError and FormatError: a stored
	// or received byte string that does not decode.
	ErrCorrupt = errors.New("store: corrupt record")
	// ErrBadKey means an encoded key does not parse (see DecodeKey).
	ErrBadKey = errors.New("store: malformed key")
	// ErrBadOwner means a hint owner is empty or contains a 0x00 byte.
	ErrBadOwner = errors.New("store: invalid hint owner")
	// ErrChanged is returned by MarkReapable when the stored set no longer
	// equals the expected one: a write slipped in.
	ErrChanged = errors.New("store: record changed")
	// ErrNotTombstone is returned by MarkReapable for a set that holds a
	// live sibling (or none at all).
	ErrNotTombstone = errors.New("store: record is not all tombstones")
	// ErrFailed means a storage failure (a WAL write or sync error, or a
	// pebble panic) left the database in a state that must not be served
	// or written further. Every operation returns it, wrapped with the
	// cause, until Reopen succeeds (the Store retries by itself with
	// Config.ReopenBackoff; Health tells when).
	ErrFailed = errors.New("store: storage failed, reopen required")
	// ErrTooLarge is matched by every TooLargeError: a merge refused
	// because its result would exceed Config.MaxMergeBytes.
	ErrTooLarge = errors.New("store: merged record too large")
	// ErrHintsFull is returned by AddHint (with stored == false) for a hint
	// that would take the hint bytes of all owners together past the
	// node's total hint budget.
	ErrHintsFull = errors.New("store: hint budget of the node is full")
)

// TooLargeError reports a merge refused by Config.MaxMergeBytes; the
// stored record (or hint) is unchanged. It matches ErrTooLarge and
// version.ErrTooLarge, the write path's byte cap per key, so callers that
// map that cap to an answer (409 key_too_large) map this one too.
type TooLargeError struct {
	// Key is the encoded user key.
	Key []byte
	// Bytes is the encoded size the merge would have stored; Limit is
	// Config.MaxMergeBytes.
	Bytes, Limit int
}

// Error implements error. The key is left out: it may be large, and the
// caller knows it.
func (e *TooLargeError) Error() string {
	return fmt.Sprintf("store: merged record of %d bytes refused, at most %d allowed", e.Bytes, e.Limit)
}

// Unwrap returns ErrTooLarge and version.ErrTooLarge.
func (e *TooLargeError) Unwrap() []error { return []error{ErrTooLarge, version.ErrTooLarge} }

// CorruptError reports a stored row that does not decode. It matches
// ErrCorrupt and unwraps to the decoding error.
type CorruptError struct {
	// Key is the encoded user key (or meta name) of the row.
	Key []byte
	// Err is what the decoder reported.
	Err error
}

// Error implements error.
func (e *CorruptError) Error() string {
	return fmt.Sprintf("store: corrupt record for key %q: %v", e.Key, e.Err)
}

// Unwrap returns ErrCorrupt and the decoding error.
func (e *CorruptError) Unwrap() []error { return []error{ErrCorrupt, e.Err} }

// Healable reports whether a merge replaces the record (see Store.Merge):
// it does not decode, and not because its format is newer than this
// version.
func (e *CorruptError) Healable() bool { return healable(e) }

// FormatError reports an encoded record or set whose leading format byte
// this version does not know: written by a newer version, or garbage. It
// matches ErrCorrupt.
type FormatError struct {
	// What names the encoding: "record" or "set".
	What string
	// Format is the byte found.
	Format byte
}

// Error implements error.
func (e *FormatError) Error() string {
	return fmt.Sprintf("store: unknown %s format %d", e.What, e.Format)
}

// Is makes a FormatError match ErrCorrupt.
func (e *FormatError) Is(target error) bool { return target == ErrCorrupt }

// FatalError is what pebble reported through Logger.Fatalf while serving a
// call of this package (for example "pebble: fatal commit error" after a WAL
// sync failed). It is always wrapped in ErrFailed.
type FatalError struct {
	// Msg is pebble's formatted message.
	Msg string
}

// Error implements error.
func (e *FatalError) Error() string { return "store: pebble fatal: " + e.Msg }

// PanicError is a panic raised inside pebble (not through Fatalf) and
// recovered by this package. It is always wrapped in ErrFailed.
type PanicError struct {
	// Value is the recovered value.
	Value any
}

// Error implements error.
func (e *PanicError) Error() string { return fmt.Sprintf("store: pebble panic: %v", e.Value) }

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}
