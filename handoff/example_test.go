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

// oneBatch is a Source whose only node, n1, holds the records of
// partition 0 and sends them in one batch.
type oneBatch []handoff.Record

func (o oneBatch) Scan(ctx context.Context, node string, req *handoff.ScanRequest) (*handoff.ScanResponse, error) {
	if node != "n1" {
		return nil, fmt.Errorf("%s is down", node)
	}
	return &handoff.ScanResponse{Records: o, Done: true}, nil
}

// A node gains partition 0 of a one-partition ring, held by n1 (and by n3,
// which is down): it pulls the partition, runs Finish, and may then serve
// reads from it.
func ExampleTransfers() {
	cfg := store.DefaultConfig()
	cfg.Dir, cfg.FS = "/db", vfs.NewMem()
	st, err := store.Open(cfg, zerolog.Nop())
	if err != nil {
		panic(err)
	}
	defer st.Close()

	var set version.Set
	if _, err := set.Update(version.Write{Node: "n1", Value: []byte("red")}); err != nil {
		panic(err)
	}
	k := store.EncodeKey([]byte("colors"), []byte("apple"))
	src := oneBatch{{Hash: cfg.Hash(k), Key: k, Set: store.EncodeSet(set)}}

	finished := make(chan int, 1)
	tcfg := handoff.DefaultConfig().Transfers
	tcfg.Partitions = 1
	tcfg.Finish = func(ctx context.Context, partition int, sources []string) error {
		// A real node runs a Merkle exchange with each source here.
		finished <- partition
		return nil
	}
	tr, err := handoff.NewTransfers(tcfg, st, src, clock.Real(), zerolog.Nop())
	if err != nil {
		panic(err)
	}
	defer tr.Close()
	tr.Start()
	tr.Set(42, []handoff.Gain{{Partition: 0, Sources: []string{"n3", "n1"}}}, nil)

	fmt.Println("finished partition", <-finished)
	_ = tr.Close() // waits for the worker, which marks the partition done
	got, _ := st.Get(k)
	p := tr.Progress()[0]
	fmt.Printf("apple=%s; partition %d %s from %s, %d key; done: %v\n",
		got.Siblings[0].Value, p.Partition, p.State, p.Source, p.Keys, tr.Done(42))
	// Output:
	// finished partition 0
	// apple=red; partition 0 done from n1, 1 key; done: true
}
