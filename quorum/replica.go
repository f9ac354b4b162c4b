package quorum

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/version"
)

// Store is what a replica needs of the node's storage (store.Store).
type Store interface {
	Get(k []byte) (version.Set, error)
	// UpdateAsync applies a write and returns before its fsync; wait
	// (nil when there is nothing to wait for) returns once it is durable.
	UpdateAsync(k []byte, fn func(cur version.Set) (version.Set, error)) (version.Set, bool, func() error, error)
	Merge(k []byte, in version.Set) (version.Set, bool, error)
	MarkReapable(k []byte, expect version.Set, after time.Time) error
}

// HintSink keeps writes for unreachable owners (antientropy.Handoff).
type HintSink interface {
	Store(owner string, partition int, k []byte, set version.Set) (bool, error)
	// Hint returns the hint held for owner's key k, the zero Set if none.
	Hint(owner string, k []byte) (version.Set, error)
}

// ReplicaConfig configures the replica side.
type ReplicaConfig struct {
	// Self is this node's ID, the node part of the dots it issues.
	Self string
	// MaxSiblings caps a key's siblings; a write past it is refused with
	// ErrTooManySiblings so the client resolves first. Riak warns at 25
	// and refuses at 100; we refuse at 100.
	MaxSiblings int
	// TombstoneGrace is how long a tombstone known to be on every primary
	// is kept before it may be reaped.
	TombstoneGrace time.Duration
}

// DefaultReplicaConfig returns the defaults.
func DefaultReplicaConfig() ReplicaConfig {
	return ReplicaConfig{
		MaxSiblings:    100,       // past this a write gets 409 and must resolve
		TombstoneGrace: time.Hour, // a tombstone on every primary lives this long before reaping
	}
}

// Replica serves the coordinator's requests on the node that holds the
// data. It is safe for concurrent use: the store serializes each key.
type Replica struct {
	cfg   ReplicaConfig
	store Store
	hints HintSink
	clk   clock.Clock
}

// NewReplica returns the replica side of a node.
func NewReplica(cfg ReplicaConfig, st Store, hints HintSink, clk clock.Clock) *Replica {
	return &Replica{cfg: cfg, store: st, hints: hints, clk: clk}
}

// Handle serves one request.
func (r *Replica) Handle(ctx context.Context, req *Request) (*Response, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	switch req.Kind {
	case KindApply:
		return r.apply(req)
	case KindMerge:
		if req.HintFor != "" && req.HintFor != r.cfg.Self {
			stored, err := r.hints.Store(req.HintFor, req.Partition, req.Key, req.Set)
			if err != nil {
				return nil, fmt.Errorf("store hint: %w", err)
			}
			return &Response{HintStored: stored}, nil
		}
		set, _, err := r.store.Merge(req.Key, req.Set)
		if err != nil {
			return nil, fmt.Errorf("merge: %w", err)
		}
		if req.AckOnly {
			return &Response{}, nil
		}
		return &Response{Set: set}, nil
	case KindRead:
		sloppy := req.HintFor != "" && req.HintFor != r.cfg.Self
		set, err := r.store.Get(req.Key)
		if err != nil {
			if sloppy {
				// A repair of this fallback goes into its hint and
				// would not replace its own record: not ErrCorruptReplica.
				return nil, fmt.Errorf("read: %w", err)
			}
			return nil, readError("read", err)
		}
		if sloppy {
			// A sloppy read of a fallback: what it keeps for the
			// primary it stands in for counts as its data.
			hint, err := r.hints.Hint(req.HintFor, req.Key)
			if err != nil {
				return nil, readError("read hint", err)
			}
			set = version.Sync(set, hint)
		}
		return &Response{Set: set}, nil
	case KindMarkReapable:
		if err := r.store.MarkReapable(req.Key, req.Set, r.clk.Now().Add(r.cfg.TombstoneGrace)); err != nil {
			return nil, fmt.Errorf("mark reapable: %w", err)
		}
		return &Response{}, nil
	}
	return nil, fmt.Errorf("%w: unknown request kind %d", ErrBadParam, req.Kind)
}

// readError wraps a failed read. A record (or hint) that is corrupt, not
// merely in a newer format, is ErrCorruptReplica, coded for the transport:
// the coordinator then repairs this replica, and the repair's merge
// replaces the record.
func readError(what string, err error) error {
	if he := healableError(nil); errors.As(err, &he) && he.Healable() {
		return &CodedError{code: CodeCorrupt, Err: fmt.Errorf("%w: %s: %v", ErrCorruptReplica, what, err)}
	}
	return fmt.Errorf("%s: %w", what, err)
}

func (r *Replica) apply(req *Request) (*Response, error) {
	resp, wait, err := r.applyAsync(req)
	if err != nil {
		return nil, err
	}
	if wait != nil {
		if err := wait(); err != nil {
			return nil, fmt.Errorf("apply: %w", err)
		}
	}
	return resp, nil
}

// EpochStore is implemented by a Store that counts the corrupt records it
// replaced (store.Store.ActorEpoch).
type EpochStore interface {
	ActorEpoch() uint64
}

// ActorSep joins a node ID and an actor epoch into the name dots are
// issued under. Node IDs may not contain it.
const ActorSep = "~"

// actor is the name this replica issues dots under: its node ID, followed
// by the store's actor epoch once the store has replaced a corrupt record.
// The lost record may have held dots of this node that other replicas
// still hold; a new actor name cannot reuse their counters. It is read
// under the key's lock, which the store holds while it publishes a new
// epoch.
func (r *Replica) actor() string {
	if es, ok := r.store.(EpochStore); ok {
		if e := es.ActorEpoch(); e > 0 {
			return r.cfg.Self + ActorSep + strconv.FormatUint(e, 10)
		}
	}
	return r.cfg.Self
}

// ApplyAsync applies a KindApply request on this replica and returns the
// resulting set before the write is durable, so the coordinator can send it
// to the other replicas while this replica's fsync runs. The write counts
// as acknowledged only once wait returns nil; wait is nil when the write
// is already durable.
func (r *Replica) ApplyAsync(ctx context.Context, req *Request) (*Response, func() error, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	return r.applyAsync(req)
}

func (r *Replica) applyAsync(req *Request) (*Response, func() error, error) {
	if req.Write == nil {
		return nil, nil, fmt.Errorf("%w: apply without a write", ErrBadParam)
	}
	now := r.clk.Now()
	var dot version.Dot
	// cur is freshly decoded for this call, and Update builds new slices
	// rather than editing shared ones, so it is updated in place.
	set, _, wait, err := r.store.UpdateAsync(req.Key, func(cur version.Set) (version.Set, error) {
		d, err := cur.Update(version.Write{
			Node: r.actor(), Context: req.Write.Context,
			Value: req.Write.Value, ContentType: req.Write.ContentType, Deleted: req.Write.Deleted,
			WriteTime:    now.UnixNano(),
			CounterFloor: uint64(now.UnixMicro()),
			LWW:          req.LWW, MaxSiblings: r.cfg.MaxSiblings,
		})
		dot = d
		return cur, err
	})
	if err != nil {
		if errors.Is(err, version.ErrTooManySiblings) {
			return nil, nil, &CodedError{code: CodeTooManySiblings, Err: err}
		}
		// UpdateAsync failed before the write became visible.
		return nil, nil, &CodedError{code: CodeNotApplied, Err: fmt.Errorf("%w: apply: %w", ErrNotApplied, err)}
	}
	if req.HintFor == "" || req.HintFor == r.cfg.Self {
		return &Response{Set: set, Dot: dot}, wait, nil
	}
	// A fallback issued the dot because no primary could. Its own record
	// keeps the dot's counter, so it never issues that dot again; the
	// primary it stands in for gets the write from a hint, as it gets the
	// merges other fallbacks keep for it. Both are durable before the ack.
	if wait != nil {
		if err := wait(); err != nil {
			return nil, nil, fmt.Errorf("apply: %w", err)
		}
	}
	stored, err := r.hints.Store(req.HintFor, req.Partition, req.Key, set)
	if err != nil {
		return nil, nil, fmt.Errorf("apply: store hint: %w", err)
	}
	return &Response{Set: set, Dot: dot, HintStored: stored}, nil, nil
}

// Error codes carried across the transport.
const (
	CodeTooManySiblings = "too_many_siblings"
	// CodeCorrupt carries ErrCorruptReplica.
	CodeCorrupt = "corrupt_record"
	// CodeNotApplied carries ErrNotApplied.
	CodeNotApplied = "not_applied"
)

// CodedError carries a stable code across the transport.
type CodedError struct {
	code string
	Err  error
}

// NewCodedError wraps err with a stable code.
func NewCodedError(code string, err error) *CodedError { return &CodedError{code: code, Err: err} }

func (e *CodedError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *CodedError) Unwrap() error { return e.Err }

// Code returns the stable code; the transport carries it to the caller.
func (e *CodedError) Code() string { return e.code }
