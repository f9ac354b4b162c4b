package store

import (
	"encoding/binary"
	"fmt"
)

// Row prefixes: the first byte of every pebble key this package writes.
const (
	prefixData byte = 'd' // 'd' ‖ be64(hash) ‖ k
	prefixHint byte = 'h' // 'h' ‖ owner ‖ 0x00 ‖ be64(hash) ‖ k
	prefixMeta byte = 'm' // 'm' ‖ name
	prefixReap byte = 'r' // 'r' ‖ be64(reapAfter) ‖ be64(hash) ‖ k
	// prefixForget indexes the memories of reaped keys by the time they
	// are forgotten: 'f' ‖ be64(forget) ‖ be64(hash) ‖ k.
	prefixForget byte = 'f'
	// prefixQuarantine keeps the raw bytes of data records and hints that
	// did not decode and were replaced or dropped: 'q' ‖ be64(unix nanos) ‖
	// the row they were found at (a data or a hint row).
	prefixQuarantine byte = 'q'
)

// quarantineRow returns 'q' ‖ be64(at) ‖ row.
func quarantineRow(at int64, row []byte) []byte {
	out := make([]byte, 0, 9+len(row))
	out = append(out, prefixQuarantine)
	out = binary.BigEndian.AppendUint64(out, uint64(at))
	return append(out, row...)
}

// EncodeKey encodes a user key (bucket, key) as
// uvarint(len(bucket)) ‖ bucket ‖ key. The result is what the ring hashes
// and what every Store method takes as k.
func EncodeKey(bucket, key []byte) []byte {
	out := make([]byte, 0, binary.MaxVarintLen64+len(bucket)+len(key))
	out = binary.AppendUvarint(out, uint64(len(bucket)))
	out = append(out, bucket...)
	return append(out, key...)
}

// DecodeKey splits an encoded key into bucket and key. The results alias k.
// A length prefix that is truncated, too long or not minimally encoded is an
// ErrBadKey: every (bucket, key) has exactly one encoding, hence one hash.
func DecodeKey(k []byte) (bucket, key []byte, err error) {
	l, n := binary.Uvarint(k)
	if n <= 0 {
		return nil, nil, fmt.Errorf("%w: bad length prefix", ErrBadKey)
	}
	if n != uvarintLen(l) {
		return nil, nil, fmt.Errorf("%w: length prefix not minimal", ErrBadKey)
	}
	rest := k[n:]
	if l > uint64(len(rest)) {
		return nil, nil, fmt.Errorf("%w: bucket length %d exceeds %d remaining bytes", ErrBadKey, l, len(rest))
	}
	return rest[:l:l], rest[l:], nil
}

func uvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// dataRow returns 'd' ‖ be64(hash) ‖ k.
func dataRow(hash uint64, k []byte) []byte {
	out := make([]byte, 0, 9+len(k))
	out = append(out, prefixData)
	out = binary.BigEndian.AppendUint64(out, hash)
	return append(out, k...)
}

// dataBound returns the smallest data row key with the given hash.
func dataBound(hash uint64) []byte {
	out := make([]byte, 0, 9)
	out = append(out, prefixData)
	return binary.BigEndian.AppendUint64(out, hash)
}

// parseDataRow splits a data row key into its hash and k (aliasing row).
func parseDataRow(row []byte) (uint64, []byte, bool) {
	if len(row) < 9 || row[0] != prefixData {
		return 0, nil, false
	}
	return binary.BigEndian.Uint64(row[1:9]), row[9:], true
}

// hintPrefix returns 'h' ‖ owner ‖ 0x00.
func hintPrefix(owner string) []byte {
	out := make([]byte, 0, len(owner)+2)
	out = append(out, prefixHint)
	out = append(out, owner...)
	return append(out, 0)
}

// hintRow returns 'h' ‖ owner ‖ 0x00 ‖ be64(hash) ‖ k.
func hintRow(owner string, hash uint64, k []byte) []byte {
	out := make([]byte, 0, len(owner)+10+len(k))
	out = append(out, hintPrefix(owner)...)
	out = binary.BigEndian.AppendUint64(out, hash)
	return append(out, k...)
}

// parseHintRow splits a hint row key into owner and k (k aliases row).
func parseHintRow(row []byte) (owner string, k []byte, ok bool) {
	if len(row) < 1 || row[0] != prefixHint {
		return "", nil, false
	}
	for i := 1; i < len(row); i++ {
		if row[i] == 0 {
			if i == 1 || len(row) < i+9 {
				return "", nil, false
			}
			return string(row[1:i]), row[i+9:], true
		}
	}
	return "", nil, false
}

// metaRow returns 'm' ‖ name.
func metaRow(name string) []byte {
	return append([]byte{prefixMeta}, name...)
}

// reapRow returns 'r' ‖ be64(after) ‖ be64(hash) ‖ k: the index entry that
// lets Reap find marked tombstones without scanning every record.
func reapRow(after int64, hash uint64, k []byte) []byte {
	out := make([]byte, 0, 17+len(k))
	out = append(out, prefixReap)
	out = binary.BigEndian.AppendUint64(out, uint64(after))
	out = binary.BigEndian.AppendUint64(out, hash)
	return append(out, k...)
}

// forgetRow returns 'f' ‖ be64(forget) ‖ be64(hash) ‖ k: the index entry
// that lets Reap find the memories of reaped keys that are due to go.
func forgetRow(forget int64, hash uint64, k []byte) []byte {
	row := reapRow(forget, hash, k)
	row[0] = prefixForget
	return row
}

// parseReapRow splits a reap or forget index key (k aliases row).
func parseReapRow(row []byte) (after int64, hash uint64, k []byte, ok bool) {
	if len(row) < 17 || (row[0] != prefixReap && row[0] != prefixForget) {
		return 0, 0, nil, false
	}
	return int64(binary.BigEndian.Uint64(row[1:9])), binary.BigEndian.Uint64(row[9:17]), row[17:], true
}

// validOwner reports whether owner can name a hint owner.
func validOwner(owner string) error {
	if owner == "" {
		return fmt.Errorf("%w: empty", ErrBadOwner)
	}
	for i := 0; i < len(owner); i++ {
		if owner[i] == 0 {
			return fmt.Errorf("%w: %q contains 0x00", ErrBadOwner, owner)
		}
	}
	return nil
}
