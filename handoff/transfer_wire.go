package handoff

import (
	"bytes"
	"cmp"
	"context"
)

// Gain is a partition this node must fetch for a membership change, with
// the nodes that hold it now, best first.
type Gain struct {
	Partition int
	Sources   []string
}

// Source fetches one batch of a partition's records from a node: the
// node's answer to ServeScan. The node implements it with an RPC; tests
// with a fake. It is called from several goroutines and must honour ctx.
type Source interface {
	Scan(ctx context.Context, node string, req *ScanRequest) (*ScanResponse, error)
}

// Cursor is a position in a partition's rows, which are ordered by key
// hash, then encoded key. A scan after it returns the rows strictly
// greater than (Hash, Key). The zero Cursor (Started false) is the
// partition's start.
type Cursor struct {
	Started bool   `msgpack:"s"`
	Hash    uint64 `msgpack:"h"`
	Key     []byte `msgpack:"k"`
}

// ScanRequest asks a source for the rows of Partition after After, up to
// MaxBytes (counted as recordSize) and MaxKeys records. The source clamps
// both to its own caps; a budget of 0 or less asks for the caps.
type ScanRequest struct {
	Partition int    `msgpack:"p"`
	After     Cursor `msgpack:"a"`
	MaxBytes  int    `msgpack:"b"`
	MaxKeys   int    `msgpack:"n"`
}

// ScanResponse is one batch, in row order. Done means the partition has no
// row after the last record (or after the request's cursor, when Records
// is empty).
type ScanResponse struct {
	Records []Record `msgpack:"r"`
	Done    bool     `msgpack:"d"`
}

// Record is one row: its key hash, encoded key, and the store's encoded
// version set (store.EncodeSet), as the source holds them.
type Record struct {
	Hash uint64 `msgpack:"h"`
	Key  []byte `msgpack:"k"`
	Set  []byte `msgpack:"s"`
}

// recordOverhead bounds a record's framing on the wire: three msgpack
// headers, a uint64 and two byte-string headers.
const recordOverhead = 1 + 2 + 9 + 2 + 5 + 2 + 5

// recordSize is what a record costs against byte budgets and the rate
// limit.
func recordSize(key, set []byte) int { return len(key) + len(set) + recordOverhead }

// maxCursorKey bounds the key of a cursor a source accepts.
const maxCursorKey = 1 << 16

// before reports whether c is strictly before the row (hash, key).
func (c Cursor) before(hash uint64, key []byte) bool {
	if !c.Started {
		return true
	}
	return cmp.Or(cmp.Compare(hash, c.Hash), bytes.Compare(key, c.Key)) > 0
}
