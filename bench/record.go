package bench

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
)

// RecordContentType is the Content-Type the quorumkv driver stores records
// under.
const RecordContentType = "application/x-ycsb-record"

// recordMagic starts every encoded record; it doubles as the format version.
const recordMagic = 0xB1

// EncodeRecord appends the encoding of rec to dst and returns the extended
// slice. The encoding is canonical: one magic byte, the field count, then for
// every field in ascending name order its name and its value, each prefixed by
// its length. Counts and lengths are unsigned varints. Ten 100-byte fields
// with YCSB's "fieldN" names take 1,082 bytes.
func EncodeRecord(dst []byte, rec map[string][]byte) []byte {
	names := make([]string, 0, len(rec))
	for name := range rec {
		names = append(names, name)
	}
	slices.Sort(names)
	dst = append(dst, recordMagic)
	dst = binary.AppendUvarint(dst, uint64(len(names)))
	for _, name := range names {
		dst = binary.AppendUvarint(dst, uint64(len(name)))
		dst = append(dst, name...)
		v := rec[name]
		dst = binary.AppendUvarint(dst, uint64(len(v)))
		dst = append(dst, v...)
	}
	return dst
}

// DecodeRecord decodes a record written by EncodeRecord. It accepts only the
// canonical encoding (names strictly ascending, no trailing bytes), so
// DecodeRecord(b) succeeding implies EncodeRecord(nil, rec) equals b. The
// returned values alias b.
func DecodeRecord(b []byte) (map[string][]byte, error) {
	if len(b) == 0 || b[0] != recordMagic {
		return nil, fmt.Errorf("%w: bad magic", ErrBadRecord)
	}
	rest := b[1:]
	n, rest, err := readUvarint(rest)
	if err != nil {
		return nil, fmt.Errorf("%w: field count: %v", ErrBadRecord, err)
	}
	// Every field takes at least two bytes, which bounds the allocation a
	// hostile count can cause.
	if n > uint64(len(rest))/2 {
		return nil, fmt.Errorf("%w: %d fields in %d bytes", ErrBadRecord, n, len(rest))
	}
	rec := make(map[string][]byte, n)
	var prev []byte
	for i := uint64(0); i < n; i++ {
		var name, value []byte
		if name, rest, err = readChunk(rest); err != nil {
			return nil, fmt.Errorf("%w: field %d name: %v", ErrBadRecord, i, err)
		}
		if i > 0 && bytes.Compare(prev, name) >= 0 {
			return nil, fmt.Errorf("%w: field %q out of order", ErrBadRecord, name)
		}
		if value, rest, err = readChunk(rest); err != nil {
			return nil, fmt.Errorf("%w: field %q value: %v", ErrBadRecord, name, err)
		}
		rec[string(name)] = value
		prev = name
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadRecord, len(rest))
	}
	return rec, nil
}

func readUvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, fmt.Errorf("bad varint")
	}
	// Reject non-minimal varints so that the encoding stays canonical.
	if n > 1 && b[n-1] == 0 {
		return 0, nil, fmt.Errorf("non-minimal varint")
	}
	return v, b[n:], nil
}

func readChunk(b []byte) (chunk, rest []byte, err error) {
	n, rest, err := readUvarint(b)
	if err != nil {
		return nil, nil, err
	}
	if n > uint64(len(rest)) {
		return nil, nil, fmt.Errorf("length %d beyond the %d bytes left", n, len(rest))
	}
	return rest[:n:n], rest[n:], nil
}

// MergeRecords merges sibling records into one, field by field: a field
// present in one sibling keeps its value, and a field that siblings disagree
// on takes the greatest value in byte order. The result does not depend on
// the order of recs, and merging a record with itself changes nothing. The
// returned map is new; its values alias the inputs.
func MergeRecords(recs ...map[string][]byte) map[string][]byte {
	out := make(map[string][]byte)
	for _, rec := range recs {
		for name, v := range rec {
			if cur, ok := out[name]; !ok || bytes.Compare(v, cur) > 0 {
				out[name] = v
			}
		}
	}
	return out
}
