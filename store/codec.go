package store

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/quorumkv/quorumkv/version"
	"github.com/vmihailenco/msgpack/v5"
)

// Format bytes: the first byte of an encoded set and of a stored record.
const (
	setFormat    byte = 1
	recordFormat byte = 1
)

// EncodeSet returns the canonical encoding of s: a format byte, then msgpack
// of the set (the shape of version.Set's msgpack tags) with siblings sorted
// by dot, the context normalised (no zero vector entries, the cloud sorted,
// deduplicated and folded into the vector), the vector's keys sorted and
// integers in their shortest form. Two sets that are Equal encode to
// identical bytes, which is what lets replicas compare and hash them
// (anti-entropy hashes these bytes). The zero Set encodes too; it is not
// nil.
func EncodeSet(s version.Set) []byte {
	c := canonicalSet(s)
	var buf bytes.Buffer
	buf.Grow(64 + 32*len(c.Siblings) + setValueBytes(c))
	buf.WriteByte(setFormat)
	enc := msgpack.GetEncoder()
	enc.Reset(&buf)
	err := c.EncodeMsgpack(enc) // sorted vector, compact integers
	msgpack.PutEncoder(enc)
	if err != nil { // writing to a bytes.Buffer does not fail
		panic(fmt.Sprintf("store: encoding a version.Set: %v", err))
	}
	return buf.Bytes()
}

func setValueBytes(s version.Set) int {
	n := 0
	for _, sib := range s.Siblings {
		n += len(sib.Value) + len(sib.ContentType)
	}
	return n
}

// canonicalSet returns s with sorted siblings and a normalised context. It
// copies only what it has to reorder; s is never modified.
func canonicalSet(s version.Set) version.Set {
	out := version.Set{Siblings: s.Siblings}
	if !slices.IsSortedFunc(s.Siblings, cmpSiblings) {
		out.Siblings = slices.Clone(s.Siblings)
		slices.SortStableFunc(out.Siblings, cmpSiblings)
	}
	// Merging into an empty context drops zero entries, sorts and
	// deduplicates the cloud and folds contiguous cloud dots into the
	// vector: the one representation of the set of dots it covers.
	out.Context.Merge(s.Context)
	return out
}

func cmpSiblings(a, b version.Sibling) int {
	switch {
	case a.Dot.Less(b.Dot):
		return -1
	case b.Dot.Less(a.Dot):
		return 1
	}
	return 0
}

// DecodeSet decodes EncodeSet's output. It rejects an unknown format byte
// (a *FormatError), malformed msgpack, trailing bytes, siblings that are
// not strictly sorted by dot or carry an empty node or zero counter, and
// contexts with empty node names or zero dots; all of these match
// ErrCorrupt. The context comes back normalised.
func DecodeSet(b []byte) (version.Set, error) {
	if len(b) == 0 {
		return version.Set{}, fmt.Errorf("%w: empty set encoding", ErrCorrupt)
	}
	if b[0] != setFormat {
		return version.Set{}, &FormatError{What: "set", Format: b[0]}
	}
	var s version.Set
	if err := unmarshalExact(b[1:], &s); err != nil {
		return version.Set{}, fmt.Errorf("%w: set: %v", ErrCorrupt, err)
	}
	for i, sib := range s.Siblings {
		if sib.Dot.Node == "" || sib.Dot.Counter == 0 {
			return version.Set{}, fmt.Errorf("%w: set: sibling with bad dot %v", ErrCorrupt, sib.Dot)
		}
		if i > 0 && !s.Siblings[i-1].Dot.Less(sib.Dot) {
			return version.Set{}, fmt.Errorf("%w: set: siblings not strictly sorted at %v", ErrCorrupt, sib.Dot)
		}
	}
	for n := range s.Context.VV {
		if n == "" {
			return version.Set{}, fmt.Errorf("%w: set: context names an empty node", ErrCorrupt)
		}
	}
	for _, d := range s.Context.Cloud {
		if d.Node == "" || d.Counter == 0 {
			return version.Set{}, fmt.Errorf("%w: set: context holds bad dot %v", ErrCorrupt, d)
		}
	}
	var ctx version.Context
	ctx.Merge(s.Context)
	s.Context = ctx
	return s, nil
}

// record is the value of a data row (and of a hint row): the canonical set
// bytes plus node-local metadata that is not part of them.
type record struct {
	// Set is EncodeSet's output.
	Set []byte `msgpack:"s"`
	// ReapAfter, in Unix nanoseconds, is when the record may be reaped; 0
	// means it is not known to be on every replica. Any write resets it.
	ReapAfter int64 `msgpack:"r,omitempty"`
	// Forget, in Unix nanoseconds, marks the record as the memory of a
	// reaped key (see Store.Reap): its Set holds no sibling, only the
	// context of the tombstones that were reaped, and the row is deleted
	// at Forget. Such a record is not data: scans pass over it, and reads
	// see an absent key with that context. 0 for every other record.
	Forget int64 `msgpack:"f,omitempty"`
}

// reaped reports whether r is the memory of a reaped key.
func (r record) reaped() bool { return r.Forget != 0 }

// encodeRecord returns a format byte followed by msgpack of r.
func encodeRecord(r record) []byte {
	var buf bytes.Buffer
	buf.Grow(16 + len(r.Set))
	buf.WriteByte(recordFormat)
	enc := msgpack.GetEncoder()
	enc.Reset(&buf)
	enc.UseCompactInts(true)
	err := enc.Encode(&r)
	msgpack.PutEncoder(enc)
	if err != nil { // a byte slice and an int always encode
		panic(fmt.Sprintf("store: encoding a record: %v", err))
	}
	return buf.Bytes()
}

// decodeRecord decodes encodeRecord's output. It checks the framing (format
// byte, msgpack, no trailing bytes, a non-empty set and a non-negative
// ReapAfter and Forget) but not the set bytes themselves; DecodeSet does
// that.
func decodeRecord(b []byte) (record, error) {
	if len(b) == 0 {
		return record{}, fmt.Errorf("%w: empty record", ErrCorrupt)
	}
	if b[0] != recordFormat {
		return record{}, &FormatError{What: "record", Format: b[0]}
	}
	var r record
	if err := unmarshalExact(b[1:], &r); err != nil {
		return record{}, fmt.Errorf("%w: record: %v", ErrCorrupt, err)
	}
	if len(r.Set) == 0 {
		return record{}, fmt.Errorf("%w: record without a set", ErrCorrupt)
	}
	if r.ReapAfter < 0 || r.Forget < 0 {
		return record{}, fmt.Errorf("%w: record with a negative reap or forget time", ErrCorrupt)
	}
	if r.ReapAfter != 0 && r.Forget != 0 {
		return record{}, fmt.Errorf("%w: a reaped key's memory marked reapable", ErrCorrupt)
	}
	return r, nil
}

// unmarshalExact decodes one msgpack value from b into v and fails if any
// bytes are left over. checkMsgpack vets the input first, so that no
// length prefix can make the decoder allocate more than the input
// justifies.
func unmarshalExact(b []byte, v any) error {
	if err := checkMsgpack(b); err != nil {
		return err
	}
	r := bytes.NewReader(b)
	dec := msgpack.GetDecoder()
	dec.Reset(r)
	err := dec.Decode(v)
	msgpack.PutDecoder(dec)
	if err != nil {
		return err
	}
	if r.Len() != 0 {
		return fmt.Errorf("%d trailing bytes", r.Len())
	}
	return nil
}
