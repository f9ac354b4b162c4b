package store

import (
	"bytes"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/version"
)

// reap marks k's tombstone set reapable at t0 and reaps it.
func reap(t *testing.T, s *Store, k []byte, set version.Set, t0 time.Time) {
	t.Helper()
	if err := s.MarkReapable(k, set, t0); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Reap(t0, 0); err != nil || n != 1 {
		t.Fatalf("Reap = %d, %v", n, err)
	}
}

// A reaped key is remembered as its tombstones' context: a late merge of
// a version the delete superseded changes nothing (the key stays deleted),
// scans and the Merkle hook see no data, a concurrent new version is kept
// with the remembered context, and the memory goes after ReapMemory.
func TestReapedKeyIsRemembered(t *testing.T) {
	var events []WriteEvent
	s := openTest(t, vfs.NewMem(), func(c *Config) {
		c.OnWrite = func(ev WriteEvent) { events = append(events, ev) }
	})
	k := tk("k")
	old, _, err := s.Update(k, write("n1", "old"))
	if err != nil {
		t.Fatal(err)
	}
	dead := tombstone(t, s, k)
	t0 := clock.Epoch.Add(time.Hour)
	events = nil
	reap(t, s, k, dead, t0)
	if len(events) != 1 || events[0].New != nil || !bytes.Equal(events[0].Old, EncodeSet(dead)) {
		t.Fatalf("reap events = %+v, want the tombstone deleted from the trees", events)
	}

	// The superseded version arrives late (a hint, say): nothing changes.
	events = nil
	got, changed, err := s.Merge(k, old)
	if err != nil || changed || len(got.Siblings) != 0 {
		t.Fatalf("late merge of the deleted version = %+v changed=%v %v; want it dropped", got, changed, err)
	}
	if len(events) != 0 {
		t.Fatalf("late merge wrote %+v", events)
	}
	// The tombstone itself, from a replica that did not reap yet: same.
	if _, changed, err := s.Merge(k, dead); err != nil || changed {
		t.Fatalf("merge of the reaped tombstone changed=%v %v", changed, err)
	}
	n := 0
	if err := s.Scan(0, ^uint64(0), func(uint64, []byte, []byte) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("Scan saw %d records (%v); a reaped key's memory is not data", n, err)
	}

	// A write the delete did not see is kept, with the memory's context.
	var concurrent version.Set
	if _, err := concurrent.Update(version.Write{Node: "n2", Value: []byte("new"), WriteTime: 9, CounterFloor: 100}); err != nil {
		t.Fatal(err)
	}
	got, changed, err = s.Merge(k, concurrent)
	if err != nil || !changed || len(got.Siblings) != 1 || string(got.Siblings[0].Value) != "new" {
		t.Fatalf("merge of a concurrent write = %+v changed=%v %v", got, changed, err)
	}
	if !got.Context.Covers(old.Siblings[0].Dot) {
		t.Fatalf("the new record forgot the reaped context: %+v", got.Context)
	}
	if len(events) != 1 || events[0].Old != nil || events[0].New == nil {
		t.Fatalf("events = %+v, want the new record added to the trees", events)
	}
	// The old version still cannot come back through the new record.
	if got, _, _ := s.Merge(k, old); len(got.Siblings) != 1 || string(got.Siblings[0].Value) != "new" {
		t.Fatalf("after the new write, the old version came back: %+v", got)
	}
	// No forget entry is left behind for a memory that was replaced.
	if n, err := s.Reap(t0.Add(100*time.Hour), 0); err != nil || n != 0 {
		t.Fatalf("Reap = %d, %v", n, err)
	}
	if got, _ := s.Get(k); len(got.Siblings) != 1 {
		t.Fatalf("the forget index deleted live data: %+v", got)
	}
	if m := s.Metrics(); m.Forgotten != 0 {
		t.Fatalf("forgotten = %d, want 0", m.Forgotten)
	}
}

// A memory is forgotten after ReapMemory, and not before.
func TestReapedKeyIsForgotten(t *testing.T) {
	s := openTest(t, vfs.NewMem(), func(c *Config) { c.ReapMemory = time.Hour })
	k := tk("k")
	dead := tombstone(t, s, k)
	t0 := clock.Epoch.Add(time.Hour)
	reap(t, s, k, dead, t0)
	if _, err := s.Reap(t0.Add(time.Hour-time.Nanosecond), 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(k); got.IsEmpty() {
		t.Fatal("memory forgotten before ReapMemory")
	}
	if _, err := s.Reap(t0.Add(time.Hour), 0); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(k); !got.IsEmpty() {
		t.Fatalf("memory kept past ReapMemory: %+v", got)
	}
	if m := s.Metrics(); m.Forgotten != 1 || m.Reaped != 1 {
		t.Fatalf("metrics = %+v", m)
	}
}

// A replica holding the tombstone takes a peer's reap over when it merges
// the peer's memory (a context with no sibling, as a read repair sends
// it): its record becomes a memory too and leaves the Merkle trees.
func TestMergeOfAReapedPeer(t *testing.T) {
	var events []WriteEvent
	s := openTest(t, vfs.NewMem(), func(c *Config) {
		c.OnWrite = func(ev WriteEvent) { events = append(events, ev) }
	})
	k := tk("k")
	if _, _, err := s.Update(k, write("n1", "old")); err != nil {
		t.Fatal(err)
	}
	dead := tombstone(t, s, k)
	events = nil
	got, changed, err := s.Merge(k, version.Set{Context: dead.Context})
	if err != nil || !changed || len(got.Siblings) != 0 {
		t.Fatalf("merge of a peer's memory = %+v changed=%v %v", got, changed, err)
	}
	if len(events) != 1 || events[0].New != nil {
		t.Fatalf("events = %+v, want the tombstone removed from the trees", events)
	}
	// An absent key learns the memory too, so late versions stay out.
	k2 := tk("k2")
	if _, changed, err := s.Merge(k2, version.Set{Context: dead.Context}); err != nil || !changed {
		t.Fatalf("merge of a memory into an absent key changed=%v %v", changed, err)
	}
	var old version.Set
	if _, err := old.Update(version.Write{Node: "n1", Value: []byte("x"), WriteTime: 1}); err != nil {
		t.Fatal(err)
	}
	if got, _, err := s.Merge(k2, old); err != nil || len(got.Siblings) != 0 {
		t.Fatalf("a version the memory covers came in: %+v %v", got, err)
	}
}

// A new client write to a reaped key issues a dot past the remembered
// context and shows no ghost of the tombstones.
func TestUpdateOfAReapedKey(t *testing.T) {
	s := openTest(t, vfs.NewMem(), nil)
	k := tk("k")
	dead := tombstone(t, s, k)
	reap(t, s, k, dead, clock.Epoch.Add(time.Hour))
	got, _, err := s.Update(k, func(cur version.Set) (version.Set, error) {
		_, err := cur.Update(version.Write{Node: "n1", Value: []byte("again"), WriteTime: 10})
		return cur, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Siblings) != 1 || got.Siblings[0].Deleted || string(got.Siblings[0].Value) != "again" {
		t.Fatalf("write after reap = %+v", got)
	}
	if d := got.Siblings[0].Dot; dead.Context.Covers(d) {
		t.Fatalf("new write reused the reaped dot %v", d)
	}
}
