package antientropy

import "fmt"

// Example_exchange drives the exchange state machine by hand between two
// in-memory trees that differ in one record: it descends the differing
// path only, lists one leaf, and plans one transfer.
func Example_exchange() {
	shape := Shape{PartitionBits: 0, LeafBits: 4, FanoutBits: 2} // 16 leaves, fanout 4
	local, remote := NewTree(shape), NewTree(shape)
	records := map[uint64]uint64{ // key hash → record hash
		0x1000000000000000: 0xaaaa, // leaf 1
		0x9000000000000000: 0xbbbb, // leaf 9
	}
	for h, kh := range records {
		local.Apply(shape.Leaf(h), kh)
		remote.Apply(shape.Leaf(h), kh)
	}
	// The remote side has a newer version of the key in leaf 9.
	remote.Apply(9, 0xbbbb^0xcccc)

	hashes := func(t *Tree, level int, nodes []uint32) []uint64 {
		var out []uint64
		for _, n := range nodes {
			out = append(out, t.Hash(level, int(n)))
		}
		return out
	}
	x := NewExchange(shape, ExchangeOptions{MaxHashes: 64, MaxLeaves: 64, MaxKeys: 64})
	for st := x.Next(); st.Kind != StepDone; st = x.Next() {
		switch st.Kind {
		case StepHashes:
			fmt.Printf("hashes level %d nodes %v\n", st.Level, st.Nodes)
			_ = x.OnHashes(hashes(local, st.Level, st.Nodes), hashes(remote, st.Level, st.Nodes))
		case StepLeafKeys:
			fmt.Printf("list leaves %v\n", st.Nodes)
			_ = x.OnLeafKeys(
				[][]Entry{{{Hash: 0x9000000000000000, KeyHash: 0xbbbb}}},
				[][]Entry{{{Hash: 0x9000000000000000, KeyHash: 0xcccc}}})
		case StepTransfer:
			fmt.Printf("fetch %x push %x\n", st.Fetch, st.Push)
			_ = x.OnTransfer(st.Fetch)
		}
	}
	r := x.Result()
	fmt.Printf("compared %d nodes, %d leaf differed, %d key moved\n", r.NodesCompared, r.LeavesDiffering, r.KeysMoved)
	// Output:
	// hashes level 2 nodes [0]
	// hashes level 1 nodes [0 1 2 3]
	// hashes level 0 nodes [8 9 10 11]
	// list leaves [9]
	// fetch [9000000000000000] push [9000000000000000]
	// compared 9 nodes, 1 leaf differed, 1 key moved
}
