package handoff_test

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/handoff"
	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

// A node keeps a hint for n2 while n2 is down and hands it off once the
// failure detector trusts n2 again.
func ExampleHints() {
	cfg := store.DefaultConfig()
	cfg.Dir, cfg.FS = "/db", vfs.NewMem()
	st, err := store.Open(cfg, zerolog.Nop())
	if err != nil {
		panic(err)
	}
	defer st.Close()

	var n2Up atomic.Bool
	delivered := make(chan string, 1)
	hcfg := handoff.DefaultConfig().Hints
	hcfg.Available = func(owner string) bool { return owner == "n2" && n2Up.Load() }
	hcfg.Deliver = func(ctx context.Context, owner string, k []byte, set version.Set) error {
		// A real node sends an RPC that merges set into owner's store.
		_, key, _ := store.DecodeKey(k)
		delivered <- fmt.Sprintf("%s got %s=%s", owner, key, set.Siblings[0].Value)
		return nil
	}
	hcfg.Prioritize = func(partition int) { fmt.Println("anti-entropy first for partition", partition) }
	h, err := handoff.NewHints(hcfg, st, clock.NewFake(), zerolog.Nop())
	if err != nil {
		panic(err)
	}
	h.Start()

	var set version.Set
	if _, err := set.Update(version.Write{Node: "n1", Value: []byte("red")}); err != nil {
		panic(err)
	}
	stored, err := h.Store("n2", 42, store.EncodeKey([]byte("colors"), []byte("apple")), set)
	fmt.Println("hint stored:", stored, err)
	fmt.Println("pending:", h.Pending()["n2"].PendingHints)

	n2Up.Store(true) // the detector trusts n2 again
	h.Kick()
	fmt.Println(<-delivered)

	_ = h.Close() // waits for the replay, which deletes the acknowledged hint
	m := h.Metrics()
	fmt.Println("replayed:", m.Replayed, "pending:", m.PendingHints)
	// Output:
	// hint stored: true <nil>
	// pending: 1
	// n2 got apple=red
	// replayed: 1 pending: 0
}
