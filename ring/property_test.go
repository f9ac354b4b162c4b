package ring

import (
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// genRing draws a partition count and a membership of 1..maxMembers distinct
// members (with colliding Joined values, so ID tie-breaks are exercised).
func genRing(t *rapid.T, minMembers, maxMembers int) (Config, []Member) {
	q := 1 << rapid.IntRange(0, 9).Draw(t, "log2Q")
	if q < minMembers {
		q = 1 << 4
	}
	s := rapid.IntRange(minMembers, min(maxMembers, q)).Draw(t, "members")
	ids := rapid.SliceOfNDistinct(rapid.StringMatching(`[a-z0-9]{1,6}`), s, s, rapid.ID[string]).Draw(t, "ids")
	ms := make([]Member, s)
	for i, id := range ids {
		ms[i] = Member{ID: id, Joined: int64(rapid.IntRange(0, 5).Draw(t, fmt.Sprintf("joined%d", i)))}
	}
	return identityConfig(q), ms
}

func TestPropertyDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg, ms := genRing(t, 1, 24)
		r1, err := New(cfg, ms)
		if err != nil {
			t.Fatal(err)
		}
		r2, err := New(cfg, rapid.Permutation(ms).Draw(t, "permuted"))
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(r1.table, r2.table) || !slices.Equal(r1.ids, r2.ids) || r1.Version() != r2.Version() {
			t.Fatalf("layout depends on member input order")
		}
	})
}

func TestPropertyBalanced(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg, ms := genRing(t, 1, 40)
		r, err := New(cfg, ms)
		if err != nil {
			t.Fatal(err)
		}
		q, s := r.PartitionCount(), r.Len()
		for i, c := range r.ownedCounts() {
			if c != q/s && c != (q+s-1)/s {
				t.Fatalf("member %s owns %d of %d partitions with %d members", r.ids[i], c, q, s)
			}
		}
	})
}

// Adding a member that sorts last in claim order moves exactly
// floor(Q/(S+1)) partitions, all to it, and leaves the fallback order of the
// old members unchanged everywhere else.
func TestPropertyAddLastMovesIdeal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg, ms := genRing(t, 1, 30)
		if len(ms) == cfg.Partitions {
			t.Skip("ring is full")
		}
		newcomer := Member{ID: "newcomer", Joined: 6} // after every drawn Joined
		before, err := New(cfg, ms)
		if err != nil {
			t.Fatal(err)
		}
		after, err := New(cfg, append(slices.Clone(ms), newcomer))
		if err != nil {
			t.Fatal(err)
		}
		moved := 0
		for p := range cfg.Partitions {
			o1, o2 := before.Owner(p), after.Owner(p)
			if o1 == o2 {
				// Rendezvous order of the old members is unchanged; the
				// newcomer is only inserted.
				got := slices.DeleteFunc(fullOrder(t, after, p), func(id NodeID) bool { return id == newcomer.ID })
				if want := fullOrder(t, before, p); !slices.Equal(got, want) {
					t.Fatalf("partition %d: old members reordered: %q -> %q", p, want, got)
				}
				continue
			}
			moved++
			if o2 != newcomer.ID {
				t.Fatalf("partition %d moved %s -> %s, not to the newcomer", p, o1, o2)
			}
		}
		if want := cfg.Partitions / (len(ms) + 1); moved != want {
			t.Fatalf("%d partitions moved, want exactly %d", moved, want)
		}
	})
}

func TestPropertyPreferenceLists(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg, ms := genRing(t, 1, 24)
		cfg.MaxFallbacks = rapid.IntRange(0, 4).Draw(t, "maxFallbacks")
		r, err := New(cfg, ms)
		if err != nil {
			t.Fatal(err)
		}
		s := r.Len()
		n := rapid.IntRange(1, s).Draw(t, "n")
		key := rapid.SliceOfN(rapid.Byte(), 0, 12).Draw(t, "key")
		l, err := r.PreferenceList(key, n)
		if err != nil {
			t.Fatal(err)
		}
		wantLen := s
		if cfg.MaxFallbacks > 0 {
			wantLen = min(s, n+cfg.MaxFallbacks)
		}
		if len(l) != wantLen {
			t.Fatalf("len %d, want %d", len(l), wantLen)
		}
		p := r.Partition(key)
		if l[0] != r.Owner(p) {
			t.Fatalf("list %q does not start with owner %s", l, r.Owner(p))
		}
		seen := map[NodeID]bool{}
		for _, id := range l {
			if seen[id] || !r.Contains(id) {
				t.Fatalf("list %q has a duplicate or non-member %q", l, id)
			}
			seen[id] = true
		}
		// Every list is a prefix of the partition's full order, whatever n.
		if full := fullOrder(t, r, p); !slices.Equal(l, full[:len(l)]) {
			t.Fatalf("list %q is not a prefix of the full order %q", l, full)
		}
	})
}

func TestPropertyPartitionsFor(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		cfg, ms := genRing(t, 1, 16)
		r, err := New(cfg, ms)
		if err != nil {
			t.Fatal(err)
		}
		n := rapid.IntRange(1, r.Len()).Draw(t, "n")
		total := 0
		for _, m := range ms {
			ps := r.PartitionsFor(m.ID, n)
			total += len(ps)
			for _, p := range ps {
				l, err := r.PartitionPreference(p, n)
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Contains(l[:n], m.ID) {
					t.Fatalf("PartitionsFor(%s, %d) has %d, whose primaries are %q", m.ID, n, p, l[:n])
				}
			}
		}
		// Each partition has exactly n primaries, so the lists partition
		// Q·n (partition, replica) pairs among the members.
		if total != r.PartitionCount()*n {
			t.Fatalf("PartitionsFor totals %d, want %d", total, r.PartitionCount()*n)
		}
	})
}
