package ring_test

import (
	"fmt"
	"maps"
	"slices"

	"github.com/quorumkv/quorumkv/ring"
)

func Example() {
	members := []ring.Member{
		{ID: "node-a", Joined: 1700000000000000000},
		{ID: "node-b", Joined: 1700000100000000000},
		{ID: "node-c", Joined: 1700000200000000000},
	}
	r, err := ring.New(ring.DefaultConfig(), members)
	if err != nil {
		panic(err)
	}
	// Publish it; request paths Load once per request.
	var current ring.Holder
	current.Store(r)

	list, err := current.Load().PreferenceList([]byte("user:42"), 2)
	if err != nil {
		panic(err)
	}
	fmt.Println("partition:", r.Partition([]byte("user:42")))
	fmt.Println("primaries:", list[:2], "fallbacks:", list[2:])

	shares := r.Shares()
	for _, id := range slices.Sorted(maps.Keys(shares)) {
		fmt.Printf("%s owns %.1f%%\n", id, 100*shares[id])
	}

	// A fourth node joins last: it takes floor(256/4) = 64 partitions, all
	// from the others, and nothing else moves.
	bigger, err := ring.New(ring.DefaultConfig(), append(members, ring.Member{ID: "node-d", Joined: 1700000300000000000}))
	if err != nil {
		panic(err)
	}
	moved := 0
	for p := range r.PartitionCount() {
		if r.Owner(p) != bigger.Owner(p) {
			moved++
		}
	}
	fmt.Println("moved:", moved, "to node-d:", len(bigger.PartitionsFor("node-d", 1)))

	_, err = r.PreferenceList([]byte("user:42"), 4)
	fmt.Println(err)
	// Output:
	// partition: 220
	// primaries: [node-c node-b] fallbacks: [node-a]
	// node-a owns 33.2%
	// node-b owns 33.6%
	// node-c owns 33.2%
	// moved: 64 to node-d: 64
	// ring: not enough members: n 4 > 3 members
}
