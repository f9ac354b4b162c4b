package handoff

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

var (
	_ ScanStore     = (*xferFakeStore)(nil)
	_ TransferStore = (*xferFakeStore)(nil)
	_ TransferStore = (*store.Store)(nil)
	_ Source        = (*xferFakeSource)(nil)
)

// xferFakeStore is a map-backed store with the real one's row order (key
// hash, then encoded key) and meta semantics. It serves as a source's
// store (ScanStore) and as the local one (TransferStore).
type xferFakeStore struct {
	// onMerge and onPutMeta, when set, run first; their error fails the
	// call.
	onMerge   func(k []byte) error
	onPutMeta func(name string) error

	mu     sync.Mutex
	rows   map[string]xferRow // by encoded key
	meta   map[string][]byte
	merges int
}

type xferRow struct {
	hash uint64
	key  []byte
	set  []byte // the store's encoding, or garbage planted by a test
}

func newXferFakeStore() *xferFakeStore {
	return &xferFakeStore{rows: map[string]xferRow{}, meta: map[string][]byte{}}
}

// put stores raw set bytes for k, as the row of hash.
func (s *xferFakeStore) put(hash uint64, k, set []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rows[string(k)] = xferRow{hash: hash, key: bytes.Clone(k), set: bytes.Clone(set)}
}

// sorted returns the rows with hash in [lo, hi], in row order.
func (s *xferFakeStore) sorted(lo, hi uint64) []xferRow {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []xferRow
	for _, r := range s.rows {
		if r.hash >= lo && r.hash <= hi {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b xferRow) int {
		return cmp.Or(cmp.Compare(a.hash, b.hash), bytes.Compare(a.key, b.key))
	})
	return out
}

func (s *xferFakeStore) Scan(lo, hi uint64, fn func(hash uint64, k, setBytes []byte) error) error {
	for _, r := range s.sorted(lo, hi) {
		if err := fn(r.hash, r.key, r.set); err != nil {
			return err
		}
	}
	return nil
}

func (s *xferFakeStore) ScanAfter(lo, hi uint64, afterHash uint64, afterKey []byte, fn func(hash uint64, k, setBytes []byte) error) error {
	c := Cursor{Started: true, Hash: afterHash, Key: afterKey}
	for _, r := range s.sorted(afterHash, hi) {
		if !c.before(r.hash, r.key) {
			continue
		}
		if err := fn(r.hash, r.key, r.set); err != nil {
			return err
		}
	}
	return nil
}

func (s *xferFakeStore) Merge(k []byte, in version.Set) (version.Set, bool, error) {
	if s.onMerge != nil {
		if err := s.onMerge(k); err != nil {
			return version.Set{}, false, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.merges++
	var cur version.Set
	if r, ok := s.rows[string(k)]; ok {
		var err error
		if cur, err = store.DecodeSet(r.set); err != nil {
			return version.Set{}, false, err
		}
	}
	next := version.Sync(cur, in)
	changed := !next.Equal(cur)
	s.rows[string(k)] = xferRow{hash: xxhash.Sum64(k), key: bytes.Clone(k), set: store.EncodeSet(next)}
	return next, changed, nil
}

func (s *xferFakeStore) PutMeta(name string, v []byte) error {
	if s.onPutMeta != nil {
		if err := s.onPutMeta(name); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta[name] = bytes.Clone(v)
	return nil
}

func (s *xferFakeStore) GetMeta(name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.meta[name]
	if !ok {
		return nil, fmt.Errorf("fake meta %q: %w", name, store.ErrNotFound)
	}
	return bytes.Clone(v), nil
}

// get returns k's decoded set and whether the row exists.
func (s *xferFakeStore) get(t testing.TB, k []byte) (version.Set, bool) {
	t.Helper()
	s.mu.Lock()
	r, ok := s.rows[string(k)]
	s.mu.Unlock()
	if !ok {
		return version.Set{}, false
	}
	set, err := store.DecodeSet(r.set)
	if err != nil {
		t.Fatalf("row %x: %v", k, err)
	}
	return set, true
}

// len returns the number of rows.
func (s *xferFakeStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.rows)
}

// xferFakeSource serves nodes' stores with ServeScan, each request and
// response round-tripped through msgpack as the node's RPC would.
type xferFakeSource struct {
	cfg TransferConfig
	// hook, when set, runs first on every call; a non-nil error fails the
	// call. It may block, honouring ctx.
	hook func(ctx context.Context, node string, req *ScanRequest) error

	mu    sync.Mutex
	nodes map[string]ScanStore
	down  map[string]error
	calls []xferCall
}

// xferCall is one Scan the fake served or refused.
type xferCall struct {
	node    string
	req     ScanRequest
	records int
	bytes   int
	err     error
}

func newXferFakeSource(cfg TransferConfig) *xferFakeSource {
	return &xferFakeSource{cfg: cfg, nodes: map[string]ScanStore{}, down: map[string]error{}}
}

func (f *xferFakeSource) add(node string, st ScanStore) {
	f.mu.Lock()
	f.nodes[node] = st
	f.mu.Unlock()
}

// setDown makes node's Scans fail with err (nil: answer again).
func (f *xferFakeSource) setDown(node string, err error) {
	f.mu.Lock()
	f.down[node] = err
	f.mu.Unlock()
}

func (f *xferFakeSource) Scan(ctx context.Context, node string, req *ScanRequest) (*ScanResponse, error) {
	var wire ScanRequest
	if err := roundTrip(req, &wire); err != nil {
		return nil, err
	}
	err := ctx.Err()
	if err == nil && f.hook != nil {
		err = f.hook(ctx, node, &wire)
	}
	f.mu.Lock()
	st, ok := f.nodes[node]
	if err == nil {
		err = f.down[node]
	}
	if err == nil && !ok {
		err = fmt.Errorf("no node %s", node)
	}
	f.mu.Unlock()
	var resp *ScanResponse
	if err == nil {
		resp, err = ServeScan(f.cfg, st, &wire)
	}
	call := xferCall{node: node, req: wire, err: err}
	var out ScanResponse
	if err == nil {
		if err = roundTrip(resp, &out); err != nil {
			return nil, err
		}
		call.records = len(out.Records)
		for _, r := range out.Records {
			call.bytes += recordSize(r.Key, r.Set)
		}
	}
	f.mu.Lock()
	f.calls = append(f.calls, call)
	f.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &out, nil
}

// served returns the calls that asked for partition p.
func (f *xferFakeSource) served(p int) []xferCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []xferCall
	for _, c := range f.calls {
		if c.req.Partition == p {
			out = append(out, c)
		}
	}
	return out
}

func roundTrip(in, out any) error {
	b, err := msgpack.Marshal(in)
	if err != nil {
		return err
	}
	return msgpack.Unmarshal(b, out)
}

// xferData is a source's data set: keys of bucket "b" spread over the
// partitions, each with a one-sibling set.
type xferData struct {
	cfg  TransferConfig
	keys map[int][][]byte // by partition, in row order
	sets map[string]version.Set
}

// newXferData writes n keys to st (with the store's hash) and returns
// them.
func newXferData(t testing.TB, cfg TransferConfig, st *xferFakeStore, n int) *xferData {
	t.Helper()
	d := &xferData{cfg: cfg, keys: map[int][][]byte{}, sets: map[string]version.Set{}}
	for i := range n {
		k := store.EncodeKey([]byte("b"), fmt.Appendf(nil, "key-%04d", i))
		set := hintSet(t, "n9", fmt.Sprintf("value-%04d", i)) // records of one size
		h := xxhash.Sum64(k)
		st.put(h, k, store.EncodeSet(set))
		d.sets[string(k)] = set
		p := d.partition(h)
		d.keys[p] = append(d.keys[p], k)
	}
	for p := range d.keys {
		slices.SortFunc(d.keys[p], func(a, b []byte) int {
			return cmp.Or(cmp.Compare(xxhash.Sum64(a), xxhash.Sum64(b)), bytes.Compare(a, b))
		})
	}
	return d
}

func (d *xferData) partition(h uint64) int {
	for p := range d.cfg.Partitions {
		if lo, hi := d.cfg.PartitionRange(p); h >= lo && h <= hi {
			return p
		}
	}
	panic("no partition")
}

// bytes returns the wire bytes of partition p's records.
func (d *xferData) bytes(p int) int {
	n := 0
	for _, k := range d.keys[p] {
		n += recordSize(k, store.EncodeSet(d.sets[string(k)]))
	}
	return n
}

// check verifies that local holds exactly the keys of partitions ps that
// keep accepts (nil: all), with the source's sets.
func (d *xferData) check(t testing.TB, local *xferFakeStore, keep func([]byte) bool, ps ...int) {
	t.Helper()
	want := 0
	for _, p := range ps {
		for _, k := range d.keys[p] {
			got, ok := local.get(t, k)
			if keep != nil && !keep(k) {
				if ok {
					t.Errorf("partition %d: %x merged but not kept", p, k)
				}
				continue
			}
			want++
			if !ok || !got.Equal(d.sets[string(k)]) {
				t.Errorf("partition %d: %x = %+v (present %v), want %+v", p, k, got, ok, d.sets[string(k)])
			}
		}
	}
	if n := local.len(); n != want {
		t.Errorf("local store holds %d rows, want %d", n, want)
	}
}
