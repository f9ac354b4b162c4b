package handoff

import (
	"bytes"
	"errors"
	"fmt"
)

// ScanStore is what ServeScan needs of the store on the source side.
// Rows are ordered by key hash, then encoded key; fn must not retain the
// slices it gets, and an error from fn stops the scan and is returned as
// is.
type ScanStore interface {
	// Scan calls fn for every row whose hash is in [lo, hi].
	Scan(lo, hi uint64, fn func(hash uint64, k, setBytes []byte) error) error
	// ScanAfter calls fn for every row whose hash is at most hi and that
	// is strictly after (afterHash, afterKey), with lo ≤ afterHash.
	ScanAfter(lo, hi uint64, afterHash uint64, afterKey []byte, fn func(hash uint64, k, setBytes []byte) error) error
}

// errScanFull stops a scan once the batch's budget is spent.
var errScanFull = errors.New("handoff: scan batch full")

// ServeScan answers a ScanRequest from st: the source side of a
// transfer, which the node serves as an RPC. It reads cfg's Partitions,
// ServeMaxBytes and ServeMaxKeys only. The request's budgets are clamped
// to those caps (a budget of 0 or less asks for the cap); the response
// holds the rows after the cursor in row order, at least one if any is
// left, and stops before the row that would take it past the byte or key
// budget. A partition out of range or a cursor outside the partition is
// an ErrBadRequest. It is safe for concurrent use if st is.
func ServeScan(cfg TransferConfig, st ScanStore, req *ScanRequest) (*ScanResponse, error) {
	switch {
	case cfg.Partitions < 1 || cfg.Partitions > 1<<16 || cfg.Partitions&(cfg.Partitions-1) != 0:
		return nil, fmt.Errorf("%w: partitions %d", ErrConfig, cfg.Partitions)
	case cfg.ServeMaxBytes < 1 || cfg.ServeMaxKeys < 1:
		return nil, fmt.Errorf("%w: serve caps %d bytes, %d keys", ErrConfig, cfg.ServeMaxBytes, cfg.ServeMaxKeys)
	case req == nil:
		return nil, fmt.Errorf("%w: no request", ErrBadRequest)
	case req.Partition < 0 || req.Partition >= cfg.Partitions:
		return nil, fmt.Errorf("%w: partition %d not in [0, %d)", ErrBadRequest, req.Partition, cfg.Partitions)
	}
	lo, hi := cfg.PartitionRange(req.Partition)
	after := req.After
	if after.Started {
		if after.Hash < lo || after.Hash > hi {
			return nil, fmt.Errorf("%w: cursor hash %#x outside partition %d", ErrBadRequest, after.Hash, req.Partition)
		}
		if len(after.Key) > maxCursorKey {
			return nil, fmt.Errorf("%w: cursor key of %d bytes", ErrBadRequest, len(after.Key))
		}
	}
	maxBytes, maxKeys := cfg.ServeMaxBytes, cfg.ServeMaxKeys
	if req.MaxBytes > 0 {
		maxBytes = min(maxBytes, req.MaxBytes)
	}
	if req.MaxKeys > 0 {
		maxKeys = min(maxKeys, req.MaxKeys)
	}
	resp := &ScanResponse{}
	size := 0
	fn := func(hash uint64, k, set []byte) error {
		if !after.before(hash, k) {
			return nil // the cursor's own row, from a store that includes it
		}
		n := recordSize(k, set)
		if len(resp.Records) > 0 && (len(resp.Records) >= maxKeys || size+n > maxBytes) {
			return errScanFull
		}
		resp.Records = append(resp.Records, Record{Hash: hash, Key: bytes.Clone(k), Set: bytes.Clone(set)})
		size += n
		return nil
	}
	var err error
	if after.Started {
		err = st.ScanAfter(lo, hi, after.Hash, after.Key, fn)
	} else {
		err = st.Scan(lo, hi, fn)
	}
	switch {
	case errors.Is(err, errScanFull):
	case err != nil:
		return nil, fmt.Errorf("handoff: scan partition %d: %w", req.Partition, err)
	default:
		resp.Done = true
	}
	return resp, nil
}
