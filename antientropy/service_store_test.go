package antientropy

import (
	"context"
	"fmt"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
	"github.com/rs/zerolog"
)

// realNode is a Service over the real store on an in-memory filesystem.
type realNode struct {
	st  *store.Store
	svc *Service
}

// TestWithRealStore runs exchanges, a tombstone sweep and reap, and a
// restart against store.Store (pebble on vfs.NewMem), wired as the node
// wires it: the store's OnWrite feeds the service.
func TestWithRealStore(t *testing.T) {
	clk := clock.NewFake()
	net := newMemNet()
	cfg := reapConfig()
	cfg.N = 2
	rg := &fakeRing{q: cfg.Partitions, members: []string{"a", "b"}}
	open := func(id string, fs vfs.FS) *realNode {
		n := &realNode{}
		scfg := store.DefaultConfig()
		scfg.Dir, scfg.FS, scfg.Sync, scfg.Clock = "/db", fs, false, clk
		scfg.OnWrite = func(ev store.WriteEvent) {
			if n.svc != nil {
				n.svc.OnWrite(ev)
			}
		}
		st, err := store.Open(scfg, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		c := cfg
		c.NodeID = id
		svc, err := New(c, Deps{Store: st, Meta: st, Ring: func() Ring { return rg }, Caller: memCaller{net, id}, Clock: clk}, zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		n.st, n.svc = st, svc
		if err := svc.Start(); err != nil {
			t.Fatal(err)
		}
		net.mu.Lock()
		net.services[id] = svc
		net.mu.Unlock()
		return n
	}
	closeNode := func(n *realNode) {
		if err := n.svc.Close(); err != nil {
			t.Fatal(err)
		}
		if err := n.st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	fsA, fsB := vfs.NewMem(), vfs.NewMem()
	a, b := open("a", fsA), open("b", fsB)
	defer func() { closeNode(a); closeNode(b) }()

	put := func(st *store.Store, node, key, value string, deleted bool) {
		_, _, err := st.Update(store.EncodeKey([]byte("b"), []byte(key)), func(cur version.Set) (version.Set, error) {
			_, err := cur.Update(version.Write{Node: node, Context: cur.Context, Value: []byte(value), Deleted: deleted, WriteTime: clk.Now().UnixNano()})
			return cur, err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 500 {
		put(a.st, "a", fmt.Sprintf("k%04d", i), "v", false)
	}
	for i := range 50 {
		put(b.st, "b", fmt.Sprintf("k%04d", i*7), "w", false)
	}
	put(a.st, "a", "gone", "x", false)
	rootsEqual := func() bool {
		for p := range cfg.Partitions {
			if a.svc.forest.Root(p) != b.svc.forest.Root(p) {
				return false
			}
		}
		return true
	}
	rep, err := a.svc.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !rootsEqual() || rep.KeysPushed != 501 || rep.KeysPulled != 50 {
		t.Fatalf("after exchange: roots equal %v, report %+v", rootsEqual(), rep)
	}
	// The trees kept by write events match trees rebuilt from the store.
	for _, n := range []*realNode{a, b} {
		if err := forestsEqual(n.svc.forest, rebuilt(t, n.svc.shape, n.st)); err != nil {
			t.Fatal(err)
		}
	}

	// Delete, exchange, sweep, reap: the store's Reap emits the write
	// event that clears the key from the tree.
	put(a.st, "a", "gone", "", true)
	if _, err := a.svc.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	k := store.EncodeKey([]byte("b"), []byte("gone"))
	p := a.svc.shape.Partition(xxhashKey(k))
	if rep, err := a.svc.Sweep(context.Background(), p); err != nil || rep.Marked != 1 || rep.Notified != 1 {
		t.Fatalf("sweep %+v %v; want a's mark and b told", rep, err)
	}
	clk.Advance(cfg.TombstoneGrace)
	for _, n := range []*realNode{a, b} {
		if got, err := n.svc.Reap(); err != nil || got != 1 {
			t.Fatalf("reaped %d, %v", got, err)
		}
		if set, err := n.st.Get(k); err != nil || len(set.Siblings) != 0 {
			t.Fatalf("after reap: %+v %v", set, err)
		}
	}
	if !rootsEqual() {
		t.Fatal("roots differ after reaping on both")
	}

	// Restart a: the priority queue persists in the store's meta, the
	// rebuilt trees equal the ones kept incrementally.
	a.svc.Prioritize(1)
	before := make([]uint64, cfg.Partitions)
	for p := range before {
		before[p] = a.svc.forest.Root(p)
	}
	closeNode(a)
	a = open("a", fsA)
	for p := range before {
		if a.svc.forest.Root(p) != before[p] {
			t.Fatalf("partition %d root changed across restart", p)
		}
	}
	if got := a.svc.Prioritized(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("prioritized after restart %v", got)
	}
}

func xxhashKey(k []byte) uint64 { return store.DefaultConfig().Hash(k) }
