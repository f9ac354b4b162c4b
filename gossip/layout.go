package gossip

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// MaxLayoutMembers bounds the members of a Layout.
const MaxLayoutMembers = 1024

// LayoutMember is one member of the committed ring.
type LayoutMember struct {
	// ID is the member's ID (Meta.ID).
	ID string `msgpack:"id" json:"id"`
	// Joined is the member's join time, unix nanoseconds; it orders ring
	// claims. At least 0.
	Joined int64 `msgpack:"joined" json:"joined"`
	// Seed is the name the ring hashes for the member; empty means the
	// ID. At most MaxIDLen bytes.
	Seed string `msgpack:"seed,omitempty" json:"seed,omitempty"`
}

// RingSeed returns Seed, or the ID if Seed is empty.
func (m LayoutMember) RingSeed() string {
	if m.Seed == "" {
		return m.ID
	}
	return m.Seed
}

// Layout is the committed ring membership, a cluster-wide register: every
// node holds the one of highest precedence it has seen (Supersedes), and
// ProposeLayout, member messages and the push-pull state spread it.
type Layout struct {
	// Epoch numbers the layout; a commit proposes the held epoch plus one.
	// At least 1.
	Epoch uint64 `msgpack:"epoch" json:"epoch"`
	// Members are the ring members, sorted by ID, IDs unique; 1 to
	// MaxLayoutMembers of them.
	Members []LayoutMember `msgpack:"members" json:"members"`
}

// Validate checks the epoch, the number of members, their order and each
// member's fields. Errors wrap ErrBadLayout.
func (l Layout) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadLayout}, args...)...)
	}
	if l.Epoch < 1 {
		return bad("epoch must be at least 1")
	}
	if len(l.Members) < 1 || len(l.Members) > MaxLayoutMembers {
		return bad("%d members, want 1..%d", len(l.Members), MaxLayoutMembers)
	}
	for i, m := range l.Members {
		switch {
		case m.ID == "" || len(m.ID) > MaxIDLen:
			return bad("member %d: id must be 1..%d bytes", i, MaxIDLen)
		case len(m.Seed) > MaxIDLen:
			return bad("member %q: seed must be at most %d bytes", m.ID, MaxIDLen)
		case m.Joined < 0:
			return bad("member %q: negative join time", m.ID)
		case i > 0 && l.Members[i-1].ID >= m.ID:
			return bad("members not sorted by id or not unique at %q", m.ID)
		}
	}
	return nil
}

// Clone returns a deep copy of l.
func (l Layout) Clone() Layout {
	l.Members = slices.Clone(l.Members)
	return l
}

// Equal reports whether l and o hold the same epoch and members.
func (l Layout) Equal(o Layout) bool {
	return l.Epoch == o.Epoch && slices.Equal(l.Members, o.Members)
}

// Supersedes reports whether l takes precedence over o. It is a strict
// total order on distinct layouts, so every node keeps the greatest one
// it has seen and all converge whatever the order of delivery:
//
//  1. the higher Epoch wins;
//  2. then the one with more members;
//  3. then the larger 64-bit xxhash of a canonical encoding, and, should
//     two distinct layouts hash alike, that encoding compared bytewise.
//
// Rule 2 is there for a node whose disk was wiped: it bootstraps a layout
// of itself alone at epoch 1, which must never beat a real cluster's layout
// of the same epoch, as a hash comparison alone would let it do half the
// time. A real cluster's first layout has every founding member in it, so
// it wins; and an operator's commit raises the epoch anyway.
func (l Layout) Supersedes(o Layout) bool {
	if c := cmp.Or(
		cmp.Compare(l.Epoch, o.Epoch),
		cmp.Compare(len(l.Members), len(o.Members)),
	); c != 0 {
		return c > 0
	}
	lb, ob := l.canonical(), o.canonical()
	if c := cmp.Compare(xxhash.Sum64(lb), xxhash.Sum64(ob)); c != 0 {
		return c > 0
	}
	return bytes.Compare(lb, ob) > 0
}

// canonical is the encoding Supersedes hashes: the epoch, the member
// count, and per member its ID, join time and seed, integers big-endian
// and strings length-prefixed. Distinct layouts encode differently.
func (l Layout) canonical() []byte {
	n := 16
	for _, m := range l.Members {
		n += 16 + len(m.ID) + len(m.Seed)
	}
	b := make([]byte, 0, n)
	b = binary.BigEndian.AppendUint64(b, l.Epoch)
	b = binary.BigEndian.AppendUint64(b, uint64(len(l.Members)))
	for _, m := range l.Members {
		b = appendString(b, m.ID)
		b = binary.BigEndian.AppendUint64(b, uint64(m.Joined))
		b = appendString(b, m.Seed)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// String renders the layout briefly, for logs: "epoch 3: a b c".
func (l Layout) String() string {
	ids := make([]string, len(l.Members))
	for i, m := range l.Members {
		ids[i] = m.ID
	}
	return fmt.Sprintf("epoch %d: %s", l.Epoch, strings.Join(ids, " "))
}
