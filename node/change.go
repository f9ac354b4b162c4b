package node

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"

	"github.com/quorumkv/quorumkv/gossip"
	"github.com/quorumkv/quorumkv/ring"
)

// Membership changes.
//
// Two rings route requests. The committed ring C is the layout register
// that gossip replicates (gossip.Layout): reads use it, and it changes
// only when a change completes. The target ring T is what the members'
// intents ask for (gossip.Meta.Intent: join, leave, remove; staged ones
// wait for a commit). While they differ, a change is in progress: a
// node whose replicas grow from C to T (a gainer) streams those
// partitions from their current replicas (handoff.Transfers), writes go
// to C's replicas and to the pending ones as well, with one more ack
// for each (quorum.PendingPlacement), and C is replaced by T once every
// member has done its part:
//
//  1. every required member advertises that it has seen the change
//     (Meta.Seen = the change's fingerprint): from then on every
//     coordinator writes to the pending replicas too;
//  2. each gainer streams its partitions, waits out writes that started
//     before step 1 (Config.TransferSettle), exchanges Merkle trees with
//     every source, and every member hands on its hints for nodes that
//     are leaving the ring; each then advertises Meta.Synced;
//  3. once every required member has Synced, any of them proposes T as
//     the next layout (the same proposal from each, so they agree), and
//     the members that left or were removed are tombstoned.
//
// The required members are those of C and T, except the ones being
// removed: a change waits for a member that is down until it returns or
// an operator removes it. computeChange is the pure part: from the
// layout and the member table it derives both rings, the fingerprint
// and what the change waits for.

// change is a membership change as computed from gossip. When C and T
// are equal no change is in progress.
type change struct {
	// C is the committed ring; T the target ring (C itself when equal).
	C, T *ring.Ring
	// Epoch is C's layout epoch.
	Epoch uint64
	// FP identifies the change: C's epoch and layout, T's layout. It is
	// what members advertise in Meta.Seen and Meta.Synced.
	FP uint64
	// Changing is set when T differs from C.
	Changing bool
	// Required lists, sorted, the members the change waits for.
	Required []string
	// NotSeen and NotSynced list the required members that have not yet
	// advertised FP as seen and as synced. With no change in progress,
	// NotSeen lists the members of C that have not seen the ring as it
	// stands.
	NotSeen, NotSynced []string
	// Removing lists the members of C that are not in T and whose intent
	// is remove (or that are tombstoned already); Leaving those whose
	// intent is leave.
	Removing, Leaving []string
	// Staged lists the members whose intent waits for a commit.
	Staged []gossip.Meta
	// TargetErr is set when the intents do not make a valid ring (two
	// members claim the same seed while a replacement spreads, or more
	// members than partitions); no change proceeds meanwhile.
	TargetErr error
}

// Ready reports whether every required member has seen the change.
func (ch change) Ready() bool { return ch.Changing && len(ch.NotSeen) == 0 }

// Complete reports whether every required member has done its part.
func (ch change) Complete() bool { return ch.Changing && len(ch.NotSynced) == 0 }

// intentOf returns a member's intent as it applies now: a staged intent
// is not in force, so a staged member of C stays (join) and a staged new
// member stays out ("").
func intentOf(m gossip.Meta, inC bool) string {
	in := m.Intent
	if in == "" {
		if !inC {
			// A new node whose operator fields have not arrived yet
			// (memberlist's node metadata leaves them out): it may be
			// staged, so it waits until they do.
			return ""
		}
		in = gossip.IntentJoin
	}
	if !m.Staged {
		return in
	}
	if inC {
		return gossip.IntentJoin
	}
	return ""
}

// layoutMembers converts a layout to ring members.
func layoutMembers(l gossip.Layout) []ring.Member {
	out := make([]ring.Member, len(l.Members))
	for i, m := range l.Members {
		out[i] = ring.Member{ID: m.ID, Joined: m.Joined, Seed: m.Seed}
	}
	return out
}

// ringMemo builds rings, handing back one it built lately for the same
// members: the membership loop recomputes the change on every tick and
// every gossip event, and the committed and target rings rarely differ
// from the last ones. Safe for concurrent use.
type ringMemo struct {
	cfg  ring.Config
	mu   sync.Mutex
	last [4]memoRing // most recently used first
}

type memoRing struct {
	members []ring.Member // sorted by ID
	r       *ring.Ring
}

func (m *ringMemo) build(members []ring.Member) (*ring.Ring, error) {
	key := slices.SortedFunc(slices.Values(members), func(a, b ring.Member) int { return strings.Compare(a.ID, b.ID) })
	m.mu.Lock()
	defer m.mu.Unlock()
	for i, e := range m.last {
		if e.r != nil && slices.Equal(e.members, key) {
			copy(m.last[1:i+1], m.last[:i])
			m.last[0] = e
			return e.r, nil
		}
	}
	r, err := ring.New(m.cfg, members)
	if err != nil {
		return nil, err
	}
	copy(m.last[1:], m.last[:len(m.last)-1])
	m.last[0] = memoRing{members: key, r: r}
	return r, nil
}

// computeChange derives the change in progress from the layout and the
// live (not tombstoned) members, building its rings with rings.
func computeChange(rings *ringMemo, l gossip.Layout, members []gossip.Meta) (change, error) {
	cm := layoutMembers(l)
	c, err := rings.build(cm)
	if err != nil {
		return change{}, fmt.Errorf("node: committed layout %d: %w", l.Epoch, err)
	}
	ch := change{C: c, T: c, Epoch: l.Epoch}
	inC := make(map[string]ring.Member, len(cm))
	for _, m := range cm {
		inC[m.ID] = m
	}
	live := make(map[string]gossip.Meta, len(members))
	var tm []ring.Member
	for _, m := range members {
		live[m.ID] = m
		cur, isC := inC[m.ID]
		if m.Staged {
			ch.Staged = append(ch.Staged, m)
		}
		switch intentOf(m, isC) {
		case gossip.IntentJoin:
			if isC {
				tm = append(tm, cur) // C's placement is authoritative
			} else {
				tm = append(tm, ring.Member{ID: m.ID, Joined: m.Joined, Seed: m.Seed})
			}
		case gossip.IntentLeave:
			if isC {
				ch.Leaving = append(ch.Leaving, m.ID)
			}
		case gossip.IntentRemove:
			if isC {
				ch.Removing = append(ch.Removing, m.ID)
			}
		}
	}
	for id := range inC {
		if _, ok := live[id]; !ok {
			ch.Removing = append(ch.Removing, id) // tombstoned already
		}
	}
	slices.Sort(ch.Removing)
	slices.Sort(ch.Leaving)
	if len(tm) == 0 {
		ch.TargetErr = fmt.Errorf("node: the intents leave no member in the ring")
	} else if t, err := rings.build(tm); err != nil {
		ch.TargetErr = fmt.Errorf("node: target ring: %w", err)
	} else if !t.Equal(c) {
		ch.T, ch.Changing = t, true
	}
	ch.FP = fingerprint(l.Epoch, c, ch.T)
	if !ch.Changing {
		// Who has not seen the ring as it stands: a member that left is
		// tombstoned only once every member holds the layout without it.
		for _, m := range c.Members() {
			if lm, ok := live[m.ID]; !ok || lm.Seen != ch.FP {
				ch.NotSeen = append(ch.NotSeen, m.ID)
			}
		}
		return ch, nil
	}
	for _, id := range unionIDs(c, ch.T) {
		if slices.Contains(ch.Removing, id) {
			continue
		}
		ch.Required = append(ch.Required, id)
		m, ok := live[id]
		if !ok || m.Seen != ch.FP {
			ch.NotSeen = append(ch.NotSeen, id)
		}
		if !ok || m.Synced != ch.FP {
			ch.NotSynced = append(ch.NotSynced, id)
		}
	}
	return ch, nil
}

// unionIDs returns the IDs of both rings' members, sorted.
func unionIDs(a, b *ring.Ring) []string {
	var ids []string
	for _, m := range a.Members() {
		ids = append(ids, m.ID)
	}
	for _, m := range b.Members() {
		if !a.Contains(m.ID) {
			ids = append(ids, m.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// fingerprint identifies a change: the committed epoch and both layouts.
// It is never 0, which members advertise before they saw any change.
func fingerprint(epoch uint64, c, t *ring.Ring) uint64 {
	var d xxhash.Digest
	d.Reset()
	var buf [8]byte
	_, _ = d.WriteString("quorumkv/change/v1\x00")
	for _, v := range []uint64{epoch, c.Version(), t.Version()} {
		binary.BigEndian.PutUint64(buf[:], v)
		_, _ = d.Write(buf[:])
	}
	return max(d.Sum64(), 1)
}

// nextLayout is the layout that completes ch: T's members, one epoch on.
func nextLayout(ch change) gossip.Layout {
	l := gossip.Layout{Epoch: ch.Epoch + 1}
	for _, m := range ch.T.Members() {
		l.Members = append(l.Members, gossip.LayoutMember{ID: m.ID, Joined: m.Joined, Seed: m.Seed})
	}
	slices.SortFunc(l.Members, func(a, b gossip.LayoutMember) int { return strings.Compare(a.ID, b.ID) })
	return l
}
