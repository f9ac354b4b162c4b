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
	// NextCounter returns a node-wide counter never returned before: the
	// floor of the next dot this replica issues.
	NextCounter() (uint64, error)
}

// HintSink keeps writes for unreachable owners (handoff.Hints).
type HintSink interface {
	// Store durably keeps set as a hint for owner, merged with any hint
	// held for k. stored is false when the owner's hint budget had no
	// room for it: nothing was kept.
	Store(owner string, partition int, k []byte, set version.Set) (stored bool, err error)
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
	// MaxKeyBytes caps the bytes of a key's siblings together; a write
	// past it is refused with ErrKeyTooLarge. It keeps every record well
	// under the transport's frame limit. Zero: no cap.
	MaxKeyBytes int
	// Replicates reports whether this node is one of key k's replicas.
	// A read of a key it does not replicate is refused (ErrNotReplica):
	// whatever the node keeps for such a key (left there by a ring that
	// moved) is not an answer. nil: every key.
	Replicates func(k []byte) bool
}

// DefaultReplicaConfig returns the defaults.
func DefaultReplicaConfig() ReplicaConfig {
	return ReplicaConfig{
		MaxSiblings: 100,      // past this a write gets 409 and must resolve
		MaxKeyBytes: 16 << 20, // a quarter of the default 64 MiB frame
		Replicates:  nil,      // the node wires the ring in
	}
}

// Replica serves the coordinator's requests on the node that holds the
// data. It is safe for concurrent use: the store serializes each key.
type Replica struct {
	cfg   ReplicaConfig
	store Store
	hints HintSink
	clk   clock.Clock
	hlc   *clock.HLC
}

// NewReplica returns the replica side of a node. Its write times come from
// a hybrid logical clock over clk (see Replica.HLC); clk also bounds the
// counters it accepts (see checkPlausible).
func NewReplica(cfg ReplicaConfig, st Store, hints HintSink, clk clock.Clock) *Replica {
	return &Replica{cfg: cfg, store: st, hints: hints, clk: clk, hlc: clock.NewHLC(clk)}
}

// HLC returns the hybrid logical clock that stamps this replica's writes.
// Every set the replica merges raises it to the set's latest write time,
// and every write it issues is stamped after the latest write time of the
// siblings it supersedes, so a write issued on a node that had seen
// another one orders after it in a last-write-wins bucket, even with that
// node's wall clock behind. The node feeds it what reaches the store by
// other paths (anti-entropy).
func (r *Replica) HLC() *clock.HLC { return r.hlc }

// stamp returns the write time of a write applied on top of cur.
func (r *Replica) stamp(cur version.Set) int64 {
	r.hlc.Observe(LatestWrite(cur))
	return r.hlc.Now()
}

// LatestWrite returns the latest write time of a set's siblings, 0 if it
// has none.
func LatestWrite(s version.Set) int64 {
	var t int64
	for _, sib := range s.Siblings {
		t = max(t, sib.WriteTime)
	}
	return t
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
		if err := r.checkPlausible("merge", req.Set.Plausible); err != nil {
			return nil, err
		}
		r.hlc.Observe(LatestWrite(req.Set))
		if req.HintFor != "" && req.HintFor != r.cfg.Self {
			stored, err := r.hints.Store(req.HintFor, req.Partition, req.Key, req.Set)
			if err != nil {
				return nil, r.hintError(req.HintFor, err)
			}
			return &Response{HintStored: stored}, nil
		}
		set, _, err := r.store.Merge(req.Key, req.Set)
		if err != nil {
			if c := capCode(err); c != "" {
				// The store kept what it had: the merge would have
				// built a record too large to replicate.
				return nil, &CodedError{code: c, Err: fmt.Errorf("%w: merge: %w", ErrNotApplied, err)}
			}
			return nil, fmt.Errorf("merge: %w", err)
		}
		if req.AckOnly {
			return &Response{}, nil
		}
		return &Response{Set: set}, nil
	case KindRead:
		if req.HintFor != "" && req.HintFor != r.cfg.Self {
			// A sloppy read of a fallback answers with what it keeps for
			// the primary it stands in for, and nothing else: data it may
			// hold for a key it does not replicate is not an answer. A
			// repair of it goes into that hint, which would not replace
			// a corrupt one of its own data: not ErrCorruptReplica.
			hint, err := r.hints.Hint(req.HintFor, req.Key)
			if err != nil {
				return nil, readError("read hint", err)
			}
			return &Response{Set: hint}, nil
		}
		if r.cfg.Replicates != nil && !r.cfg.Replicates(req.Key) {
			return nil, &CodedError{code: CodeNotReplica, Err: fmt.Errorf("%w: %s", ErrNotReplica, r.cfg.Self)}
		}
		set, err := r.store.Get(req.Key)
		if err != nil {
			return nil, readError("read", err)
		}
		return &Response{Set: set}, nil
	case KindMarkReapable:
		// Reaping is decided by anti-entropy's tombstone sweeps, which
		// ask every node; no coordinator marks a tombstone any more.
		return nil, fmt.Errorf("%w: reapable marks are not taken from coordinators", ErrBadParam)
	}
	return nil, fmt.Errorf("%w: unknown request kind %d", ErrBadParam, req.Kind)
}

// checkPlausible refuses a set or context from the network (a merge:
// replication, read repair, a hint, a hint handed back; the context of an
// apply) that names a counter or write time no node could have issued by
// this replica's clock (version.Slack says why the bound holds for every
// real one, clock skew and restarts included). Stored, such a counter
// would freeze the key: every later write must issue a counter above it.
// Nothing is stored, and the code tells the coordinator why.
func (r *Replica) checkPlausible(what string, plausible func(time.Time) error) error {
	if err := plausible(r.clk.Now()); err != nil {
		return &CodedError{code: CodeImplausible, Err: fmt.Errorf("%w: %s: %w", ErrImplausible, what, err)}
	}
	return nil
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

// IncarnationStore is implemented by a Store that knows which life of the
// node's disk it is (store.Store.Incarnation).
type IncarnationStore interface {
	Incarnation() uint64
}

// ActorSep joins a node ID and the parts of the name dots are issued
// under. Node IDs may not contain it.
const ActorSep = "~"

// fallbackActor ends the name of the actor a node issues dots under as a
// fallback (see applyHinted).
const fallbackActor = "h"

// actor is the name this replica issues dots under. A version's context
// claims every earlier dot of its issuer for the key as seen, which holds
// only while the issuer has its history, so the name changes whenever the
// history may be gone:
//
//   - it includes the store's incarnation (in base 36), which is new when
//     the node's disk was lost and its store started over: "n1~kv7tz8wyg";
//   - it then includes the store's actor epoch once the store replaced a
//     corrupt record, which may have held dots of this node that other
//     replicas still hold: "n1~kv7tz8wyg~1".
//
// It is read under the key's lock, which the store holds while it
// publishes a new epoch.
func (r *Replica) actor() string {
	name := r.cfg.Self
	if is, ok := r.store.(IncarnationStore); ok {
		name += ActorSep + strconv.FormatUint(is.Incarnation(), 36)
	}
	if es, ok := r.store.(EpochStore); ok {
		if e := es.ActorEpoch(); e > 0 {
			name += ActorSep + strconv.FormatUint(e, 10)
		}
	}
	return name
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
	if err := r.checkPlausible("apply", req.Write.Context.Plausible); err != nil {
		return nil, nil, err
	}
	floor, err := r.store.NextCounter()
	if err != nil {
		return nil, nil, &CodedError{code: CodeNotApplied, Err: fmt.Errorf("%w: apply: %w", ErrNotApplied, err)}
	}
	if req.HintFor != "" && req.HintFor != r.cfg.Self {
		resp, err := r.applyHinted(req, floor)
		return resp, nil, err
	}
	var dot version.Dot
	// cur is freshly decoded for this call, and Update builds new slices
	// rather than editing shared ones, so it is updated in place.
	set, _, wait, err := r.store.UpdateAsync(req.Key, func(cur version.Set) (version.Set, error) {
		d, err := cur.Update(r.write(req, cur, floor))
		dot = d
		return cur, err
	})
	if err != nil {
		if c := capCode(err); c != "" {
			return nil, nil, &CodedError{code: c, Err: err}
		}
		// UpdateAsync failed before the write became visible.
		return nil, nil, &CodedError{code: CodeNotApplied, Err: fmt.Errorf("%w: apply: %w", ErrNotApplied, err)}
	}
	return &Response{Set: set, Dot: dot, HintStored: true}, wait, nil
}

// write is the version.Write that applies req on top of cur.
func (r *Replica) write(req *Request, cur version.Set, floor uint64) version.Write {
	return version.Write{
		Node: r.actor(), Context: req.Write.Context,
		Value: req.Write.Value, ContentType: req.Write.ContentType, Deleted: req.Write.Deleted,
		WriteTime:    r.stamp(cur),
		CounterFloor: floor,
		LWW:          req.LWW, MaxSiblings: r.cfg.MaxSiblings, MaxBytes: r.cfg.MaxKeyBytes,
	}
}

// applyHinted issues a write as a fallback, because no primary could: on
// top of the hint it keeps for the primary it stands in for, and only
// there. The fallback keeps nothing of it in its own data (it does not
// replicate the key, and a row there would outlive the key's reaping);
// the node-wide dot counter, not a stored record, keeps the dot from being
// issued again. The primary gets the write by handoff. If the owner's hint
// budget has no room, nothing is kept and the write was not applied.
//
// The dot is issued under the node's fallback actor (its actor name and
// "~h") and detached (version.Write.Detached): the hint does not hold the
// node's other versions of the key, which it may have issued as a primary
// or on another hint, so the new version must not claim them as seen.
func (r *Replica) applyHinted(req *Request, floor uint64) (*Response, error) {
	cur, err := r.hints.Hint(req.HintFor, req.Key)
	if err != nil {
		return nil, &CodedError{code: CodeNotApplied, Err: fmt.Errorf("%w: apply: read hint: %w", ErrNotApplied, err)}
	}
	w := r.write(req, cur, floor)
	w.Node, w.Detached = w.Node+ActorSep+fallbackActor, true
	dot, err := cur.Update(w)
	if err != nil {
		if c := capCode(err); c != "" {
			return nil, &CodedError{code: c, Err: err}
		}
		return nil, &CodedError{code: CodeNotApplied, Err: fmt.Errorf("%w: apply: %w", ErrNotApplied, err)}
	}
	stored, err := r.hints.Store(req.HintFor, req.Partition, req.Key, cur)
	if err != nil {
		return nil, r.hintError(req.HintFor, err)
	}
	if !stored {
		return nil, &CodedError{code: CodeHintRefused, Err: fmt.Errorf("%w: %w: %s keeps no more hints for %s", ErrNotApplied, ErrHintRefused, r.cfg.Self, req.HintFor)}
	}
	return &Response{Set: cur, Dot: dot, HintStored: true}, nil
}

// refusal is implemented by a HintSink error for a hint the sink may not
// keep (handoff.RefusedError: the owner is not a member, or the node's
// hint budget is full).
type refusal interface {
	HintRefused() bool
}

// hintError codes an error of HintSink.Store. A refused hint and one too
// large to keep were certainly not applied: CodeHintRefused sends the
// coordinator to another fallback, CodeKeyTooLarge tells it the key must
// be resolved. Anything else is a storage failure, not coded.
func (r *Replica) hintError(owner string, err error) error {
	if rf := refusal(nil); errors.As(err, &rf) && rf.HintRefused() {
		return &CodedError{code: CodeHintRefused, Err: fmt.Errorf("%w: %w: %s keeps no hint for %s: %w", ErrNotApplied, ErrHintRefused, r.cfg.Self, owner, err)}
	}
	if c := capCode(err); c != "" {
		return &CodedError{code: c, Err: fmt.Errorf("%w: store hint: %w", ErrNotApplied, err)}
	}
	return fmt.Errorf("store hint: %w", err)
}

// capCode returns the code of a write refused by a per-key cap, "" for
// any other error.
func capCode(err error) string {
	switch {
	case errors.Is(err, version.ErrTooManySiblings):
		return CodeTooManySiblings
	case errors.Is(err, version.ErrTooLarge):
		return CodeKeyTooLarge
	}
	return ""
}

// Error codes carried across the transport.
const (
	CodeTooManySiblings = "too_many_siblings"
	// CodeKeyTooLarge carries ErrKeyTooLarge.
	CodeKeyTooLarge = "key_too_large"
	// CodeCorrupt carries ErrCorruptReplica.
	CodeCorrupt = "corrupt_record"
	// CodeNotApplied carries ErrNotApplied.
	CodeNotApplied = "not_applied"
	// CodeHintRefused carries ErrHintRefused (and ErrNotApplied): a
	// fallback kept nothing because its hint budget for the owner, or for
	// all owners, is full, or because the owner is not a member.
	CodeHintRefused = "hint_refused"
	// CodeNotReplica carries ErrNotReplica.
	CodeNotReplica = "not_replica"
	// CodeImplausible carries ErrImplausible.
	CodeImplausible = "implausible_version"
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
