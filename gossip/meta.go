package gossip

import (
	"cmp"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// Member states carried in Meta.State.
const (
	// StateUp is the state of a serving ring member.
	StateUp = "up"
	// StateUnavailable is a ring member that is alive but cannot serve
	// its replicas (its store failed): coordinators route around it, as
	// around a down node, until it advertises StateUp again. It keeps its
	// ring position.
	StateUnavailable = "unavailable"
	// StateRemoved marks a tombstone: the member was explicitly removed
	// from the ring and never comes back under the same ID.
	StateRemoved = "removed"
)

// Membership intents carried in Meta.Intent: what an operator wants of a
// member. Empty, as in entries persisted by older versions, reads as
// IntentJoin (Meta.MemberIntent).
const (
	// IntentJoin: the member is to be (or stay) in the ring.
	IntentJoin = "join"
	// IntentLeave: the member is to hand its data over and leave the ring.
	IntentLeave = "leave"
	// IntentRemove: the member is to be taken off the ring without
	// counting on its help, as for a member that is gone.
	IntentRemove = "remove"
)

// Field bounds for Meta. Together they keep the encoded node metadata (the
// node-owned fields: encodeMeta leaves the operator group out) under
// memberlist.MetaMaxSize (512 bytes); TestMetaSizeBound checks the worst
// case. Seed shares MaxIDLen, being a member ID.
const (
	MaxIDLen      = 64
	MaxClusterLen = 64
	MaxAddrLen    = 96
	MaxStateLen   = 16
)

// metaFormat is the first byte of encoded node metadata.
const metaFormat byte = 1

// Meta is a member table entry: what a node tells the cluster about itself,
// and what operators want of it.
//
// Its fields form two groups that merge independently. The node-owned
// fields (addresses, State, Seen, Synced) change only on the node itself
// (UpdateMeta) or by a tombstone (Remove), and are ordered by a version the
// table keeps beside the Meta. The operator-owned group (Intent, Staged,
// Seed, ordered by IntentVer) may be set on any node for any member
// (SetIntent), the member itself included, and the copy with the higher
// IntentVer wins wherever it arrives. Joined keeps the earliest value any
// copy holds. A tombstone beats everything.
//
// The whole entry travels in member broadcasts and in the push-pull state.
// memberlist node metadata (msgpack with a format byte, bounded by
// memberlist.MetaMaxSize) carries the node-owned fields only.
type Meta struct {
	// ID names the node; it is also the memberlist node name.
	ID string `msgpack:"id" json:"id"`
	// Cluster names the cluster; nodes of another cluster are rejected.
	Cluster string `msgpack:"cluster" json:"cluster"`
	// HTTPAddr is the client API address.
	HTTPAddr string `msgpack:"http" json:"http_addr"`
	// RPCAddr is the node-to-node RPC address.
	RPCAddr string `msgpack:"rpc" json:"rpc_addr"`
	// GossipAddr is the address other nodes reach this node's gossip at
	// (Gossip fills it in), so that a node can rejoin a member that
	// memberlist forgot after a long partition (Rejoin).
	GossipAddr string `msgpack:"gossip" json:"gossip_addr"`
	// Joined is the node's first-start time in unix nanoseconds; it orders
	// ring claims and survives restarts.
	Joined int64 `msgpack:"joined" json:"joined"`
	// State is StateUp, StateUnavailable, or StateRemoved for a
	// tombstone.
	State string `msgpack:"state" json:"state"`
	// Seen is a fingerprint of the membership change the node has seen
	// (0: none). Node-owned; set through UpdateMeta.
	Seen uint64 `msgpack:"seen,omitempty" json:"seen,omitempty"`
	// Synced is a fingerprint of the membership change the node has
	// finished its part of (0: none). Node-owned; set through UpdateMeta.
	Synced uint64 `msgpack:"synced,omitempty" json:"synced,omitempty"`

	// Intent is IntentJoin, IntentLeave or IntentRemove; empty (an entry
	// from an older version) reads as IntentJoin. Operator-owned.
	Intent string `msgpack:"intent,omitempty" json:"intent,omitempty"`
	// Staged means the intent waits for an operator's commit.
	// Operator-owned.
	Staged bool `msgpack:"staged,omitempty" json:"staged,omitempty"`
	// Seed is the name the ring hashes for this member; empty means the
	// ID (Meta.RingSeed). A replacement node takes the seed of the node it
	// replaces. At most MaxIDLen bytes. Operator-owned.
	Seed string `msgpack:"seed,omitempty" json:"seed,omitempty"`
	// IntentVer orders changes to Intent, Staged and Seed: the copy with
	// the higher one wins, whatever the node-owned version says. It is a
	// unix-nanosecond clock reading of the node that made the change, or
	// 0 for a node's own initial intent (Config.Meta), which anything
	// else wins over.
	IntentVer int64 `msgpack:"intent_ver,omitempty" json:"intent_ver,omitempty"`
}

// MemberIntent returns Intent, or IntentJoin if it is empty.
func (m Meta) MemberIntent() string {
	if m.Intent == "" {
		return IntentJoin
	}
	return m.Intent
}

// RingSeed returns Seed, or the ID if Seed is empty.
func (m Meta) RingSeed() string {
	if m.Seed == "" {
		return m.ID
	}
	return m.Seed
}

// Removed reports whether m is a tombstone.
func (m Meta) Removed() bool { return m.State == StateRemoved }

// Validate checks the field bounds.
func (m Meta) Validate() error {
	switch {
	case m.ID == "" || len(m.ID) > MaxIDLen:
		return fmt.Errorf("%w: id must be 1..%d bytes", ErrBadMeta, MaxIDLen)
	case m.Cluster == "" || len(m.Cluster) > MaxClusterLen:
		return fmt.Errorf("%w: cluster must be 1..%d bytes", ErrBadMeta, MaxClusterLen)
	case len(m.HTTPAddr) > MaxAddrLen || len(m.RPCAddr) > MaxAddrLen || len(m.GossipAddr) > MaxAddrLen:
		return fmt.Errorf("%w: addresses must be at most %d bytes", ErrBadMeta, MaxAddrLen)
	case m.State == "" || len(m.State) > MaxStateLen:
		return fmt.Errorf("%w: state must be 1..%d bytes", ErrBadMeta, MaxStateLen)
	case m.Joined < 0:
		return fmt.Errorf("%w: negative join time", ErrBadMeta)
	case !validIntent(m.Intent) && m.Intent != "":
		return fmt.Errorf("%w: unknown intent %q", ErrBadMeta, m.Intent)
	case len(m.Seed) > MaxIDLen:
		return fmt.Errorf("%w: seed must be at most %d bytes", ErrBadMeta, MaxIDLen)
	case m.IntentVer < 0:
		return fmt.Errorf("%w: negative intent version", ErrBadMeta)
	}
	return nil
}

// validIntent reports whether s is one of the Intent constants.
func validIntent(s string) bool {
	return s == IntentJoin || s == IntentLeave || s == IntentRemove
}

// opGroup is the operator-owned part of a Meta. Its zero value (no
// intent, from node metadata or an older version) is the least of all:
// it never replaces a group that was set.
type opGroup struct {
	Intent    string
	Staged    bool
	Seed      string
	IntentVer int64
}

func (m Meta) group() opGroup {
	return opGroup{Intent: m.Intent, Staged: m.Staged, Seed: m.Seed, IntentVer: m.IntentVer}
}

func (m *Meta) setGroup(g opGroup) {
	m.Intent, m.Staged, m.Seed, m.IntentVer = g.Intent, g.Staged, g.Seed, g.IntentVer
}

// supersedes reports whether a should replace b: the higher IntentVer
// wins, then a deterministic comparison of the content (a staged intent
// beats the same intent unstaged), so the order is strict and total and
// merging by "keep the maximum" is a join.
func (a opGroup) supersedes(b opGroup) bool {
	return cmp.Or(
		cmp.Compare(a.IntentVer, b.IntentVer),
		cmp.Compare(a.Intent, b.Intent),
		cmpBool(a.Staged, b.Staged),
		cmp.Compare(a.Seed, b.Seed),
	) > 0
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}

// versioned is a member table entry: a Meta plus the version that orders
// updates to its node-owned fields. Ver is unix nanoseconds from the clock
// of whoever made the change (the node itself, or the node that removed
// it); entries restored from disk carry Ver 0 so anything learned from
// gossip supersedes them. The operator group carries its own version,
// Meta.IntentVer, which is persisted.
type versioned struct {
	Meta Meta
	Ver  int64
}

// supersedes reports whether a's node-owned fields should replace b's: a
// tombstone beats any live entry, then the higher version wins, then a
// deterministic tie-break on content. It is a strict total order on the
// node-owned fields; between two tombstones, which replace the entry
// whole, the operator group breaks a remaining tie, so that it is a strict
// total order on tombstones differing in more than their join time. The
// join time is not compared: the table keeps the earliest one whatever
// entry wins (merge).
func (a versioned) supersedes(b versioned) bool {
	if a.Meta.Removed() != b.Meta.Removed() {
		return a.Meta.Removed()
	}
	if a.Ver != b.Ver {
		return a.Ver > b.Ver
	}
	if c := compareMeta(a.Meta, b.Meta); c != 0 || !a.Meta.Removed() {
		return c > 0
	}
	return a.Meta.group().supersedes(b.Meta.group())
}

// compareMeta compares the node-owned fields but the join time.
func compareMeta(a, b Meta) int {
	return cmp.Or(
		cmp.Compare(a.ID, b.ID),
		cmp.Compare(a.Cluster, b.Cluster),
		cmp.Compare(a.State, b.State),
		cmp.Compare(a.HTTPAddr, b.HTTPAddr),
		cmp.Compare(a.RPCAddr, b.RPCAddr),
		cmp.Compare(a.GossipAddr, b.GossipAddr),
		cmp.Compare(a.Seen, b.Seen),
		cmp.Compare(a.Synced, b.Synced),
	)
}

// merge returns the join of two copies of one member's entry (the local
// node's own entry aside: table.mergeMember). If either is a tombstone,
// the greater tombstone wins whole. Between live copies, the node-owned
// fields come from the copy whose versioned supersedes the other, the
// operator group from the copy whose group supersedes the other, and the
// join time is the earliest either holds. Each part is a join of its own,
// so merge is commutative, associative and idempotent; the result depends
// only on the set of copies merged.
func merge(a, b versioned) versioned {
	if a.Meta.Removed() || b.Meta.Removed() {
		out := a
		if b.supersedes(a) {
			out = b
		}
		if !a.supersedes(b) && !b.supersedes(a) { // equal but for the join time
			out.Meta.Joined = minJoined(a.Meta.Joined, b.Meta.Joined)
		}
		return out
	}
	out := a
	if b.supersedes(a) {
		out = b
	}
	grp := a.Meta.group()
	if bg := b.Meta.group(); bg.supersedes(grp) {
		grp = bg
	}
	out.Meta.setGroup(grp)
	out.Meta.Joined = minJoined(a.Meta.Joined, b.Meta.Joined)
	return out
}

// metaWire is the compact wire form of a versioned Meta: short keys keep
// node metadata under 512 bytes, optional fields are omitted when zero, and
// a decoder skips keys it does not know and leaves missing ones zero, so
// every version reads every other's entries. Node metadata leaves the
// operator group out (encodeMeta); member broadcasts and the push-pull
// state carry it.
type metaWire struct {
	ID       string `msgpack:"i"`
	Cluster  string `msgpack:"c"`
	HTTPAddr string `msgpack:"h"`
	RPCAddr  string `msgpack:"r"`
	Gossip   string `msgpack:"g,omitempty"`
	Joined   int64  `msgpack:"j"`
	State    string `msgpack:"s"`
	Ver      int64  `msgpack:"v"`
	Seen     uint64 `msgpack:"e,omitempty"`
	Synced   uint64 `msgpack:"y,omitempty"`

	Intent    string `msgpack:"n,omitempty"`
	Staged    bool   `msgpack:"t,omitempty"`
	Seed      string `msgpack:"d,omitempty"`
	IntentVer int64  `msgpack:"w,omitempty"`
}

func toWire(v versioned) metaWire {
	m := v.Meta
	return metaWire{
		ID: m.ID, Cluster: m.Cluster, HTTPAddr: m.HTTPAddr, RPCAddr: m.RPCAddr,
		Gossip: m.GossipAddr, Joined: m.Joined, State: m.State, Ver: v.Ver,
		Seen: m.Seen, Synced: m.Synced,
		Intent: m.Intent, Staged: m.Staged, Seed: m.Seed, IntentVer: m.IntentVer,
	}
}

func (w metaWire) versioned() (versioned, error) {
	v := versioned{
		Meta: Meta{
			ID: w.ID, Cluster: w.Cluster, HTTPAddr: w.HTTPAddr, RPCAddr: w.RPCAddr,
			GossipAddr: w.Gossip, Joined: w.Joined, State: w.State,
			Seen: w.Seen, Synced: w.Synced,
			Intent: w.Intent, Staged: w.Staged, Seed: w.Seed, IntentVer: w.IntentVer,
		},
		Ver: w.Ver,
	}
	if err := v.Meta.Validate(); err != nil {
		return versioned{}, err
	}
	if v.Ver < 0 {
		return versioned{}, fmt.Errorf("%w: negative version", ErrBadMeta)
	}
	return v, nil
}

// nodeOwned returns v without its operator group, as node metadata
// carries it. The zero group is the least, so merging the result never
// changes a group.
func nodeOwned(v versioned) versioned {
	v.Meta.setGroup(opGroup{})
	return v
}

// encodeMeta validates v and renders its node-owned fields as memberlist
// node metadata. The operator group is left out: with it the worst case
// (about 590 bytes) would exceed memberlist.MetaMaxSize, and it travels
// whole in member broadcasts and push-pull state.
func encodeMeta(v versioned) ([]byte, error) {
	if err := v.Meta.Validate(); err != nil {
		return nil, err
	}
	b, err := marshal(metaFormat, toWire(nodeOwned(v)))
	if err != nil {
		return nil, err
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrMetaTooLarge, len(b))
	}
	return b, nil
}

// decodeMeta parses and validates memberlist node metadata. An operator
// group found there is dropped: node metadata does not carry one (the
// sender's group is not necessarily the latest), and the zero group never
// replaces one in a merge.
func decodeMeta(b []byte) (versioned, error) {
	if len(b) > memberlist.MetaMaxSize {
		return versioned{}, fmt.Errorf("%w: %d bytes", ErrMetaTooLarge, len(b))
	}
	var w metaWire
	if err := unmarshal(b, metaFormat, &w); err != nil {
		return versioned{}, fmt.Errorf("%w: %v", ErrBadMeta, err)
	}
	v, err := w.versioned()
	if err != nil {
		return versioned{}, err
	}
	return nodeOwned(v), nil
}

// DecodeMeta parses node metadata as found in memberlist.Node.Meta. It
// holds the node-owned fields only: the operator group (Intent, Staged,
// Seed, IntentVer) is zero; read the member table (Gossip.Member) for it.
func DecodeMeta(b []byte) (Meta, error) {
	v, err := decodeMeta(b)
	return v.Meta, err
}
