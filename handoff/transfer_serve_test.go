package handoff

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/store"
)

// serveRig is a source store with 200 keys over 4 partitions.
func serveRig(t testing.TB) (TransferConfig, *xferFakeStore, *xferData) {
	cfg := xferConfig()
	cfg.ServeMaxKeys, cfg.ServeMaxBytes = 50, 4000
	st := newXferFakeStore()
	return cfg, st, newXferData(t, cfg, st, 200)
}

// drain scans partition p to the end with req's budgets and returns the
// keys in order and the responses' sizes.
func drain(t *testing.T, cfg TransferConfig, st ScanStore, p int, maxBytes, maxKeys int) (keys [][]byte, sizes []int) {
	t.Helper()
	req := &ScanRequest{Partition: p, MaxBytes: maxBytes, MaxKeys: maxKeys}
	for range 10_000 {
		resp, err := ServeScan(cfg, st, req)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Records) == 0 && !resp.Done {
			t.Fatal("no progress")
		}
		sizes = append(sizes, len(resp.Records))
		for _, r := range resp.Records {
			keys = append(keys, r.Key)
		}
		if resp.Done {
			return keys, sizes
		}
		last := resp.Records[len(resp.Records)-1]
		req.After = Cursor{Started: true, Hash: last.Hash, Key: last.Key}
	}
	t.Fatal("scan did not end")
	return nil, nil
}

func TestServeScanBudgets(t *testing.T) {
	cfg, st, d := serveRig(t)
	want := d.keys[2]
	tests := []struct {
		name              string
		maxBytes, maxKeys int
		batch             int // records per full batch
	}{
		{"keys", 0, 7, 7},
		{"keys above the cap", 0, 1000, cfg.ServeMaxKeys},
		{"no budget: the caps", -1, 0, cfg.ServeMaxKeys},
		{"bytes smaller than a record: one each", 1, 0, 1},
		{"bytes for three records", 3 * recordSize(want[0], store.EncodeSet(d.sets[string(want[0])])), 0, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, sizes := drain(t, cfg, st, 2, tt.maxBytes, tt.maxKeys)
			if len(keys) != len(want) {
				t.Fatalf("%d keys, want %d", len(keys), len(want))
			}
			for i := range keys {
				if !bytes.Equal(keys[i], want[i]) {
					t.Fatalf("key %d = %x, want %x", i, keys[i], want[i])
				}
			}
			for i, n := range sizes[:len(sizes)-1] {
				if n != tt.batch {
					t.Fatalf("batch %d has %d records, want %d", i, n, tt.batch)
				}
			}
			if last := sizes[len(sizes)-1]; last < 1 || last > tt.batch {
				t.Fatalf("last batch has %d records", last)
			}
		})
	}
	// Past the last row: Done, nothing.
	last := want[len(want)-1]
	resp, err := ServeScan(cfg, st, &ScanRequest{Partition: 2, After: Cursor{Started: true, Hash: hashOf(last), Key: last}})
	if err != nil || !resp.Done || len(resp.Records) != 0 {
		t.Fatalf("after the last row: %+v, %v", resp, err)
	}
	// An empty partition is done at once.
	empty := newXferFakeStore()
	if resp, err := ServeScan(cfg, empty, &ScanRequest{Partition: 0}); err != nil || !resp.Done || len(resp.Records) != 0 {
		t.Fatalf("empty partition: %+v, %v", resp, err)
	}
}

func TestServeScanBadRequests(t *testing.T) {
	cfg, st, _ := serveRig(t)
	lo, hi := cfg.PartitionRange(1)
	for name, req := range map[string]*ScanRequest{
		"nil":                nil,
		"negative partition": {Partition: -1},
		"partition past Q":   {Partition: cfg.Partitions},
		"cursor below":       {Partition: 1, After: Cursor{Started: true, Hash: lo - 1}},
		"cursor above":       {Partition: 1, After: Cursor{Started: true, Hash: hi + 1}},
		"cursor key too big": {Partition: 1, After: Cursor{Started: true, Hash: lo, Key: make([]byte, maxCursorKey+1)}},
	} {
		if _, err := ServeScan(cfg, st, req); !errors.Is(err, ErrBadRequest) {
			t.Errorf("%s: %v, want ErrBadRequest", name, err)
		}
	}
	bad := cfg
	bad.Partitions = 3
	if _, err := ServeScan(bad, st, &ScanRequest{}); !errors.Is(err, ErrConfig) {
		t.Errorf("bad config: %v", err)
	}
	// A store failure is passed on.
	boom := errors.New("boom")
	if _, err := ServeScan(cfg, failingScan{boom}, &ScanRequest{Partition: 1}); !errors.Is(err, boom) {
		t.Errorf("store failure: %v", err)
	}
}

type failingScan struct{ err error }

func (f failingScan) Scan(lo, hi uint64, fn func(uint64, []byte, []byte) error) error { return f.err }
func (f failingScan) ScanAfter(lo, hi, ah uint64, ak []byte, fn func(uint64, []byte, []byte) error) error {
	return f.err
}

func hashOf(k []byte) uint64 { return xxhash.Sum64(k) }

// FuzzServeScan feeds arbitrary request bodies to ServeScan over a store
// of 200 keys: it answers or fails with ErrBadRequest, never panics, and
// an answer is the next rows of the partition after the cursor, within the
// budget, and Done exactly when they are all of them.
func FuzzServeScan(f *testing.F) {
	cfg, st, d := serveRig(f)
	k := d.keys[1][3]
	lo, hi := cfg.PartitionRange(1)
	for _, req := range []ScanRequest{
		{Partition: 1},
		{Partition: 1, MaxKeys: 3, MaxBytes: 100},
		{Partition: 1, After: Cursor{Started: true, Hash: hashOf(k), Key: k}, MaxKeys: 5},
		{Partition: 1, After: Cursor{Started: true, Hash: lo}},
		{Partition: 1, After: Cursor{Started: true, Hash: hi, Key: []byte{0xff}}},
		{Partition: 3, After: Cursor{Started: true, Hash: math.MaxUint64}},
		{Partition: 4},
	} {
		b, err := msgpack.Marshal(&req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x80})
	f.Add([]byte{0x84, 0xa1, 0x70, 0xd0, 0xff})
	f.Fuzz(func(t *testing.T, body []byte) {
		var req ScanRequest
		if err := msgpack.Unmarshal(body, &req); err != nil {
			return // the node's decoder refuses it before ServeScan
		}
		resp, err := ServeScan(cfg, st, &req)
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		lo, hi := cfg.PartitionRange(req.Partition)
		var rest []xferRow
		for _, r := range st.sorted(lo, hi) {
			if req.After.before(r.hash, r.key) {
				rest = append(rest, r)
			}
		}
		if len(resp.Records) > len(rest) || resp.Done != (len(resp.Records) == len(rest)) {
			t.Fatalf("%d records, done %v, of %d rows left", len(resp.Records), resp.Done, len(rest))
		}
		if len(rest) > 0 && len(resp.Records) == 0 {
			t.Fatal("no record while rows are left")
		}
		maxKeys, maxBytes := cfg.ServeMaxKeys, cfg.ServeMaxBytes
		if req.MaxKeys > 0 {
			maxKeys = min(maxKeys, req.MaxKeys)
		}
		if req.MaxBytes > 0 {
			maxBytes = min(maxBytes, req.MaxBytes)
		}
		size := 0
		for i, r := range resp.Records {
			if r.Hash != rest[i].hash || !bytes.Equal(r.Key, rest[i].key) || !bytes.Equal(r.Set, rest[i].set) {
				t.Fatalf("record %d is not the next row", i)
			}
			size += recordSize(r.Key, r.Set)
		}
		if len(resp.Records) > maxKeys || len(resp.Records) > 1 && size > maxBytes {
			t.Fatalf("%d records of %d bytes past the budget of %d, %d", len(resp.Records), size, maxKeys, maxBytes)
		}
		if err := checkResponse(&ScanRequest{Partition: req.Partition, After: req.After, MaxKeys: maxKeys}, resp, lo, hi); err != nil {
			t.Fatalf("the receiver refuses the answer: %v", err)
		}
	})
}

// FuzzScanResponse feeds arbitrary response bodies to the receiving side:
// checkResponse and the merge never panic, and what they accept merges
// only records of the partition, in order.
func FuzzScanResponse(f *testing.F) {
	cfg, st, d := serveRig(f)
	for _, p := range []int{0, 1} {
		resp, err := ServeScan(cfg, st, &ScanRequest{Partition: p, MaxKeys: 4})
		if err != nil {
			f.Fatal(err)
		}
		b, err := msgpack.Marshal(resp)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	k := d.keys[1][0]
	bad, _ := msgpack.Marshal(&ScanResponse{Records: []Record{{Hash: hashOf(k), Key: k, Set: []byte{1, 0x80}}, {Hash: hashOf(k), Key: k}}})
	f.Add(bad)
	f.Add([]byte{0x81, 0xa1, 0x64, 0xc2})
	f.Fuzz(func(t *testing.T, body []byte) {
		var resp ScanResponse
		if err := msgpack.Unmarshal(body, &resp); err != nil {
			return
		}
		req := &ScanRequest{Partition: 1, MaxKeys: 64}
		lo, hi := cfg.PartitionRange(1)
		if err := checkResponse(req, &resp, lo, hi); err != nil {
			if !errors.Is(err, ErrBadResponse) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		local := newXferFakeStore()
		tr := &Transfers{st: local}
		var b batch
		if err := tr.mergeBatch(resp.Records, nil, &b); err != nil {
			t.Fatal(err)
		}
		if b.keys != int64(len(resp.Records)) || b.merged+b.undecodable+b.skipped != b.keys {
			t.Fatalf("batch counts %+v for %d records", b, len(resp.Records))
		}
	})
}

// FuzzDecodeProgress: persisted progress that does not decode is an error,
// never a panic, and what decodes encodes back to the same record.
func FuzzDecodeProgress(f *testing.F) {
	f.Add(encodeProgress(progress{}))
	f.Add(encodeProgress(progress{Plan: 9, After: Cursor{Started: true, Hash: 1 << 62, Key: []byte("k")}, Streamed: true, Done: true, Keys: 3, Bytes: 99}))
	f.Add([]byte{})
	f.Add([]byte{progressFormat})
	f.Add([]byte{2, 0x80})
	f.Add([]byte{progressFormat, 0x81, 0xa1, 0x6b, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		pr, err := decodeProgress(b)
		if err != nil {
			return
		}
		again, err := decodeProgress(encodeProgress(pr))
		if err != nil {
			t.Fatalf("re-decoding %+v: %v", pr, err)
		}
		if again.Plan != pr.Plan || again.After.Started != pr.After.Started || again.After.Hash != pr.After.Hash ||
			!bytes.Equal(again.After.Key, pr.After.Key) || again.Streamed != pr.Streamed || again.Done != pr.Done ||
			again.Keys != pr.Keys || again.Bytes != pr.Bytes || again.Skipped != pr.Skipped || again.Undecodable != pr.Undecodable {
			t.Fatalf("round trip %+v -> %+v", pr, again)
		}
	})
}

// A source that breaks the protocol is failed over like one that errs.
func TestCheckResponse(t *testing.T) {
	cfg, _, d := serveRig(t)
	lo, hi := cfg.PartitionRange(1)
	ks := d.keys[1]
	rec := func(i int) Record {
		return Record{Hash: hashOf(ks[i]), Key: ks[i], Set: store.EncodeSet(d.sets[string(ks[i])])}
	}
	other := d.keys[2][0]
	req := &ScanRequest{Partition: 1, MaxKeys: 3}
	for name, resp := range map[string]*ScanResponse{
		"nil":              nil,
		"no progress":      {},
		"too many":         {Records: []Record{rec(0), rec(1), rec(2), rec(3)}},
		"out of order":     {Records: []Record{rec(1), rec(0)}},
		"repeated":         {Records: []Record{rec(0), rec(0)}},
		"other partition":  {Records: []Record{{Hash: hashOf(other), Key: other}}},
		"before the start": {Records: []Record{{Hash: lo - 1, Key: ks[0]}}},
	} {
		if err := checkResponse(req, resp, lo, hi); !errors.Is(err, ErrBadResponse) {
			t.Errorf("%s: %v, want ErrBadResponse", name, err)
		}
	}
	after := &ScanRequest{Partition: 1, MaxKeys: 3, After: Cursor{Started: true, Hash: hashOf(ks[1]), Key: ks[1]}}
	if err := checkResponse(after, &ScanResponse{Records: []Record{rec(1)}}, lo, hi); !errors.Is(err, ErrBadResponse) {
		t.Errorf("the cursor's own row: %v", err)
	}
	if err := checkResponse(after, &ScanResponse{Records: []Record{rec(2), rec(3)}, Done: true}, lo, hi); err != nil {
		t.Errorf("a good answer: %v", err)
	}
	if err := checkResponse(after, &ScanResponse{Done: true}, lo, hi); err != nil {
		t.Errorf("done, nothing left: %v", err)
	}
}
