package antientropy

import (
	"context"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

// reapConfig keeps the loops idle: tests drive sweeps, reaps and
// exchanges themselves.
func reapConfig() Config {
	cfg := testConfig()
	cfg.Interval = 1000 * time.Hour
	cfg.SweepInterval = 1000 * time.Hour
	cfg.ReapInterval = 1000 * time.Hour
	cfg.TombstoneGrace = time.Hour
	cfg.N = 3
	return cfg
}

func (c *testCluster) partitionOf(key string) int {
	st := c.nodes["a"].st
	return c.node("a").svc.shape.Partition(st.hash(testKey(key)))
}

func (c *testCluster) sweep(node, key string) SweepReport {
	c.t.Helper()
	rep, _ := c.node(node).svc.Sweep(context.Background(), c.partitionOf(key))
	return rep
}

func (c *testCluster) reap(node string) int {
	c.t.Helper()
	n, err := c.node(node).svc.Reap()
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

// state describes key on node: "absent", "deleted" or "live".
func (c *testCluster) state(node, key string) string {
	set := c.node(node).st.Get(testKey(key))
	switch {
	case set.IsEmpty():
		return "absent"
	case set.Deleted():
		return "deleted"
	}
	return "live"
}

func (c *testCluster) exchangeAll() {
	c.t.Helper()
	for a := range c.nodes {
		for b := range c.nodes {
			if a != b {
				c.exchange(a, b)
			}
		}
	}
}

func TestTombstoneReapedOnceEveryReplicaHoldsIt(t *testing.T) {
	c := newTestCluster(t, reapConfig(), "a", "b", "c")
	all := []string{"a", "b", "c"}
	c.write("a", "k1", "x", false, true)
	c.replicateTo("a", "k1", "b", "c")
	c.write("a", "k1", "", true, true)
	c.replicateTo("a", "k1", "b", "c")
	deletedAt := c.clk.Now()

	rep := c.sweep("a", "k1")
	if rep.Tombstones != 1 || rep.Marked != 1 || rep.Traffic.Sweep == 0 {
		t.Fatalf("sweep %+v", rep)
	}
	if got, want := c.node("a").st.reapAfter(testKey("k1")), deletedAt.Add(time.Hour).UnixNano(); got != want {
		t.Fatalf("reap after %d, want %d (write time + grace)", got, want)
	}
	// Marked tombstones are not asked about again.
	if rep := c.sweep("a", "k1"); rep.Tombstones != 0 || rep.Traffic.Sweep != 0 {
		t.Fatalf("second sweep %+v", rep)
	}
	if n := c.reap("a"); n != 0 || c.state("a", "k1") != "deleted" {
		t.Fatalf("reaped %d before the grace period", n)
	}
	c.clk.Advance(time.Hour)
	if n := c.reap("a"); n != 1 || c.state("a", "k1") != "absent" {
		t.Fatalf("reaped %d after the grace period, a has k1 %s", n, c.state("a", "k1"))
	}
	// The others still confirm with a: it has nothing the tombstone must
	// supersede, and the grace period is over.
	for _, id := range []string{"b", "c"} {
		if rep := c.sweep(id, "k1"); rep.Marked != 1 {
			t.Fatalf("%s sweep after a reaped: %+v", id, rep)
		}
		if n := c.reap(id); n != 1 {
			t.Fatalf("%s reaped %d", id, n)
		}
	}
	c.exchangeAll()
	for _, id := range all {
		if s := c.state(id, "k1"); s != "absent" {
			t.Fatalf("%s has k1 %s after reaping and exchanges", id, s)
		}
	}
	var marked, reaped uint64
	for _, id := range all {
		m := c.node(id).svc.Metrics()
		marked += m.TombstonesMarked
		reaped += m.TombstonesReaped
	}
	if marked != 3 || reaped != 3 {
		t.Fatalf("marked %d reaped %d, want 3 and 3", marked, reaped)
	}
}

// TestTombstoneWaitsForEveryReplica: a replica that was down during the
// delete still holds the old value. No tombstone is reaped until it holds
// the tombstone too, and the value never comes back.
func TestTombstoneWaitsForEveryReplica(t *testing.T) {
	c := newTestCluster(t, reapConfig(), "a", "b", "c")
	c.write("a", "k1", "x", false, true)
	c.replicateTo("a", "k1", "b", "c")
	c.net.setDown("c", true)
	c.write("a", "k1", "", true, true)
	c.replicateTo("a", "k1", "b")
	c.clk.Advance(3 * time.Hour)

	if rep := c.sweep("a", "k1"); rep.Marked != 0 {
		t.Fatalf("marked with c down: %+v", rep)
	}
	if n := c.reap("a"); n != 0 {
		t.Fatalf("reaped %d with c down", n)
	}
	c.net.setDown("c", false)
	if c.state("c", "k1") != "live" {
		t.Fatal("c should still hold the old value")
	}
	if rep := c.sweep("a", "k1"); rep.Marked != 0 {
		t.Fatalf("marked while c holds the old value: %+v", rep)
	}
	if rep := c.sweep("b", "k1"); rep.Marked != 0 {
		t.Fatalf("b marked while c holds the old value: %+v", rep)
	}
	// Anti-entropy carries the tombstone to c, superseding x.
	c.exchange("c", "a")
	if s := c.state("c", "k1"); s != "deleted" {
		t.Fatalf("c has k1 %s after the exchange", s)
	}
	if rep := c.sweep("a", "k1"); rep.Marked != 1 {
		t.Fatalf("sweep once every replica holds it: %+v", rep)
	}
	if n := c.reap("a"); n != 1 {
		t.Fatalf("reaped %d", n)
	}
	for _, id := range []string{"b", "c"} {
		c.sweep(id, "k1")
		c.reap(id)
	}
	c.exchangeAll()
	for _, id := range []string{"a", "b", "c"} {
		if s := c.state(id, "k1"); s != "absent" {
			t.Fatalf("%s has k1 %s", id, s)
		}
	}
}

// TestExpiredTombstoneNotCopiedToLackingReplica: once past its grace, a
// tombstone is not copied to a replica that has no record of the key
// (that would undo its reap elsewhere), and the leaf settles instead of
// being listed on every exchange.
func TestExpiredTombstoneNotCopiedToLackingReplica(t *testing.T) {
	c := newTestCluster(t, reapConfig(), "a", "b")
	c.write("a", "k1", "", true, false)
	c.write("a", "k2", "", true, false)
	c.exchange("a", "b") // not expired yet: copied
	if c.state("b", "k1") != "deleted" {
		t.Fatal("fresh tombstone not copied")
	}
	c.write("a", "k3", "", true, false)
	c.clk.Advance(2 * time.Hour)
	for _, dir := range [][2]string{{"a", "b"}, {"b", "a"}} {
		rep := c.exchange(dir[0], dir[1])
		if rep.KeysPushed+rep.KeysPulled != 0 {
			t.Fatalf("%v: expired tombstone moved: %+v", dir, rep)
		}
	}
	if c.state("b", "k3") != "absent" {
		t.Fatal("expired tombstone copied")
	}
	if rep := c.exchange("a", "b"); rep.Traffic.LeafKeys != 0 {
		t.Fatalf("settled leaf listed again: %+v", rep)
	}
}

func TestHasTomb(t *testing.T) {
	c := newTestCluster(t, reapConfig(), "a")
	svc := c.node("a").svc
	mk := func(f func(*version.Set)) version.Set {
		var s version.Set
		f(&s)
		return s
	}
	tomb := mk(func(s *version.Set) {
		_, _ = s.Update(version.Write{Node: "a", Value: []byte("x"), WriteTime: 1})
		_, _ = s.Update(version.Write{Node: "a", Context: s.Context, Deleted: true, WriteTime: c.clk.Now().UnixNano()})
	})
	newer := mk(func(s *version.Set) {
		*s = tomb.Clone()
		_, _ = s.Update(version.Write{Node: "b", Context: s.Context, Deleted: true, WriteTime: c.clk.Now().UnixNano()})
	})
	live := mk(func(s *version.Set) {
		*s = tomb.Clone()
		_, _ = s.Update(version.Write{Node: "b", Context: s.Context, Value: []byte("y"), WriteTime: c.clk.Now().UnixNano()})
	})
	older := mk(func(s *version.Set) {
		_, _ = s.Update(version.Write{Node: "a", Deleted: true, WriteTime: 1})
	})
	tests := []struct {
		name    string
		local   *version.Set // nil: absent
		item    version.Set
		advance time.Duration
		want    bool
	}{
		{"equal tombstone", &tomb, tomb, 0, true},
		{"newer tombstone", &newer, tomb, 0, true},
		{"older tombstone", &older, tomb, 0, false},
		{"live value after the delete", &live, tomb, 0, false},
		{"absent within grace", nil, tomb, 0, false},
		{"absent after grace", nil, tomb, 2 * time.Hour, true},
		{"item not a tombstone", &live, live, 0, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := testKey("t" + string(rune('a'+i)))
			if tc.local != nil {
				if _, _, err := c.node("a").st.Merge(k, *tc.local); err != nil {
					t.Fatal(err)
				}
			}
			it := Record{Hash: c.node("a").st.hash(k), Key: k, Set: store.EncodeSet(tc.item)}
			got, err := svc.hasTomb(it, c.clk.Now().Add(tc.advance))
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("hasTomb = %v, want %v", got, tc.want)
			}
		})
	}
}

// replicateTo merges from's set of key into the other nodes' stores.
func (c *testCluster) replicateTo(from, key string, to ...string) {
	c.t.Helper()
	set := c.node(from).st.Get(testKey(key))
	for _, id := range to {
		if _, _, err := c.node(id).st.Merge(testKey(key), set); err != nil {
			c.t.Fatal(err)
		}
	}
}
