package node

import (
	"testing"

	"github.com/quorumkv/quorumkv/ring"
)

// The memo hands back the ring it built for the same members, in any
// order, and builds a new one for other members.
func TestRingMemo(t *testing.T) {
	cfg := ring.DefaultConfig()
	cfg.Partitions = 16
	m := &ringMemo{cfg: cfg}
	abc := []ring.Member{{ID: "a", Joined: 1}, {ID: "b", Joined: 2}, {ID: "c", Joined: 3}}
	r1, err := m.build(abc)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := m.build([]ring.Member{abc[2], abc[0], abc[1]})
	if r1 != r2 {
		t.Fatal("the same members in another order built a new ring")
	}
	abd := []ring.Member{abc[0], abc[1], {ID: "d", Joined: 4}}
	r3, _ := m.build(abd)
	if r3 == r1 || !r3.Contains("d") {
		t.Fatal("other members got the old ring")
	}
	moved := []ring.Member{abc[0], abc[1], {ID: "c", Joined: 3, Seed: "x"}}
	if r4, _ := m.build(moved); r4 == r1 {
		t.Fatal("a member with another seed got the old ring")
	}
	// Still remembered after the others: the last four are kept.
	if r5, _ := m.build(abc); r5 != r1 {
		t.Fatal("a recent ring was forgotten")
	}
}
