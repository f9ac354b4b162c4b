package antientropy

import (
	"context"
	"strings"
	"testing"

	"github.com/quorumkv/quorumkv/version"
)

// A record of a key this node does not replicate is handed to the key's
// replicas as hints and dropped; records of its own keys stay.
func TestStraysHandedOffAndDropped(t *testing.T) {
	cfg := reapConfig()
	// Keys named "stray*" are replicated by b and c only.
	cfg.Replicates = func(k []byte, node string) bool {
		return !strings.Contains(string(k), "stray") || node != "a"
	}
	c := newTestCluster(t, cfg, "a", "b", "c")
	c.write("a", "stray1", "old", false, true)
	c.write("a", "mine", "v", false, true)
	want := c.node("a").st.get(testKey("stray1"))
	svc := c.node("a").svc
	var total StrayReport
	for p := range cfg.Partitions {
		rep, err := svc.HandOffStrays(context.Background(), p)
		if err != nil {
			t.Fatal(err)
		}
		total.Found += rep.Found
		total.HandedOff += rep.HandedOff
	}
	if total.Found != 1 || total.HandedOff != 1 {
		t.Fatalf("strays %+v, want one found and handed off", total)
	}
	if got := c.node("a").st.get(testKey("stray1")); !got.IsEmpty() {
		t.Fatalf("stray kept: %+v", got)
	}
	if got := c.node("a").st.get(testKey("mine")); got.IsEmpty() {
		t.Fatal("a record of a's own key was dropped")
	}
	for _, owner := range []string{"b", "c"} {
		h, _ := c.node("a").st.Hint(owner, testKey("stray1"))
		if !h.Equal(want) {
			t.Fatalf("hint for %s = %v, want the stray %v", owner, h.Dots(), want.Dots())
		}
	}
	if h, _ := c.node("a").st.Hint("a", testKey("stray1")); !h.IsEmpty() {
		t.Fatal("a keeps a hint for itself")
	}
	if m := svc.Metrics(); m.StraysHandedOff != 1 {
		t.Fatalf("metrics %+v", m)
	}
	// The hint counts in a tombstone sweep like any other: a delete on b
	// and c that did not supersede the stray's value cannot be reaped.
	var concurrent version.Set
	if _, err := concurrent.Update(version.Write{Node: "b", Deleted: true, WriteTime: c.clk.Now().UnixNano()}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"b", "c"} {
		if _, _, err := c.node(id).st.Merge(testKey("stray1"), concurrent); err != nil {
			t.Fatal(err)
		}
	}
	if rep := c.sweep("b", "stray1"); rep.Tombstones != 1 || rep.Marked != 0 {
		t.Fatalf("sweep with a live stray hint on a: %+v", rep)
	}
}
