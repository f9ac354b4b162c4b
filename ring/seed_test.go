package ring

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func TestNewDuplicateSeed(t *testing.T) {
	cfg := identityConfig(8)
	tests := []struct {
		name    string
		members []Member
		want    error
	}{
		{"two equal seeds", []Member{{ID: "a", Seed: "s"}, {ID: "b", Seed: "s"}}, ErrDuplicateSeed},
		{"seed is another's id", []Member{{ID: "a"}, {ID: "b", Seed: "a"}}, ErrDuplicateSeed},
		{"seed is another's id, other joined", []Member{{ID: "a", Joined: 9}, {ID: "b", Seed: "a", Joined: 1}}, ErrDuplicateSeed},
		{"duplicate id wins", []Member{{ID: "a", Seed: "s"}, {ID: "a", Seed: "s"}}, ErrDuplicateMember},
		{"seed is own id", []Member{{ID: "a", Seed: "a"}, {ID: "b"}}, nil},
		{"ids swapped as seeds", []Member{{ID: "a", Seed: "b"}, {ID: "b", Seed: "a"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(cfg, tt.members)
			if !errors.Is(err, tt.want) || (err != nil) != (r == nil) {
				t.Fatalf("New() = %v, %v; want %v", r, err, tt.want)
			}
		})
	}
}

// Rings whose members have no Seed keep the layout (TestLayoutGolden) and
// the versions they had before seeds existed; these were computed then.
func TestVersionWithoutSeedsUnchanged(t *testing.T) {
	tests := []struct {
		cfg     Config
		members []Member
		want    uint64
	}{
		{DefaultConfig(), nodes(1), 0x316e68c97c0fa3ee},
		{DefaultConfig(), nodes(3), 0x8848db731c47cc7e},
		{DefaultConfig(), nodes(16), 0x54e2ca901a99fd7d},
		{identityConfig(8), []Member{{ID: "a", Joined: 1}, {ID: "b", Joined: 2}, {ID: "c", Joined: 3}}, 0xd84a189d6b76ee51},
	}
	for _, tt := range tests {
		if got := mustNew(t, tt.cfg, tt.members).Version(); got != tt.want {
			t.Errorf("%d members: Version() = %#x, want %#x", len(tt.members), got, tt.want)
		}
	}
}

// A Seed equal to the ID gives the same layout as no Seed; Version and Equal
// still tell the two memberships apart, as they compare inputs.
func TestSeedEqualToID(t *testing.T) {
	plain := nodes(5)
	seeded := nodes(5)
	seeded[2].Seed = seeded[2].ID
	a, b := mustNew(t, DefaultConfig(), plain), mustNew(t, DefaultConfig(), seeded)
	if !slices.Equal(a.table, b.table) {
		t.Fatal("Seed == ID changed the layout")
	}
	if a.Equal(b) || a.Version() == b.Version() {
		t.Fatalf("Equal=%v, versions %#x %#x; want different inputs told apart", a.Equal(b), a.Version(), b.Version())
	}
}

func TestRingSeed(t *testing.T) {
	r := mustNew(t, DefaultConfig(), []Member{{ID: "a"}, {ID: "b", Seed: "x"}})
	tests := []struct {
		id   NodeID
		want string
		ok   bool
	}{{"a", "a", true}, {"b", "x", true}, {"x", "", false}, {"", "", false}}
	for _, tt := range tests {
		if got, ok := r.Seed(tt.id); got != tt.want || ok != tt.ok {
			t.Errorf("Seed(%q) = %q, %v; want %q, %v", tt.id, got, ok, tt.want, tt.ok)
		}
	}
	if !r.Contains("b") || r.Contains("x") || len(r.PartitionsFor("b", 1)) == 0 || r.PartitionsFor("x", 1) != nil {
		t.Fatal("members are not looked up by ID")
	}
}

// replaced returns ms with the member at i replaced by a node called id that
// takes over its effective seed and Joined.
func replaced(ms []Member, i int, id NodeID) []Member {
	out := slices.Clone(ms)
	out[i] = Member{ID: id, Seed: ms[i].EffectiveSeed(), Joined: ms[i].Joined}
	return out
}

// checkReplaced fails unless every full preference list of after is that of
// before with old renamed to repl.
func checkReplaced(tb fataler, before, after *Ring, old, repl NodeID) {
	tb.Helper()
	if before.Len() != after.Len() || before.PartitionCount() != after.PartitionCount() {
		tb.Fatalf("ring sizes differ")
	}
	for p := range before.PartitionCount() {
		want := fullOrder(tb, before, p)
		for i, id := range want {
			if id == old {
				want[i] = repl
			}
		}
		if got := fullOrder(tb, after, p); !slices.Equal(got, want) {
			tb.Fatalf("partition %d: %q after replacing %s by %s, want %q", p, got, old, repl, want)
		}
	}
}

// A replacement that takes the seed and Joined of a member gets exactly its
// partitions and its place in every preference list, for every n, whichever
// member it replaces, and again when the replacement is itself replaced.
func TestReplacementKeepsLayout(t *testing.T) {
	for _, q := range []int{8, 256} {
		for _, s := range []int{1, 2, 3, 5, 8, 16} {
			if s > q {
				continue
			}
			for _, budget := range []int{tableBudget, 2 * q} {
				ms := nodes(s)
				ms[s/2].Seed = "seeded" // members with a Seed can be replaced too
				before, err := build(identityConfig(q), ms, budget)
				if err != nil {
					t.Fatal(err)
				}
				for i, m := range ms {
					name := fmt.Sprintf("Q=%d/S=%d/budget=%d/%s", q, s, budget, m.ID)
					next := replaced(ms, i, "replacement")
					after, err := build(identityConfig(q), next, budget)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					checkReplaced(t, before, after, m.ID, "replacement")
					for n := 1; n <= s; n++ {
						if got, want := after.PartitionsFor("replacement", n), before.PartitionsFor(m.ID, n); !slices.Equal(got, want) {
							t.Fatalf("%s: n=%d: replacement replicates %v, the old member %v", name, n, got, want)
						}
					}
					if seed, _ := after.Seed("replacement"); seed != m.EffectiveSeed() {
						t.Fatalf("%s: replacement seed %q, want %q", name, seed, m.EffectiveSeed())
					}
					again, err := build(identityConfig(q), replaced(next, i, "second"), budget)
					if err != nil {
						t.Fatalf("%s: %v", name, err)
					}
					checkReplaced(t, before, again, m.ID, "second")
				}
			}
		}
	}
}

func TestPropertyReplacementKeepsLayout(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg, ms := genRing(t, 1, 24)
		i := rapid.IntRange(0, len(ms)-1).Draw(t, "replaced")
		before, err := New(cfg, ms)
		if err != nil {
			t.Fatal(err)
		}
		after, err := New(cfg, replaced(ms, i, "Replacement"))
		if err != nil {
			t.Fatal(err)
		}
		checkReplaced(t, before, after, ms[i].ID, "Replacement")
	})
}

// Equal rendezvous scores (which 64-bit hashes make all but impossible) are
// broken by effective seed, not by ID, so that a replacement keeps its place
// even then.
func TestOrderTieBreaksBySeed(t *testing.T) {
	r := mustNew(t, identityConfig(8), []Member{{ID: "a"}, {ID: "b", Seed: "z"}, {ID: "c", Seed: "y"}, {ID: "d"}})
	for i := range r.seeds {
		r.seeds[i] = 42
	}
	owner := r.index["a"]
	dst := make([]uint16, 4)
	r.order(dst, 0, owner, nil)
	got := make([]NodeID, len(dst))
	for i, idx := range dst {
		got[i] = r.ids[idx]
	}
	if want := []NodeID{"a", "d", "c", "b"}; !slices.Equal(got, want) {
		t.Fatalf("order with tied scores = %q, want %q (owner, then by seed d < y < z)", got, want)
	}
}
