package antientropy

import (
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// Write events between New and Start are kept when Start loads the trees
// saved at the last clean shutdown: the trees then match the store.
func TestLoadedTreesKeepEventsBeforeStart(t *testing.T) {
	cfg := testConfig()
	c := newTestCluster(t, cfg, "a")
	a := c.node("a")
	for i := range 20 {
		c.write("a", "k"+strings.Repeat("x", i), "v", false, true)
	}
	_ = a.svc.Close()
	if err := a.svc.SaveTrees(); err != nil {
		t.Fatal(err)
	}
	// A clean restart: New, write events reach OnWrite, then Start.
	cfg.NodeID = "a"
	svc, err := New(cfg, Deps{Store: a.st, Meta: a.st, Ring: func() Ring { return c.ring }, Caller: memCaller{c.net, "a"}, Clock: c.clk}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	a.st.mu.Lock()
	a.st.onWrite = svc.forest.OnWrite
	a.st.mu.Unlock()
	for i := range 20 {
		c.write("a", "new"+strings.Repeat("y", i), "v", false, true)
	}
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	fresh, err := NewForest(svc.shape)
	if err != nil {
		t.Fatal(err)
	}
	for p := range cfg.Partitions {
		if err := fresh.Rebuild(a.st, p); err != nil {
			t.Fatal(err)
		}
		if fresh.Root(p) != svc.forest.Root(p) {
			t.Fatalf("partition %d: the loaded tree does not match the store", p)
		}
	}
}
