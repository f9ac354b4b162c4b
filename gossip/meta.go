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
	// StateRemoved marks a tombstone: the member was explicitly removed
	// from the ring and never comes back under the same ID.
	StateRemoved = "removed"
)

// Field bounds for Meta. Together they keep the encoded meta under
// memberlist.MetaMaxSize (512 bytes); TestMetaSizeBound checks the worst case.
const (
	MaxIDLen      = 64
	MaxClusterLen = 64
	MaxAddrLen    = 96
	MaxStateLen   = 16
)

// metaFormat is the first byte of encoded node metadata.
const metaFormat byte = 1

// Meta is what a node tells the cluster about itself. It travels as
// memberlist node metadata (msgpack with a format byte) and in the member
// table of the push-pull state.
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
	// State is StateUp, or StateRemoved for a tombstone.
	State string `msgpack:"state" json:"state"`
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
	}
	return nil
}

// versioned is a member table entry: a Meta plus the version that orders
// updates to it. Ver is unix nanoseconds from the clock of whoever made the
// change (the node itself, or the node that removed it); entries restored
// from disk carry Ver 0 so anything learned from gossip supersedes them.
type versioned struct {
	Meta Meta
	Ver  int64
}

// supersedes reports whether a should replace b in the member table. It is a
// strict total order on entries that differ in more than their join time,
// so merging by "keep the maximum" is commutative, associative and
// idempotent: a tombstone beats any live entry, then the higher version
// wins, then a deterministic tie-break on content. The join time is not
// compared: the table keeps the earliest one of a live member whatever
// entry wins (table.mergeMember).
func (a versioned) supersedes(b versioned) bool {
	if a.Meta.Removed() != b.Meta.Removed() {
		return a.Meta.Removed()
	}
	if a.Ver != b.Ver {
		return a.Ver > b.Ver
	}
	return compareMeta(a.Meta, b.Meta) > 0
}

func compareMeta(a, b Meta) int {
	return cmp.Or(
		cmp.Compare(a.ID, b.ID),
		cmp.Compare(a.Cluster, b.Cluster),
		cmp.Compare(a.State, b.State),
		cmp.Compare(a.HTTPAddr, b.HTTPAddr),
		cmp.Compare(a.RPCAddr, b.RPCAddr),
		cmp.Compare(a.GossipAddr, b.GossipAddr),
	)
}

// metaWire is the compact wire form of a versioned Meta (short keys keep
// node metadata well under 512 bytes; unknown keys are skipped on decode).
type metaWire struct {
	ID       string `msgpack:"i"`
	Cluster  string `msgpack:"c"`
	HTTPAddr string `msgpack:"h"`
	RPCAddr  string `msgpack:"r"`
	Gossip   string `msgpack:"g,omitempty"`
	Joined   int64  `msgpack:"j"`
	State    string `msgpack:"s"`
	Ver      int64  `msgpack:"v"`
}

func toWire(v versioned) metaWire {
	return metaWire{
		ID: v.Meta.ID, Cluster: v.Meta.Cluster, HTTPAddr: v.Meta.HTTPAddr,
		RPCAddr: v.Meta.RPCAddr, Gossip: v.Meta.GossipAddr, Joined: v.Meta.Joined, State: v.Meta.State,
		Ver: v.Ver,
	}
}

func (w metaWire) versioned() (versioned, error) {
	v := versioned{
		Meta: Meta{
			ID: w.ID, Cluster: w.Cluster, HTTPAddr: w.HTTPAddr,
			RPCAddr: w.RPCAddr, GossipAddr: w.Gossip, Joined: w.Joined, State: w.State,
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

// encodeMeta renders v as memberlist node metadata.
func encodeMeta(v versioned) ([]byte, error) {
	if err := v.Meta.Validate(); err != nil {
		return nil, err
	}
	b, err := marshal(metaFormat, toWire(v))
	if err != nil {
		return nil, err
	}
	if len(b) > memberlist.MetaMaxSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrMetaTooLarge, len(b))
	}
	return b, nil
}

// decodeMeta parses and validates memberlist node metadata.
func decodeMeta(b []byte) (versioned, error) {
	if len(b) > memberlist.MetaMaxSize {
		return versioned{}, fmt.Errorf("%w: %d bytes", ErrMetaTooLarge, len(b))
	}
	var w metaWire
	if err := unmarshal(b, metaFormat, &w); err != nil {
		return versioned{}, fmt.Errorf("%w: %v", ErrBadMeta, err)
	}
	return w.versioned()
}

// DecodeMeta parses node metadata as found in memberlist.Node.Meta.
func DecodeMeta(b []byte) (Meta, error) {
	v, err := decodeMeta(b)
	return v.Meta, err
}
