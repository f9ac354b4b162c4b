package ring

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestNewErrors(t *testing.T) {
	cfg := identityConfig(4)
	tests := []struct {
		name    string
		cfg     Config
		members []Member
		want    error
	}{
		{"bad config", Config{Partitions: 3, Hash: identityHash}, nodes(1), ErrInvalidConfig},
		{"nil members", cfg, nil, ErrNoMembers},
		{"empty id", cfg, []Member{{ID: "a"}, {ID: ""}}, ErrEmptyID},
		{"duplicate id", cfg, []Member{{ID: "a", Joined: 1}, {ID: "b", Joined: 2}, {ID: "a", Joined: 3}}, ErrDuplicateMember},
		{"more members than partitions", cfg, nodes(5), ErrTooManyMembers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(tt.cfg, tt.members)
			if !errors.Is(err, tt.want) || r != nil {
				t.Fatalf("New() = %v, %v; want nil, %v", r, err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "ring: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
		})
	}
	// As many members as partitions is fine: each owns one.
	r := mustNew(t, cfg, nodes(4))
	for id, s := range r.Shares() {
		if s != 0.25 {
			t.Fatalf("share of %s = %v, want 0.25", id, s)
		}
	}
}

func TestPartitionIdentityHash(t *testing.T) {
	tests := []struct {
		q    int
		key  []byte
		want int
	}{
		{8, nil, 0},
		{8, []byte{0x00, 0xff, 0xff}, 0},
		{8, []byte{0x1f, 0xff}, 0},
		{8, []byte{0x20}, 1},
		{8, []byte{0x5f, 0xff}, 2},
		{8, []byte{0x60}, 3},
		{8, []byte{0xe0}, 7},
		{8, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 7},
		{1, []byte{0xff}, 0},
		{2, []byte{0x7f}, 0},
		{2, []byte{0x80}, 1},
		{256, []byte{0xab, 0xcd}, 0xab},
		{65536, []byte{0x12, 0x34, 0xff}, 0x1234},
	}
	for _, tt := range tests {
		r := mustNew(t, identityConfig(tt.q), nodes(1))
		if got := r.Partition(tt.key); got != tt.want {
			t.Errorf("Q=%d Partition(%x) = %d, want %d", tt.q, tt.key, got, tt.want)
		}
	}
}

// The layout is part of the protocol: every node, of every version, must
// compute the same owners and preference orders from the same membership.
// These golden layouts pin it (Q=8; members a, b, c, d joined in that order).
//
// Walk-through of the claim: a owns all 8. b takes floor(8/2)=4 from a. c
// takes floor(8/3)=2: one from a (4 each, tie broken by ID) and one from b.
// d takes floor(8/4)=2: one from a and one from b (they hold 3, c holds 2).
// e takes floor(8/5)=1: all hold 2, the tie goes to the smallest ID, a. In
// every step the fallback order of the old members is kept; the newcomer is
// inserted.
func TestLayoutGolden(t *testing.T) {
	a, b, c, d, e := Member{ID: "a", Joined: 1}, Member{ID: "b", Joined: 2}, Member{ID: "c", Joined: 3}, Member{ID: "d", Joined: 4}, Member{ID: "e", Joined: 5}
	tests := []struct {
		name    string
		members []Member
		lists   [8][]NodeID // full preference list per partition
	}{
		{"one", []Member{a}, [8][]NodeID{
			{"a"}, {"a"}, {"a"}, {"a"}, {"a"}, {"a"}, {"a"}, {"a"},
		}},
		{"two", []Member{a, b}, [8][]NodeID{
			{"a", "b"}, {"a", "b"}, {"b", "a"}, {"b", "a"},
			{"a", "b"}, {"b", "a"}, {"a", "b"}, {"b", "a"},
		}},
		{"three", []Member{a, b, c}, [8][]NodeID{
			{"c", "b", "a"}, {"a", "b", "c"}, {"b", "a", "c"}, {"c", "b", "a"},
			{"a", "b", "c"}, {"b", "a", "c"}, {"a", "b", "c"}, {"b", "c", "a"},
		}},
		{"four", []Member{a, b, c, d}, [8][]NodeID{
			{"c", "d", "b", "a"}, {"a", "b", "c", "d"}, {"d", "b", "a", "c"}, {"c", "b", "a", "d"},
			{"a", "b", "c", "d"}, {"b", "a", "c", "d"}, {"d", "b", "a", "c"}, {"b", "c", "d", "a"},
		}},
		{"five", []Member{e, d, c, b, a}, [8][]NodeID{
			{"c", "e", "d", "b", "a"}, {"a", "b", "c", "e", "d"}, {"d", "b", "a", "e", "c"}, {"c", "b", "a", "d", "e"},
			{"e", "b", "c", "a", "d"}, {"b", "a", "e", "c", "d"}, {"d", "e", "b", "a", "c"}, {"b", "c", "e", "d", "a"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mustNew(t, identityConfig(8), tt.members)
			for p, want := range tt.lists {
				if got := fullOrder(t, r, p); !slices.Equal(got, want) {
					t.Errorf("partition %d: preference %q, want %q", p, got, want)
				}
				if got := r.Owner(p); got != want[0] {
					t.Errorf("Owner(%d) = %q, want %q", p, got, want[0])
				}
			}
		})
	}
}

func TestPreferenceListByKey(t *testing.T) {
	r := mustNew(t, identityConfig(8), []Member{{ID: "d", Joined: 4}, {ID: "b", Joined: 2}, {ID: "a", Joined: 1}, {ID: "c", Joined: 3}})
	tests := []struct {
		key  []byte
		n    int
		want []NodeID
	}{
		{[]byte{0x00}, 1, []NodeID{"c", "d", "b", "a"}},
		{[]byte{0x20, 0x01}, 3, []NodeID{"a", "b", "c", "d"}},
		{[]byte{0x5f}, 2, []NodeID{"d", "b", "a", "c"}},
		{[]byte{0xff}, 4, []NodeID{"b", "c", "d", "a"}},
	}
	for _, tt := range tests {
		got, err := r.PreferenceList(tt.key, tt.n)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("PreferenceList(%x, %d) = %q, %v; want %q", tt.key, tt.n, got, err, tt.want)
		}
		got, err = r.AppendPreferenceList([]NodeID{"x"}, tt.key, tt.n)
		if err != nil || !slices.Equal(got, append([]NodeID{"x"}, tt.want...)) {
			t.Errorf("AppendPreferenceList(x, %x, %d) = %q, %v", tt.key, tt.n, got, err)
		}
	}
}

func TestMaxFallbacks(t *testing.T) {
	cfg := identityConfig(8)
	cfg.MaxFallbacks = 1
	r := mustNew(t, cfg, []Member{{ID: "a", Joined: 1}, {ID: "b", Joined: 2}, {ID: "c", Joined: 3}, {ID: "d", Joined: 4}})
	tests := []struct {
		p, n int
		want []NodeID
	}{
		{0, 1, []NodeID{"c", "d"}},
		{0, 2, []NodeID{"c", "d", "b"}},
		{0, 3, []NodeID{"c", "d", "b", "a"}},
		{0, 4, []NodeID{"c", "d", "b", "a"}},
		{7, 2, []NodeID{"b", "c", "d"}},
	}
	for _, tt := range tests {
		got, err := r.PartitionPreference(tt.p, tt.n)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("PartitionPreference(%d, %d) = %q, %v; want %q", tt.p, tt.n, got, err, tt.want)
		}
	}
}

func TestPreferenceListErrors(t *testing.T) {
	r := mustNew(t, identityConfig(8), nodes(3))
	for _, tt := range []struct {
		n    int
		want error
	}{{0, ErrInvalidN}, {-1, ErrInvalidN}, {4, ErrTooFewMembers}} {
		if l, err := r.PreferenceList([]byte("k"), tt.n); !errors.Is(err, tt.want) || l != nil {
			t.Errorf("PreferenceList(n=%d) = %q, %v; want %v", tt.n, l, err, tt.want)
		}
		dst := []NodeID{"x"}
		if l, err := r.AppendPreferenceList(dst, []byte("k"), tt.n); !errors.Is(err, tt.want) || !slices.Equal(l, dst) {
			t.Errorf("AppendPreferenceList(n=%d) = %q, %v; want dst, %v", tt.n, l, err, tt.want)
		}
		if _, err := r.PartitionPreference(0, tt.n); !errors.Is(err, tt.want) {
			t.Errorf("PartitionPreference(0, %d) error %v, want %v", tt.n, err, tt.want)
		}
	}
	for _, p := range []int{-1, 8, 1 << 20} {
		if _, err := r.PartitionPreference(p, 1); !errors.Is(err, ErrPartitionRange) {
			t.Errorf("PartitionPreference(%d, 1) error %v, want ErrPartitionRange", p, err)
		}
	}
}

func TestAppendPreferenceListDoesNotAllocate(t *testing.T) {
	r := mustNew(t, DefaultConfig(), nodes(16))
	dst := make([]NodeID, 0, 16)
	key := []byte("user:42")
	allocs := testing.AllocsPerRun(100, func() {
		var err error
		dst, err = r.AppendPreferenceList(dst[:0], key, 3)
		if err != nil || len(dst) != 16 {
			t.Fatalf("AppendPreferenceList: %q, %v", dst, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("AppendPreferenceList allocates %v times per call, want 0", allocs)
	}
	allocs = testing.AllocsPerRun(100, func() {
		if _, err := r.PreferenceList(key, 3); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 1 {
		t.Fatalf("PreferenceList allocates %v times per call, want 1 (the result)", allocs)
	}
}

func TestSharesAndPartitionsFor(t *testing.T) {
	r := mustNew(t, identityConfig(8), []Member{{ID: "a", Joined: 1}, {ID: "b", Joined: 2}, {ID: "c", Joined: 3}})
	// Owners: c a b c a b a b (see TestLayoutGolden).
	wantShares := map[NodeID]float64{"a": 3.0 / 8, "b": 3.0 / 8, "c": 2.0 / 8}
	if got := r.Shares(); len(got) != 3 || got["a"] != wantShares["a"] || got["b"] != wantShares["b"] || got["c"] != wantShares["c"] {
		t.Fatalf("Shares() = %v, want %v", got, wantShares)
	}
	tests := []struct {
		id   NodeID
		n    int
		want []int
	}{
		{"a", 1, []int{1, 4, 6}},
		{"c", 1, []int{0, 3}},
		{"a", 2, []int{1, 2, 4, 5, 6}},
		{"c", 2, []int{0, 3, 7}},
		{"b", 3, []int{0, 1, 2, 3, 4, 5, 6, 7}},
		{"b", 99, []int{0, 1, 2, 3, 4, 5, 6, 7}},
		{"b", 0, nil},
		{"zz", 1, nil},
	}
	for _, tt := range tests {
		if got := r.PartitionsFor(tt.id, tt.n); !slices.Equal(got, tt.want) {
			t.Errorf("PartitionsFor(%q, %d) = %v, want %v", tt.id, tt.n, got, tt.want)
		}
	}
}

func TestMembershipIdentity(t *testing.T) {
	ms := []Member{{ID: "c", Joined: 5}, {ID: "a", Joined: 7}, {ID: "b", Joined: 5}}
	r1 := mustNew(t, DefaultConfig(), ms)
	r2 := mustNew(t, DefaultConfig(), []Member{ms[1], ms[2], ms[0]})
	want := []Member{{ID: "b", Joined: 5}, {ID: "c", Joined: 5}, {ID: "a", Joined: 7}}
	if got := r1.Members(); !slices.Equal(got, want) {
		t.Fatalf("Members() = %v, want claim order %v", got, want)
	}
	if !r1.Equal(r2) || r1.Version() != r2.Version() {
		t.Fatalf("same membership in another order: Equal=%v, versions %x %x", r1.Equal(r2), r1.Version(), r2.Version())
	}
	if r1.Len() != 3 || !r1.Contains("a") || r1.Contains("d") {
		t.Fatalf("Len/Contains wrong: %d %v %v", r1.Len(), r1.Contains("a"), r1.Contains("d"))
	}
	// Members() is a copy.
	r1.Members()[0].ID = "mutated"
	if r1.Members()[0].ID != "b" {
		t.Fatal("Members() exposes internal state")
	}

	others := map[string]*Ring{
		"different joined":     mustNew(t, DefaultConfig(), []Member{{ID: "c", Joined: 5}, {ID: "a", Joined: 8}, {ID: "b", Joined: 5}}),
		"different id":         mustNew(t, DefaultConfig(), []Member{{ID: "c", Joined: 5}, {ID: "x", Joined: 7}, {ID: "b", Joined: 5}}),
		"subset":               mustNew(t, DefaultConfig(), ms[:2]),
		"different partitions": mustNew(t, identityConfig(512), ms),
	}
	for name, o := range others {
		if r1.Equal(o) || o.Equal(r1) || r1.Version() == o.Version() {
			t.Errorf("%s: Equal=%v, versions %x %x", name, r1.Equal(o), r1.Version(), o.Version())
		}
	}
	var nilRing *Ring
	if !nilRing.Equal(nil) || nilRing.Equal(r1) || r1.Equal(nil) {
		t.Error("Equal mishandles nil")
	}
	if s := r1.String(); !strings.Contains(s, "partitions: 256") || !strings.Contains(s, "members: 3") {
		t.Errorf("String() = %q", s)
	}
}

// Rings too large for a full table compute the tail of long lists on demand;
// the answers must match the table.
func TestSlowPathMatchesTable(t *testing.T) {
	ms := nodes(12)
	full := mustNew(t, identityConfig(64), ms)
	for _, budget := range []int{1, 64, 64 * 3, 64 * 11} {
		small, err := build(identityConfig(64), ms, budget)
		if err != nil {
			t.Fatal(err)
		}
		if want := max(1, budget/64); small.rowLen != want {
			t.Fatalf("budget %d: rowLen %d, want %d", budget, small.rowLen, want)
		}
		for p := range 64 {
			for n := 1; n <= 12; n++ {
				got, err1 := small.PartitionPreference(p, n)
				want, err2 := full.PartitionPreference(p, n)
				if err1 != nil || err2 != nil || !slices.Equal(got, want) {
					t.Fatalf("budget %d, partition %d, n %d: %q (%v), want %q (%v)", budget, p, n, got, err1, want, err2)
				}
			}
		}
		for _, m := range ms {
			for n := 1; n <= 12; n++ {
				if got, want := small.PartitionsFor(m.ID, n), full.PartitionsFor(m.ID, n); !slices.Equal(got, want) {
					t.Fatalf("budget %d: PartitionsFor(%s, %d) = %v, want %v", budget, m.ID, n, got, want)
				}
			}
		}
	}
}

// A member that joins with an earlier Joined than existing members refolds
// the claims after it: still deterministic and balanced, but more partitions
// move than the ideal 1/(S+1).
func TestOutOfOrderJoin(t *testing.T) {
	before := mustNew(t, DefaultConfig(), nodes(8))
	early := Member{ID: "early", Joined: 0}
	after := mustNew(t, DefaultConfig(), append(nodes(8), early))
	for i, c := range after.ownedCounts() {
		if c != 256/9 && c != 256/9+1 {
			t.Fatalf("member %s owns %d partitions after out-of-order join, want 28 or 29", after.ids[i], c)
		}
	}
	moved := 0
	for p := range 256 {
		if before.Owner(p) != after.Owner(p) {
			moved++
		}
	}
	ideal := 256 / 9
	t.Logf("out-of-order join of a 9th node: %d partitions moved (in-order join moves %d)", moved, ideal)
	if moved < ideal {
		t.Fatalf("moved %d partitions, fewer than the new node's share %d", moved, ideal)
	}
}
