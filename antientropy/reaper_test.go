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

// state describes key on node: "absent" (a reaped key's memory included),
// "deleted" or "live".
func (c *testCluster) state(node, key string) string {
	set := c.node(node).st.get(testKey(key))
	switch {
	case len(set.Siblings) == 0:
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
	if rep.Tombstones != 1 || rep.Marked != 1 || rep.Notified != 2 || rep.Traffic.Sweep == 0 {
		t.Fatalf("sweep %+v, want a's mark and the other two told", rep)
	}
	for _, id := range all {
		if got, want := c.node(id).st.reapAfter(testKey("k1")), deletedAt.Add(time.Hour).UnixNano(); got != want {
			t.Fatalf("%s: reap after %d, want %d (write time + grace)", id, got, want)
		}
	}
	// Marked tombstones are not asked about again, here or where told.
	for _, id := range all {
		if rep := c.sweep(id, "k1"); rep.Tombstones != 0 || rep.Traffic.Sweep != 0 {
			t.Fatalf("%s: second sweep %+v", id, rep)
		}
	}
	if n := c.reap("a"); n != 0 || c.state("a", "k1") != "deleted" {
		t.Fatalf("reaped %d before the grace period", n)
	}
	c.clk.Advance(time.Hour)
	for _, id := range all {
		if n := c.reap(id); n != 1 || c.state(id, "k1") != "absent" {
			t.Fatalf("%s reaped %d after the grace period, has k1 %s", id, n, c.state(id, "k1"))
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

// TestExpiredTombstoneCopiedToLackingReplica: a tombstone, even past its
// grace, is copied to a replica that has no record of the key (it may
// never have received the delete, and absence is no agreement to reap),
// and from there the sweep can reap it everywhere. A replica that reaped
// it remembers the reap, so the copy changes nothing there and the leaf
// settles instead of being listed on every exchange.
func TestExpiredTombstoneCopiedToLackingReplica(t *testing.T) {
	c := newTestCluster(t, reapConfig(), "a", "b")
	c.write("a", "k1", "x", false, true)
	c.write("a", "k1", "", true, true)
	c.clk.Advance(2 * time.Hour)
	if rep := c.sweep("a", "k1"); rep.Marked != 0 {
		t.Fatalf("marked while b lacks the key: %+v", rep)
	}
	if rep := c.exchange("a", "b"); rep.KeysPushed != 1 {
		t.Fatalf("expired tombstone not copied to b: %+v", rep)
	}
	if c.state("b", "k1") != "deleted" {
		t.Fatal("b does not hold the tombstone")
	}
	if rep := c.sweep("a", "k1"); rep.Marked != 1 || rep.Notified != 1 {
		t.Fatalf("sweep once b holds it: %+v", rep)
	}
	if n := c.reap("a"); n != 1 {
		t.Fatalf("a reaped %d", n)
	}
	// b has not reaped yet: its tombstone goes to a, which ignores it.
	for _, dir := range [][2]string{{"a", "b"}, {"b", "a"}} {
		rep := c.exchange(dir[0], dir[1])
		if rep.KeysPushed+rep.KeysPulled != 0 {
			t.Fatalf("%v: the reaped tombstone changed a replica: %+v", dir, rep)
		}
	}
	if c.state("a", "k1") != "absent" {
		t.Fatal("the tombstone came back to a")
	}
	if rep := c.exchange("b", "a"); rep.Traffic.LeafKeys != 0 {
		t.Fatalf("settled leaf listed again: %+v", rep)
	}
	if n := c.reap("b"); n != 1 || c.state("b", "k1") != "absent" {
		t.Fatalf("b reaped %d", n)
	}
}

// hasTomb is a node's answer to a sweep: may this tombstone set be reaped,
// as far as the node knows? A replica must hold it (or remember reaping
// it); absence is no agreement, however old the tombstone (a replica
// that lost its disk, or never got the delete, may yet receive the old
// value from a hint). No hint or stray record may keep a live version the
// tombstones do not supersede.
func TestHasTomb(t *testing.T) {
	mk := func(f func(*version.Set)) version.Set {
		var s version.Set
		f(&s)
		return s
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	tomb := mk(func(s *version.Set) {
		_, _ = s.Update(version.Write{Node: "a", Value: []byte("x"), WriteTime: 1})
		_, _ = s.Update(version.Write{Node: "a", Context: s.Context, Deleted: true, WriteTime: now})
	})
	newer := mk(func(s *version.Set) {
		*s = tomb.Clone()
		_, _ = s.Update(version.Write{Node: "b", Context: s.Context, Deleted: true, WriteTime: now})
	})
	live := mk(func(s *version.Set) {
		*s = tomb.Clone()
		_, _ = s.Update(version.Write{Node: "b", Context: s.Context, Value: []byte("y"), WriteTime: now})
	})
	older := mk(func(s *version.Set) {
		_, _ = s.Update(version.Write{Node: "a", Deleted: true, WriteTime: 1})
	})
	oldValue := mk(func(s *version.Set) { // the value tomb deleted
		_, _ = s.Update(version.Write{Node: "a", Value: []byte("x"), WriteTime: 1})
	})
	concurrent := mk(func(s *version.Set) { // a value tomb did not see
		_, _ = s.Update(version.Write{Node: "c", Value: []byte("z"), WriteTime: 1})
	})
	tests := []struct {
		name    string
		replica bool
		local   *version.Set // nil: absent
		reaped  bool         // local was reaped: its memory is kept
		hint    *version.Set
		advance time.Duration
		want    bool
	}{
		{name: "equal tombstone", replica: true, local: &tomb, want: true},
		{name: "newer tombstone", replica: true, local: &newer, want: true},
		{name: "older tombstone", replica: true, local: &older},
		{name: "live value after the delete", replica: true, local: &live},
		{name: "absent", replica: true},
		{name: "absent long after the grace period", replica: true, advance: 100 * time.Hour},
		{name: "reaped here already", replica: true, local: &tomb, reaped: true, want: true},
		{name: "item not a tombstone", replica: true, local: &live},
		{name: "a hint the tombstones supersede", replica: true, local: &tomb, hint: &oldValue, want: true},
		{name: "a hint with a value they do not", replica: true, local: &tomb, hint: &concurrent},
		{name: "not a replica, nothing kept", want: true},
		{name: "not a replica, a stray record they supersede", local: &oldValue, want: true},
		{name: "not a replica, a stray record they do not", local: &concurrent},
		{name: "not a replica, a hint they do not supersede", hint: &concurrent},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := testKey("t" + string(rune('a'+i)))
			cfg := reapConfig()
			cfg.Replicates = func([]byte, string) bool { return tc.replica }
			c := newTestCluster(t, cfg, "a")
			st := c.node("a").st
			if tc.local != nil {
				if _, _, err := st.Merge(k, *tc.local); err != nil {
					t.Fatal(err)
				}
			}
			if tc.reaped {
				if err := st.MarkReapable(k, *tc.local, c.clk.Now()); err != nil {
					t.Fatal(err)
				}
				if n, err := st.Reap(c.clk.Now(), 0); err != nil || n != 1 {
					t.Fatalf("reap: %d %v", n, err)
				}
			}
			if tc.hint != nil {
				_, _ = st.AddHint("c", k, *tc.hint, 0, 0)
			}
			c.clk.Advance(tc.advance)
			it := Record{Hash: st.hash(k), Key: k, Set: store.EncodeSet(tomb)}
			if tc.name == "item not a tombstone" {
				it.Set = store.EncodeSet(live)
			}
			got, err := c.node("a").svc.hasTomb(it)
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
	set := c.node(from).st.get(testKey(key))
	for _, id := range to {
		if _, _, err := c.node(id).st.Merge(testKey(key), set); err != nil {
			c.t.Fatal(err)
		}
	}
}
