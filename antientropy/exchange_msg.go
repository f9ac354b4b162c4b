package antientropy

import (
	"bytes"
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// RPC methods served by Service.HandleRPC. The node routes every method
// with MethodPrefix to it.
const (
	MethodPrefix   = "ae."
	MethodHashes   = "ae.hashes"   // hashes of tree nodes
	MethodLeafKeys = "ae.leafkeys" // (key hash, record hash) lists of leaves
	MethodFetch    = "ae.fetch"    // records by key hash
	MethodPush     = "ae.push"     // records to merge
	MethodHasTomb  = "ae.hastomb"  // may these tombstones be reaped, as far as the peer knows?
	MethodMarkReap = "ae.markreap" // every node confirmed these tombstones: mark them reapable
	// MethodPrioritize asks a replica to queue a partition for priority
	// anti-entropy (a fallback's hint budget overflowed).
	MethodPrioritize = "ae.prioritize"
)

// PrioritizeRequest names the partition to queue.
type PrioritizeRequest struct {
	Partition int `msgpack:"p"`
}

// Protocol limits: a request asking for more is refused with
// ErrBadRequest. Config's batch sizes must stay within them.
const (
	maxIndexPerCall  = 1 << 16
	maxLeavesPerCall = 1 << 14
	maxHashesPerCall = 1 << 16
	maxItemsPerCall  = 1 << 16
)

// Messages are msgpack arrays (as_array), so field names cost no bytes on
// the wire; field order is the format.

// HashesRequest asks for the hashes of nodes Index at level Level of
// partition Partition's tree.
type HashesRequest struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Shape     uint32
	Partition int
	Level     int
	Index     []uint32
}

// HashesResponse holds one hash per requested node, in request order.
type HashesResponse struct {
	_msgpack struct{} `msgpack:",as_array"`
	Hashes   []uint64
}

// LeafKeysRequest asks for the records of some leaves of a partition.
type LeafKeysRequest struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Shape     uint32
	Partition int
	Leaves    []uint32
}

// LeafList describes one leaf's records without their contents: parallel
// lists of key hashes and record hashes (RecordHash), in key-hash order.
type LeafList struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Hashes    []uint64
	KeyHashes []uint64
}

// LeafKeysResponse holds one LeafList per requested leaf, in request order.
type LeafKeysResponse struct {
	_msgpack struct{} `msgpack:",as_array"`
	Leaves   []LeafList
}

// FetchRequest asks for the records whose key hash is in Hashes. The
// responder leaves out keys the caller does not replicate.
type FetchRequest struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Shape     uint32
	Partition int
	Hashes    []uint64
}

// Record is one key's canonical set bytes.
type Record struct {
	_msgpack struct{} `msgpack:",as_array"`
	Hash     uint64
	Key      []byte
	Set      []byte
}

// FetchResponse holds the records of the first Served requested hashes;
// the caller asks again for the rest (replies are capped in bytes).
type FetchResponse struct {
	_msgpack struct{} `msgpack:",as_array"`
	Records  []Record
	Served   int
}

// PushRequest carries records for the responder to merge.
type PushRequest struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Shape     uint32
	Partition int
	Records   []Record
}

// PushResponse says, per pushed record, whether merging it changed the
// responder's state.
type PushResponse struct {
	_msgpack struct{} `msgpack:",as_array"`
	Changed  []bool
}

// HasTombRequest asks, for each item (a tombstone set), whether the
// responder knows of nothing that reaping it could bring back: as one of
// the key's replicas it holds the tombstones (or remembers reaping them),
// and no hint or stray record it keeps for the key holds a live version
// they do not supersede.
type HasTombRequest struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Shape     uint32
	Partition int
	Items     []Record
}

// HasTombResponse answers a HasTombRequest item by item.
type HasTombResponse struct {
	_msgpack struct{} `msgpack:",as_array"`
	Has      []bool
}

// MarkReapRequest tells a replica that every node confirmed the items'
// tombstone sets (HasTomb): it marks each record that still equals its
// item reapable at the item's reap time.
type MarkReapRequest struct {
	_msgpack  struct{} `msgpack:",as_array"`
	Shape     uint32
	Partition int
	Items     []Record
}

// MarkReapResponse says, per item, whether the record was marked.
type MarkReapResponse struct {
	_msgpack struct{} `msgpack:",as_array"`
	Marked   []bool
}

// Entry is one record of a leaf as the exchange compares it.
type Entry struct {
	Hash    uint64 // key hash
	KeyHash uint64 // RecordHash of key and set
}

// encodeMsg encodes a message with compact integers (a small index costs
// one byte, not five).
func encodeMsg(v any) []byte {
	var buf bytes.Buffer
	enc := msgpack.GetEncoder()
	enc.Reset(&buf)
	enc.UseCompactInts(true)
	err := enc.Encode(v)
	msgpack.PutEncoder(enc)
	if err != nil { // these structs always marshal
		panic(fmt.Sprintf("antientropy: encode %T: %v", v, err))
	}
	return buf.Bytes()
}

// decodeMsg decodes a peer's message, checking its lengths first (see
// checkMsgpack).
func decodeMsg(b []byte, v any) error {
	if err := checkMsgpack(b); err != nil {
		return fmt.Errorf("%w: decode %T: %v", ErrBadRequest, v, err)
	}
	if err := msgpack.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: decode %T: %v", ErrBadRequest, v, err)
	}
	return nil
}

func checkShape(s Shape, code uint32, p int) error {
	if code != s.code() {
		return fmt.Errorf("%w: peer %06x, local %06x", ErrShapeMismatch, code, s.code())
	}
	if p < 0 || p >= s.Partitions() {
		return fmt.Errorf("%w: partition %d", ErrBadRequest, p)
	}
	return nil
}

func (r *HashesRequest) validate(s Shape) error {
	if err := checkShape(s, r.Shape, r.Partition); err != nil {
		return err
	}
	if r.Level < 0 || r.Level >= s.Levels() {
		return fmt.Errorf("%w: level %d", ErrBadRequest, r.Level)
	}
	if len(r.Index) > maxIndexPerCall {
		return fmt.Errorf("%w: %d indices", ErrBadRequest, len(r.Index))
	}
	n := s.LevelSize(r.Level)
	for _, i := range r.Index {
		if int(i) >= n {
			return fmt.Errorf("%w: node %d at level %d", ErrBadRequest, i, r.Level)
		}
	}
	return nil
}

func (r *LeafKeysRequest) validate(s Shape) error {
	if err := checkShape(s, r.Shape, r.Partition); err != nil {
		return err
	}
	if len(r.Leaves) > maxLeavesPerCall {
		return fmt.Errorf("%w: %d leaves", ErrBadRequest, len(r.Leaves))
	}
	for _, i := range r.Leaves {
		if int(i) >= s.Leaves() {
			return fmt.Errorf("%w: leaf %d", ErrBadRequest, i)
		}
	}
	return nil
}

func checkHashes(s Shape, p int, hs []uint64) error {
	if len(hs) > maxHashesPerCall {
		return fmt.Errorf("%w: %d hashes", ErrBadRequest, len(hs))
	}
	for _, h := range hs {
		if s.Partition(h) != p {
			return fmt.Errorf("%w: hash %016x outside partition %d", ErrBadRequest, h, p)
		}
	}
	return nil
}

func checkRecords(s Shape, p int, rs []Record) error {
	if len(rs) > maxItemsPerCall {
		return fmt.Errorf("%w: %d records", ErrBadRequest, len(rs))
	}
	for _, r := range rs {
		if s.Partition(r.Hash) != p {
			return fmt.Errorf("%w: hash %016x outside partition %d", ErrBadRequest, r.Hash, p)
		}
		if len(r.Key) == 0 || r.Set == nil {
			return fmt.Errorf("%w: empty key or set", ErrBadRequest)
		}
	}
	return nil
}

func (r *FetchRequest) validate(s Shape) error {
	if err := checkShape(s, r.Shape, r.Partition); err != nil {
		return err
	}
	return checkHashes(s, r.Partition, r.Hashes)
}

func (r *PushRequest) validate(s Shape) error {
	if err := checkShape(s, r.Shape, r.Partition); err != nil {
		return err
	}
	return checkRecords(s, r.Partition, r.Records)
}

func (r *HasTombRequest) validate(s Shape) error {
	if err := checkShape(s, r.Shape, r.Partition); err != nil {
		return err
	}
	return checkRecords(s, r.Partition, r.Items)
}

func (r *MarkReapRequest) validate(s Shape) error {
	if err := checkShape(s, r.Shape, r.Partition); err != nil {
		return err
	}
	return checkRecords(s, r.Partition, r.Items)
}

// leafList packs entries for the wire.
func leafList(es []Entry) LeafList {
	l := LeafList{Hashes: make([]uint64, len(es)), KeyHashes: make([]uint64, len(es))}
	for i, e := range es {
		l.Hashes[i], l.KeyHashes[i] = e.Hash, e.KeyHash
	}
	return l
}

// entries unpacks a leaf list received from a peer, checking that its
// records belong to leaf i of partition p.
func (l LeafList) entries(s Shape, p, leaf int) ([]Entry, error) {
	if len(l.Hashes) != len(l.KeyHashes) {
		return nil, fmt.Errorf("%w: leaf list of %d hashes and %d record hashes", ErrProtocol, len(l.Hashes), len(l.KeyHashes))
	}
	out := make([]Entry, len(l.Hashes))
	for i, h := range l.Hashes {
		if s.Partition(h) != p || s.Leaf(h) != leaf {
			return nil, fmt.Errorf("%w: hash %016x outside leaf %d/%d", ErrProtocol, h, p, leaf)
		}
		out[i] = Entry{Hash: h, KeyHash: l.KeyHashes[i]}
	}
	return out, nil
}
