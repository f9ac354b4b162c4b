package store

import (
	"encoding/hex"
	"testing"

	"github.com/quorumkv/quorumkv/version"
)

// goldenSets are sets whose stored encoding is pinned in
// TestEncodeSetGolden: stored records and the Merkle trees' hashes of them
// depend on these exact bytes, so a codec change must not move them.
func goldenSets() []version.Set {
	return []version.Set{
		{},
		{Context: version.Context{VV: map[string]uint64{"n1": 3}}},
		{
			Siblings: []version.Sibling{
				{Dot: version.Dot{Node: "n1", Counter: 4}, Value: []byte("hello"), ContentType: "text/plain", WriteTime: 1700000000123456789},
				{Dot: version.Dot{Node: "n2", Counter: 300}, Deleted: true, WriteTime: -5},
			},
			Context: version.Context{
				VV:    map[string]uint64{"n2": 299, "n1": 3, "a-long-node-name": 1 << 40},
				Cloud: []version.Dot{{Node: "n1", Counter: 4}, {Node: "n2", Counter: 300}},
			},
		},
		{
			Siblings: []version.Sibling{{Dot: version.Dot{Node: "z", Counter: 1}, Value: []byte{}, WriteTime: 0}},
			Context:  version.Context{Cloud: []version.Dot{{Node: "z", Counter: 1}}},
		},
	}
}

func TestEncodeSetGolden(t *testing.T) {
	want := []string{
		"0181a16380",
		"0181a16381a17681a26e3103",
		"0182a1739284a16482a16ea26e31a16304a176c40568656c6c6fa174aa746578742f706c61696ea177cf17979cfe3d85cd1583a16482a16ea26e32a163cd012ca178c3a177fba16381a17683b0612d6c6f6e672d6e6f64652d6e616d65cf0000010000000000a26e3104a26e32cd012c",
		"0182a1739182a16482a16ea17aa16301a17700a16381a17681a17a01",
	}
	for i, s := range goldenSets() {
		got := hex.EncodeToString(EncodeSet(s))
		if got != want[i] {
			t.Errorf("set %d encodes as\n%s\nwant\n%s", i, got, want[i])
		}
		back, err := DecodeSet(EncodeSet(s))
		if err != nil {
			t.Fatalf("set %d: %v", i, err)
		}
		if hex.EncodeToString(EncodeSet(back)) != want[i] {
			t.Errorf("set %d does not survive a round trip", i)
		}
	}
}
