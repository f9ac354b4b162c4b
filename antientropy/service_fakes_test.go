package antientropy

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/transport"
	"github.com/quorumkv/quorumkv/version"
	"github.com/rs/zerolog"
)

// memStore is a tiny in-memory Store and Meta: rows ordered by (hash, key)
// in 65536 buckets by the hash's top 16 bits, canonical set bytes from the
// real store codec, OnWrite called under the store lock in commit order.
// Scan copies the matching rows first (a snapshot) and calls fn without
// the lock, so fn may write.
type memStore struct {
	hash    func([]byte) uint64
	onWrite func(h uint64, k, old, new []byte)

	mu      sync.Mutex // guards the fields below
	buckets map[uint64][]memRow
	rows    int
	meta    map[string][]byte
	scans   int // Scan calls
	failGet bool
	// reaped holds the memories of reaped keys (a context alone), as
	// store.Store keeps them: not data, but merged against.
	reaped map[string]version.Set
	// tooLarge holds keys whose merges are refused as store.Store refuses
	// one past its MaxMergeBytes.
	tooLarge map[string]bool
	// hints holds hints by owner, then key.
	hints map[string]map[string]version.Set
}

type memRow struct {
	hash      uint64
	key       []byte // never modified once stored
	set       []byte // never modified once stored
	reapAfter int64
}

func newMemStore() *memStore {
	return &memStore{hash: xxhash.Sum64, buckets: map[uint64][]memRow{}, meta: map[string][]byte{},
		reaped: map[string]version.Set{}, hints: map[string]map[string]version.Set{}}
}

func cmpRow(r memRow, hash uint64, key []byte) int {
	if c := cmp.Compare(r.hash, hash); c != 0 {
		return c
	}
	return bytes.Compare(r.key, key)
}

func (s *memStore) find(h uint64, k []byte) ([]memRow, int, bool) {
	b := s.buckets[h>>48]
	i, ok := slices.BinarySearchFunc(b, h, func(r memRow, h uint64) int { return cmpRow(r, h, k) })
	return b, i, ok
}

func (s *memStore) Scan(lo, hi uint64, fn func(hash uint64, k []byte, setBytes []byte) error) error {
	if lo > hi {
		return nil
	}
	s.mu.Lock()
	s.scans++
	// Take the whole snapshot first, so writes made by fn are not seen.
	var snap [][]memRow
	for b := lo >> 48; ; b++ {
		rows := s.buckets[b]
		i, _ := slices.BinarySearchFunc(rows, lo, func(r memRow, lo uint64) int { return cmp.Compare(r.hash, lo) })
		j, _ := slices.BinarySearchFunc(rows, hi, func(r memRow, hi uint64) int {
			if r.hash <= hi {
				return -1
			}
			return 1
		})
		if i < j {
			snap = append(snap, rows[i:j:j]) // rows are replaced, never edited in place
		}
		if b == hi>>48 {
			break
		}
	}
	s.mu.Unlock()
	for _, rows := range snap {
		for _, r := range rows {
			if err := fn(r.hash, r.key, r.set); err != nil {
				return err
			}
		}
	}
	return nil
}

// setLocked stores new bytes for k (nil deletes), calling onWrite. A
// bucket is copied on every change (copy-on-write), so the sub-slices a
// Scan snapshot holds never change. Holds s.mu.
func (s *memStore) setLocked(h uint64, k []byte, newBytes []byte) {
	b, i, ok := s.find(h, k)
	var old []byte
	if ok {
		old = b[i].set
	}
	switch {
	case newBytes == nil && ok:
		b = slices.Delete(slices.Clone(b), i, i+1)
		s.rows--
	case newBytes == nil:
	case ok:
		b = slices.Clone(b)
		b[i].set, b[i].reapAfter = newBytes, 0
	default:
		b = slices.Insert(slices.Clip(b), i, memRow{hash: h, key: bytes.Clone(k), set: newBytes})
		s.rows++
	}
	s.buckets[h>>48] = b
	if s.onWrite != nil && (old != nil || newBytes != nil) {
		s.onWrite(h, k, old, newBytes)
	}
}

func (s *memStore) getLocked(h uint64, k []byte) (version.Set, []byte) {
	b, i, ok := s.find(h, k)
	if !ok {
		return version.Set{}, nil
	}
	set, err := store.DecodeSet(b[i].set)
	if err != nil {
		panic(err)
	}
	return set, b[i].set
}

// Get returns k's set, or a reaped key's memory.
func (s *memStore) Get(k []byte) (version.Set, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	set, raw := s.getLocked(s.hash(k), k)
	if raw == nil {
		return s.reaped[string(k)].Clone(), nil
	}
	return set, nil
}

// get is Get for tests that know the key is readable.
func (s *memStore) get(k []byte) version.Set {
	set, _ := s.Get(k)
	return set
}

// Update applies fn to k's set. Like store.Store, an absent key that was
// reaped comes to fn as its memory, and a result with no sibling is kept
// as a memory, not as data.
func (s *memStore) Update(k []byte, fn func(cur version.Set) (version.Set, error)) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hash(k)
	cur, old := s.getLocked(h, k)
	mem, remembered := s.reaped[string(k)]
	if old == nil && remembered {
		cur = mem.Clone()
	}
	next, err := fn(cur.Clone())
	if err != nil {
		return false, err
	}
	if len(next.Siblings) == 0 {
		if next.Context.IsEmpty() || (remembered && next.Context.Equal(mem.Context)) {
			if old == nil {
				return false, nil
			}
		} else {
			s.reaped[string(k)] = version.Set{Context: next.Context.Clone()}
		}
		if old != nil {
			s.setLocked(h, k, nil)
		}
		return true, nil
	}
	nb := store.EncodeSet(next)
	if bytes.Equal(nb, old) {
		return false, nil
	}
	delete(s.reaped, string(k))
	s.setLocked(h, k, nb)
	return true, nil
}

// AddHint keeps a hint for owner (no budget).
func (s *memStore) AddHint(owner string, k []byte, set version.Set, _, _ int64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hints[owner] == nil {
		s.hints[owner] = map[string]version.Set{}
	}
	s.hints[owner][string(k)] = version.Sync(s.hints[owner][string(k)], set)
	return true, nil
}

// Discard implements Store.
func (s *memStore) Discard(k []byte, expect version.Set) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.hash(k)
	_, raw := s.getLocked(h, k)
	if raw == nil || !bytes.Equal(raw, store.EncodeSet(expect)) {
		return false, nil
	}
	s.setLocked(h, k, nil)
	return true, nil
}

// HintOwners implements Store.
func (s *memStore) HintOwners() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.hints))
	for o := range s.hints {
		out = append(out, o)
	}
	slices.Sort(out)
	return out
}

// Hint implements Store.
func (s *memStore) Hint(owner string, k []byte) (version.Set, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hints[owner][string(k)].Clone(), nil
}

// Merge merges in. Like store.Store, it heals a record whose set bytes do
// not decode by replacing them.
func (s *memStore) Merge(k []byte, in version.Set) (version.Set, bool, error) {
	s.mu.Lock()
	if s.tooLarge[string(k)] {
		s.mu.Unlock()
		return version.Set{}, false, &store.TooLargeError{Key: k, Bytes: 2, Limit: 1}
	}
	h := s.hash(k)
	if b, i, ok := s.find(h, k); ok {
		if _, err := store.DecodeSet(b[i].set); err != nil {
			s.setLocked(h, k, nil)
		}
	}
	s.mu.Unlock()
	var out version.Set
	changed, err := s.Update(k, func(cur version.Set) (version.Set, error) {
		out = version.Sync(cur, in)
		return out, nil
	})
	return out, changed, err
}

// forget deletes rows in [lo, hi] without tombstones: the replica never
// had them.
func (s *memStore) forget(lo, hi uint64) int {
	var victims []memRow
	_ = s.Scan(lo, hi, func(h uint64, k, _ []byte) error {
		victims = append(victims, memRow{hash: h, key: bytes.Clone(k)})
		return nil
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range victims {
		s.setLocked(v.hash, v.key, nil)
	}
	return len(victims)
}

func (s *memStore) MarkReapable(k []byte, expect version.Set, after time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, i, ok := s.find(s.hash(k), k)
	switch {
	case !ok:
		return store.ErrNotFound
	case !bytes.Equal(b[i].set, store.EncodeSet(expect)):
		return store.ErrChanged
	case !expect.Deleted():
		return store.ErrNotTombstone
	}
	b = slices.Clone(b)
	b[i].reapAfter = after.UnixNano()
	s.buckets[s.hash(k)>>48] = b
	return nil
}

func (s *memStore) reapAfter(k []byte) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, i, ok := s.find(s.hash(k), k)
	if !ok {
		return 0
	}
	return b[i].reapAfter
}

func (s *memStore) Reap(now time.Time, limit int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var victims []memRow
	for _, b := range s.buckets {
		for _, r := range b {
			if r.reapAfter != 0 && r.reapAfter <= now.UnixNano() {
				victims = append(victims, r)
			}
		}
	}
	slices.SortFunc(victims, func(a, b memRow) int { return cmpRow(a, b.hash, b.key) })
	if limit > 0 && len(victims) > limit {
		victims = victims[:limit]
	}
	for _, v := range victims {
		set, _ := s.getLocked(v.hash, v.key)
		s.reaped[string(v.key)] = version.Set{Context: set.Context}
		s.setLocked(v.hash, v.key, nil)
	}
	return len(victims), nil
}

func (s *memStore) PutMeta(name string, v []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.meta[name] = bytes.Clone(v)
	return nil
}

func (s *memStore) GetMeta(name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.meta[name]
	if !ok {
		return nil, store.ErrNotFound
	}
	return bytes.Clone(v), nil
}

func (s *memStore) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rows
}

// fakeRing puts every member in every partition's preference list, in a
// rotation starting at p mod members.
type fakeRing struct {
	q       int
	members []string
}

func (r *fakeRing) PartitionCount() int { return r.q }
func (r *fakeRing) Len() int            { return len(r.members) }

func (r *fakeRing) PartitionPreference(p, n int) ([]string, error) {
	if n < 1 || n > len(r.members) {
		return nil, fmt.Errorf("fake ring: n %d", n)
	}
	out := make([]string, 0, len(r.members))
	for i := range r.members {
		out = append(out, r.members[(p+i)%len(r.members)])
	}
	return out, nil
}

func (r *fakeRing) PartitionsFor(node string, n int) []int {
	var out []int
	for p := range r.q {
		prefs, _ := r.PartitionPreference(p, min(n, len(r.members)))
		if slices.Contains(prefs[:min(n, len(prefs))], node) {
			out = append(out, p)
		}
	}
	return out
}

var errUnreachable = errors.New("memnet: unreachable")

// memNet routes calls to services by address (the node ID), copying
// bodies like a transport.
type memNet struct {
	mu       sync.Mutex // guards the fields below
	services map[string]*Service
	down     map[string]bool
}

func newMemNet() *memNet {
	return &memNet{services: map[string]*Service{}, down: map[string]bool{}}
}

func (n *memNet) setDown(id string, down bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.down[id] = down
}

type memCaller struct {
	net  *memNet
	from string
}

func (c memCaller) CallNode(ctx context.Context, node, addr, method string, body []byte) ([]byte, error) {
	c.net.mu.Lock()
	svc, down := c.net.services[addr], c.net.down[addr] || c.net.down[c.from]
	c.net.mu.Unlock()
	if svc == nil || down {
		return nil, fmt.Errorf("%s: %w", addr, errUnreachable)
	}
	if node != addr { // test nodes listen at their IDs
		return nil, fmt.Errorf("%s answered for %s: %w", addr, node, transport.ErrWrongNode)
	}
	out, err := svc.HandleRPC(ctx, &transport.Request{From: c.from, Method: method, Body: bytes.Clone(body)})
	return bytes.Clone(out), err
}

// testNode is one replica of a test cluster.
type testNode struct {
	id  string
	st  *memStore
	svc *Service
}

// testCluster is a few services over memStores on a memNet, sharing a
// fake clock.
type testCluster struct {
	t     testing.TB
	clk   *clock.Fake
	net   *memNet
	ring  *fakeRing
	cfg   Config
	nodes map[string]*testNode
}

// testConfig is a small-tree config for tests.
func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Partitions = 4
	cfg.LeavesPerPartition = 64
	cfg.Fanout = 4
	cfg.BytesPerSecond = 0
	cfg.Interval = time.Second
	cfg.SweepInterval = time.Hour
	cfg.ReapInterval = time.Hour
	cfg.TombstoneGrace = time.Hour
	return cfg
}

func newTestCluster(t testing.TB, cfg Config, ids ...string) *testCluster {
	return newTestClusterWith(t, cfg, nil, ids...)
}

// newTestClusterWith starts the nodes over the given stores (new empty
// ones where missing).
func newTestClusterWith(t testing.TB, cfg Config, stores map[string]*memStore, ids ...string) *testCluster {
	c := &testCluster{
		t: t, clk: clock.NewFake(), net: newMemNet(),
		ring: &fakeRing{q: cfg.Partitions, members: ids},
		cfg:  cfg, nodes: map[string]*testNode{},
	}
	for _, id := range ids {
		st := stores[id]
		if st == nil {
			st = newMemStore()
		}
		c.addNode(id, st)
	}
	return c
}

// addNode starts a service for id over st (a restart when st is reused).
func (c *testCluster) addNode(id string, st *memStore) *testNode {
	c.t.Helper()
	cfg := c.cfg
	cfg.NodeID = id
	svc, err := New(cfg, Deps{
		Store: st, Meta: st, Ring: func() Ring { return c.ring },
		Caller: memCaller{net: c.net, from: id}, Clock: c.clk,
	}, zerolog.Nop())
	if err != nil {
		c.t.Fatal(err)
	}
	st.mu.Lock()
	st.onWrite = svc.forest.OnWrite
	st.mu.Unlock()
	if err := svc.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = svc.Close() })
	c.net.mu.Lock()
	c.net.services[id] = svc
	c.net.mu.Unlock()
	n := &testNode{id: id, st: st, svc: svc}
	c.nodes[id] = n
	return n
}

func (c *testCluster) node(id string) *testNode {
	n, ok := c.nodes[id]
	if !ok {
		c.t.Fatalf("no node %q", id)
	}
	return n
}

func testKey(name string) []byte { return store.EncodeKey([]byte("b"), []byte(name)) }

// write applies a client write of key on node. ctx=true reads first (an
// overwrite); false writes blind (a concurrent sibling).
func (c *testCluster) write(node, key, value string, deleted, withCtx bool) {
	c.t.Helper()
	n := c.node(node)
	_, err := n.st.Update(testKey(key), func(cur version.Set) (version.Set, error) {
		w := version.Write{Node: node, Value: []byte(value), Deleted: deleted, WriteTime: c.clk.Now().UnixNano()}
		if withCtx {
			w.Context = cur.Context
		}
		_, err := cur.Update(w)
		return cur, err
	})
	if err != nil {
		c.t.Fatal(err)
	}
}

// exchange runs node a's exchange of every partition with b.
func (c *testCluster) exchange(a, b string) Report {
	c.t.Helper()
	var rep Report
	for p := range c.cfg.Partitions {
		r, err := c.node(a).svc.exchangeWith(context.Background(), p, b)
		if err != nil {
			c.t.Fatalf("exchange %s→%s partition %d: %v", a, b, p, err)
		}
		r.Partitions = 1
		rep.add(r)
	}
	return rep
}

// rootsEqual reports whether every partition's root matches on a and b.
func (c *testCluster) rootsEqual(a, b string) bool {
	for p := range c.cfg.Partitions {
		if c.node(a).svc.forest.Root(p) != c.node(b).svc.forest.Root(p) {
			return false
		}
	}
	return true
}

// putRaw stores raw set bytes for key, as a disk gone bad would leave them.
func (s *memStore) putRaw(k, set []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.setLocked(s.hash(k), k, set)
}
