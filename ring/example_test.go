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

// A fourth node joins a three-node ring of 8 partitions with replication
// factor 2. Moves plans what it must receive and from whom; Lost tells each
// old node which partitions it may hand off and delete once the new ring is
// committed.
func ExampleMoves() {
	cfg := ring.DefaultConfig()
	cfg.Partitions = 8
	members := []ring.Member{
		{ID: "node-a", Joined: 1700000000000000000},
		{ID: "node-b", Joined: 1700000100000000000},
		{ID: "node-c", Joined: 1700000200000000000},
	}
	from, err := ring.New(cfg, members)
	if err != nil {
		panic(err)
	}
	to, err := ring.New(cfg, append(members, ring.Member{ID: "node-d", Joined: 1700000300000000000}))
	if err != nil {
		panic(err)
	}
	const n = 2
	moves, err := ring.Moves(from, to, n)
	if err != nil {
		panic(err)
	}
	for _, m := range moves {
		before, _ := from.PartitionPreference(m.Partition, n)
		after, _ := to.PartitionPreference(m.Partition, n)
		fmt.Printf("partition %d: %v -> %v: %s copies from %v\n", m.Partition, before[:n], after[:n], m.Node, m.Sources)
	}
	for _, m := range members {
		fmt.Printf("%s loses %v\n", m.ID, ring.Lost(from, to, m.ID, n))
	}
	// Output:
	// partition 2: [node-a node-b] -> [node-a node-d]: node-d copies from [node-b node-a]
	// partition 3: [node-a node-c] -> [node-d node-c]: node-d copies from [node-a node-c]
	// partition 4: [node-b node-c] -> [node-b node-d]: node-d copies from [node-c node-b]
	// partition 5: [node-b node-a] -> [node-d node-a]: node-d copies from [node-b node-a]
	// node-a loses [3]
	// node-b loses [2 5]
	// node-c loses [4]
}

// node-b died for good; node-e replaces it by taking its seed and Joined, so
// it takes exactly node-b's place in every preference list, and the moves
// copy node-b's replicas to node-e from the nodes that hold them.
func ExampleMember_replacement() {
	cfg := ring.DefaultConfig()
	cfg.Partitions = 8
	members := []ring.Member{
		{ID: "node-a", Joined: 1700000000000000000},
		{ID: "node-b", Joined: 1700000100000000000},
		{ID: "node-c", Joined: 1700000200000000000},
	}
	from, err := ring.New(cfg, members)
	if err != nil {
		panic(err)
	}
	seed, _ := from.Seed("node-b")
	members[1] = ring.Member{ID: "node-e", Seed: seed, Joined: members[1].Joined}
	to, err := ring.New(cfg, members)
	if err != nil {
		panic(err)
	}
	const n = 2
	fmt.Println("node-b replicated:", from.PartitionsFor("node-b", n))
	fmt.Println("node-e replicates:", to.PartitionsFor("node-e", n))
	moves, err := ring.Moves(from, to, n)
	if err != nil {
		panic(err)
	}
	for _, m := range moves {
		// node-b is listed first, as the replica being replaced; node-e
		// copies from the next source while it is down.
		fmt.Printf("partition %d: %s copies from %v\n", m.Partition, m.Node, m.Sources)
	}
	// Output:
	// node-b replicated: [0 1 2 4 5]
	// node-e replicates: [0 1 2 4 5]
	// partition 0: node-e copies from [node-b node-c]
	// partition 1: node-e copies from [node-b node-c]
	// partition 2: node-e copies from [node-b node-a]
	// partition 4: node-e copies from [node-b node-c]
	// partition 5: node-e copies from [node-b node-a]
}
