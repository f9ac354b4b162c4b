package quorum

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// Sentinel errors. Callers check them with errors.Is.
var (
	// ErrBadParam: a request parameter is malformed or out of range.
	ErrBadParam = errors.New("quorum: bad parameter")
	// ErrNotEnoughReplicas: fewer than R or W replicas answered in time.
	ErrNotEnoughReplicas = errors.New("quorum: not enough replicas")
	// ErrTooManySiblings: the write would exceed the sibling cap.
	ErrTooManySiblings = errors.New("quorum: too many siblings")
	// ErrKeyTooLarge: the write would leave siblings whose values add up
	// to more than the byte cap per key.
	ErrKeyTooLarge = errors.New("quorum: siblings too large")
	// ErrClosed: the coordinator is shut down.
	ErrClosed = errors.New("quorum: closed")
	// ErrCorruptReplica: the replica's stored record for the key does not
	// decode. A merge heals it, so a read repairs such a replica.
	ErrCorruptReplica = errors.New("quorum: replica holds a corrupt record")
	// ErrNotApplied: the replica certainly did not apply the request (it
	// never reached it, or the replica refused it before applying). Only
	// after such a failure does a write ask another replica to issue its
	// version: after any other failure the first may have applied it, and
	// a second issuer would give one client write two versions, which
	// meet as siblings.
	ErrNotApplied = errors.New("quorum: request not applied")
	// ErrHintRefused: a fallback kept nothing for the primary it stands
	// in for, because its hint budget for that primary is full. Its ack
	// does not count toward W; the write goes to the next fallback.
	ErrHintRefused = errors.New("quorum: hint refused")
	// ErrNotReplica: the node asked to read a key is not one of its
	// replicas by its own ring. Its answer does not count toward R.
	ErrNotReplica = errors.New("quorum: not a replica of the key")
	// ErrImplausible: a context or set names a counter or write time no
	// node could have issued yet (version.ErrImplausible). The replica
	// stored nothing; a write carrying it fails, since every replica
	// would refuse it alike.
	ErrImplausible = errors.New("quorum: implausible version")
)

// healableError is implemented by a store error for a record that does
// not decode and that a merge may replace (store.CorruptError).
type healableError interface {
	Healable() bool
}

// ParamError says which parameter is wrong and what it must be.
type ParamError struct {
	Param, Value, Reason string
}

func (e *ParamError) Error() string {
	return fmt.Sprintf("quorum: %s=%s is out of range: must be %s", e.Param, e.Value, e.Reason)
}

// Unwrap makes errors.Is(err, ErrBadParam) true.
func (e *ParamError) Unwrap() error { return ErrBadParam }

// QuorumError reports a request that did not reach its quorum.
type QuorumError struct {
	Op       string // "read" or "write"
	Needed   int
	Answered int
	// Replied names the replicas that answered; Failed maps the others
	// that were asked to why they did not count.
	Replied []string
	Failed  map[string]string
	// TimedOut is true when the deadline passed with replies still
	// outstanding.
	TimedOut bool
}

func (e *QuorumError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "quorum: %s needed %d replicas, %d answered", e.Op, e.Needed, e.Answered)
	if e.TimedOut {
		b.WriteString(" before the deadline")
	}
	if len(e.Failed) > 0 {
		keys := make([]string, 0, len(e.Failed))
		for k := range e.Failed {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString(" (")
		for i, k := range keys {
			if i > 0 {
				b.WriteString("; ")
			}
			fmt.Fprintf(&b, "%s: %s", k, e.Failed[k])
		}
		b.WriteString(")")
	}
	return b.String()
}

// Unwrap makes errors.Is(err, ErrNotEnoughReplicas) true.
func (e *QuorumError) Unwrap() error { return ErrNotEnoughReplicas }
