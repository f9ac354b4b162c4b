package antientropy

import (
	"fmt"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/version"
)

// Store is what anti-entropy needs of the node's storage. *store.Store
// satisfies it.
type Store interface {
	Scanner
	// Merge syncs an incoming set into the stored one (version.Sync, never
	// a last-write-wins resolution) and reports whether the stored set
	// changed.
	Merge(k []byte, in version.Set) (version.Set, bool, error)
	// MarkReapable records that the tombstone-only record k, if it still
	// equals expect, may be deleted from after on.
	MarkReapable(k []byte, expect version.Set, after time.Time) error
	// Reap deletes up to limit marked tombstones whose time has come.
	Reap(now time.Time, limit int) (int, error)
	// Get returns a key's set: its record, or for a reaped key a set with
	// no sibling and the reaped tombstones' context, or the zero Set.
	Get(k []byte) (version.Set, error)
	// HintOwners returns the owners this node keeps hints for, and Hint
	// the hint kept for owner's key k (the zero Set if none).
	HintOwners() []string
	Hint(owner string, k []byte) (version.Set, error)
	// AddHint durably keeps set as a hint for owner (limit <= 0: no
	// budget), and Discard deletes k's record if it still equals expect:
	// together they hand a record of a key this node does not replicate
	// to the key's replicas.
	AddHint(owner string, k []byte, set version.Set, limit, total int64) (bool, error)
	Discard(k []byte, expect version.Set) (bool, error)
}

// Meta persists small node-local values. *store.Store satisfies it.
type Meta interface {
	PutMeta(name string, v []byte) error
	// GetMeta returns the value, or an error when it is absent or
	// unreadable; anti-entropy treats both as "nothing stored" (the
	// values it keeps only order work).
	GetMeta(name string) ([]byte, error)
}

// Ring is what anti-entropy needs of the ring. *ring.Ring satisfies it.
type Ring interface {
	// PartitionCount is the number of partitions.
	PartitionCount() int
	// Len is the number of members.
	Len() int
	// PartitionPreference returns partition p's preference list: its n
	// primaries first.
	PartitionPreference(p, n int) ([]string, error)
	// PartitionsFor returns the partitions where node is among the first
	// n of the preference list.
	PartitionsFor(node string, n int) []int
}

// Deps are the Service's collaborators.
type Deps struct {
	// Store holds the data. Required.
	Store Store
	// Meta persists the prioritized partitions. nil: not persisted.
	Meta Meta
	// Ring returns the current ring (the node passes a function loading
	// its ring.Holder). A nil Ring (a node that knows no ring yet) is a
	// ring without members: nothing is exchanged. Required.
	Ring func() Ring
	// Caller sends ae.* requests to other nodes; transport.Transport
	// satisfies it. Required.
	Caller Caller
	// Resolve maps a node ID to the address Caller dials. nil: the ID is
	// the address.
	Resolve func(node string) (addr string, err error)
	// Clock times the loops, the rate limit and tombstone grace. nil:
	// clock.Real().
	Clock clock.Clock
	// Members returns every node that may hold a record of any key; a
	// tombstone is reaped only once each of them has it. During a
	// membership change that is both rings' members. nil: the ring's.
	Members func() []string
}

// emptyRing is the ring of a node that knows none yet: no members.
type emptyRing int

func (r emptyRing) PartitionCount() int { return int(r) }
func (emptyRing) Len() int              { return 0 }
func (emptyRing) PartitionPreference(p, n int) ([]string, error) {
	return nil, fmt.Errorf("%w: no ring yet", ErrNotReplica)
}
func (emptyRing) PartitionsFor(string, int) []int { return nil }
