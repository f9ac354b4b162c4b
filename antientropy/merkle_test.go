package antientropy

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/cespare/xxhash/v2"
)

func TestShape(t *testing.T) {
	tests := []struct {
		name    string
		s       Shape
		levels  []int // sizes from the leaves up
		h       uint64
		part    int
		leaf    int
		leafLo  uint64
		leafHi  uint64
		partLo  uint64
		partHi  uint64
		partEnd int // Partitions()
	}{
		{
			name: "default", s: Shape{PartitionBits: 8, LeafBits: 10, FanoutBits: 5},
			levels: []int{1024, 32, 1},
			h:      0xAB_C0_12_34_56_78_9A_BC, part: 0xAB, leaf: 0b1100_0000_00,
			leafLo: 0xAB_C0_00_00_00_00_00_00, leafHi: 0xAB_C0_3F_FF_FF_FF_FF_FF,
			partLo: 0xAB_00_00_00_00_00_00_00, partHi: 0xAB_FF_FF_FF_FF_FF_FF_FF, partEnd: 256,
		},
		{
			name: "uneven fanout", s: Shape{PartitionBits: 2, LeafBits: 6, FanoutBits: 4},
			levels: []int{64, 4, 1},
			h:      0x7F00000000000000, part: 1, leaf: 0b111111,
			leafLo: 0x7F00000000000000, leafHi: 0x7FFFFFFFFFFFFFFF,
			partLo: 0x4000000000000000, partHi: 0x7FFFFFFFFFFFFFFF, partEnd: 4,
		},
		{
			name: "one partition, one leaf", s: Shape{PartitionBits: 0, LeafBits: 0, FanoutBits: 1},
			levels: []int{1},
			h:      0xFFFFFFFFFFFFFFFF, part: 0, leaf: 0,
			leafLo: 0, leafHi: ^uint64(0), partLo: 0, partHi: ^uint64(0), partEnd: 1,
		},
		{
			name: "binary", s: Shape{PartitionBits: 1, LeafBits: 3, FanoutBits: 1},
			levels: []int{8, 4, 2, 1},
			h:      0x9000000000000000, part: 1, leaf: 1,
			leafLo: 0x9000000000000000, leafHi: 0x9FFFFFFFFFFFFFFF,
			partLo: 0x8000000000000000, partHi: 0xFFFFFFFFFFFFFFFF, partEnd: 2,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.s.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := tc.s.Levels(); got != len(tc.levels) {
				t.Fatalf("levels %d, want %d", got, len(tc.levels))
			}
			for l, n := range tc.levels {
				if got := tc.s.LevelSize(l); got != n {
					t.Fatalf("level %d size %d, want %d", l, got, n)
				}
			}
			if got := tc.s.Partition(tc.h); got != tc.part {
				t.Fatalf("partition %d, want %d", got, tc.part)
			}
			if got := tc.s.Leaf(tc.h); got != tc.leaf {
				t.Fatalf("leaf %d, want %d", got, tc.leaf)
			}
			if lo, hi := tc.s.LeafRange(tc.part, tc.leaf); lo != tc.leafLo || hi != tc.leafHi {
				t.Fatalf("leaf range %x..%x, want %x..%x", lo, hi, tc.leafLo, tc.leafHi)
			}
			if lo, hi := tc.s.PartitionRange(tc.part); lo != tc.partLo || hi != tc.partHi {
				t.Fatalf("partition range %x..%x, want %x..%x", lo, hi, tc.partLo, tc.partHi)
			}
			if tc.s.Partitions() != tc.partEnd {
				t.Fatalf("partitions %d", tc.s.Partitions())
			}
		})
	}
}

func TestShapeValidate(t *testing.T) {
	for _, s := range []Shape{
		{PartitionBits: -1, LeafBits: 1, FanoutBits: 1},
		{PartitionBits: 17, LeafBits: 1, FanoutBits: 1},
		{PartitionBits: 1, LeafBits: 21, FanoutBits: 1},
		{PartitionBits: 1, LeafBits: 1, FanoutBits: 0},
		{PartitionBits: 1, LeafBits: 1, FanoutBits: 9},
	} {
		if err := s.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: err %v, want ErrConfig", s, err)
		}
	}
	if _, err := shapeFor(256, 1000, 32); !errors.Is(err, ErrConfig) {
		t.Errorf("non power of two leaves: %v", err)
	}
}

func TestRecordHash(t *testing.T) {
	if RecordHash([]byte("k"), nil) != 0 {
		t.Fatal("absent record must contribute 0")
	}
	// The key's length is part of the hash, so moving bytes between key
	// and set changes it.
	if RecordHash([]byte("ab"), []byte("c")) == RecordHash([]byte("a"), []byte("bc")) {
		t.Fatal("key/set boundary not hashed")
	}
	want := xxhash.Sum64(append([]byte{2}, "abc"...))
	if got := RecordHash([]byte("ab"), []byte("c")); got != want {
		t.Fatalf("RecordHash = %x, want %x", got, want)
	}
	if RecordHash([]byte("k"), []byte{}) == 0 {
		t.Fatal("empty but present set must contribute")
	}
}

func TestTreeHashes(t *testing.T) {
	s := Shape{PartitionBits: 0, LeafBits: 3, FanoutBits: 2} // 8 leaves → 2 → 1
	tr := NewTree(s)
	empty := tr.Root()
	tr.Apply(5, 0x55)
	tr.Apply(0, 0x11)
	// Inner node 1 covers leaves 4..7, hashed as little-endian uint64s.
	buf := make([]byte, 32)
	binary.LittleEndian.PutUint64(buf[8:], 0x55)
	if got, want := tr.Hash(1, 1), xxhash.Sum64(buf); got != want {
		t.Fatalf("inner hash %x, want %x", got, want)
	}
	root := tr.Root()
	if root == empty {
		t.Fatal("root did not change")
	}
	// XOR-ing the same value again restores the empty tree.
	tr.Apply(5, 0x55)
	tr.Apply(0, 0x11)
	if tr.Root() != empty {
		t.Fatal("root not restored")
	}
	// Swapping values between leaves changes the root: inner nodes are
	// hashes, not XORs, so distinct trees do not collide.
	a, b := NewTree(s), NewTree(s)
	a.SetLeaf(0, 1)
	a.SetLeaf(4, 2)
	b.SetLeaf(0, 2)
	b.SetLeaf(4, 1)
	if a.Root() == b.Root() {
		t.Fatal("swapped leaves collide")
	}
	if got := a.DiffLeaves(b); len(got) != 2 || got[0] != 0 || got[1] != 4 {
		t.Fatalf("DiffLeaves %v", got)
	}
}
