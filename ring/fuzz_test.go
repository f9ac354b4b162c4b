package ring

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// FuzzRing builds rings from arbitrary memberships and looks up arbitrary
// keys, checking the invariants every layout must satisfy.
func FuzzRing(f *testing.F) {
	f.Add([]byte{3, 1, 1, 2, 2, 3, 3}, []byte("user:1"), uint8(2))
	f.Add([]byte{0, 9, 0}, []byte{}, uint8(1))
	f.Add([]byte{7, 1, 0, 1, 0}, []byte{0xff}, uint8(1)) // duplicate
	f.Add([]byte{1, 1, 0, 2, 0, 3, 0}, []byte{0x80}, uint8(3))
	f.Fuzz(func(t *testing.T, spec, key []byte, n uint8) {
		if len(spec) == 0 {
			return
		}
		cfg := identityConfig(1 << (spec[0] % 9))
		cfg.MaxFallbacks = int(spec[0] / 9 % 4)
		var ms []Member
		seen := map[NodeID]bool{}
		dup := false
		for i := 1; i+1 < len(spec) && len(ms) < 40; i += 2 {
			m := Member{ID: fmt.Sprintf("n%d", spec[i]%48), Joined: int64(spec[i+1] % 4)}
			dup = dup || seen[m.ID]
			seen[m.ID] = true
			ms = append(ms, m)
		}
		r, err := New(cfg, ms)
		switch {
		case len(ms) == 0:
			if !errors.Is(err, ErrNoMembers) {
				t.Fatalf("empty membership: %v", err)
			}
			return
		case len(ms) > cfg.Partitions:
			if !errors.Is(err, ErrTooManyMembers) {
				t.Fatalf("%d members, %d partitions: %v", len(ms), cfg.Partitions, err)
			}
			return
		case dup:
			if !errors.Is(err, ErrDuplicateMember) {
				t.Fatalf("duplicate member: %v", err)
			}
			return
		case err != nil:
			t.Fatalf("New: %v", err)
		}

		rev := slices.Clone(ms)
		slices.Reverse(rev)
		if r2 := mustNew(t, cfg, rev); !slices.Equal(r.table, r2.table) {
			t.Fatal("layout depends on member input order")
		}
		q, s := cfg.Partitions, len(ms)
		for _, c := range r.ownedCounts() {
			if c != q/s && c != (q+s-1)/s {
				t.Fatalf("unbalanced: a member owns %d of %d partitions, %d members", c, q, s)
			}
		}

		l, err := r.PreferenceList(key, int(n))
		switch {
		case n == 0:
			if !errors.Is(err, ErrInvalidN) {
				t.Fatalf("n=0: %v", err)
			}
			return
		case int(n) > s:
			if !errors.Is(err, ErrTooFewMembers) {
				t.Fatalf("n=%d > %d members: %v", n, s, err)
			}
			return
		case err != nil:
			t.Fatalf("PreferenceList: %v", err)
		}
		if full := fullOrder(t, r, r.Partition(key)); len(l) < int(n) || !slices.Equal(l, full[:len(l)]) {
			t.Fatalf("list %q is not a prefix of %q with at least %d entries", l, full, n)
		}
		slices.Sort(l)
		if len(slices.Compact(l)) != len(l) {
			t.Fatalf("list has duplicates: %q", l)
		}
	})
}

// FuzzMoves decodes two memberships with seeds, a committed and a target one,
// and checks New's validation, then Moves and Lost against their definitions.
// spec[0] picks Q and n; then every 3 bytes are one member: its ID, its Seed
// (none, or another name) and its Joined, whose top two bits leave it out of
// the target or the committed ring.
func FuzzMoves(f *testing.F) {
	f.Add([]byte{10, 1, 0, 1, 2, 0, 2, 3, 0, 3, 4, 0, 0x44})
	f.Add([]byte{17, 1, 0, 1, 2, 0, 0x82, 5, 2, 0x42}) // a replacement
	f.Add([]byte{3, 1, 2, 0, 2, 0, 0})                 // duplicate seed
	f.Fuzz(func(t *testing.T, spec []byte) {
		if len(spec) == 0 {
			return
		}
		cfg := identityConfig(1 << (spec[0] % 7))
		n := int(spec[0]/7%5) + 1
		var a, b []Member
		for i := 1; i+2 < len(spec) && len(a)+len(b) < 48; i += 3 {
			m := Member{ID: fmt.Sprintf("n%d", spec[i]%24), Joined: int64(spec[i+2] % 8)}
			if spec[i+1]%3 != 0 {
				m.Seed = fmt.Sprintf("n%d", spec[i+1]%24)
			}
			if spec[i+2]&0x80 == 0 {
				a = append(a, m)
			}
			if spec[i+2]&0x40 == 0 {
				b = append(b, m)
			}
		}
		from, okA := newChecked(t, cfg, a)
		to, okB := newChecked(t, cfg, b)
		if !okA || !okB {
			return
		}
		moves, err := Moves(from, to, n)
		if err != nil {
			t.Fatal(err)
		}
		if want := naiveMoves(t, from, to, n); !equalMoves(moves, want) {
			t.Fatalf("Moves = %v, want %v", moves, want)
		}
		for _, m := range from.Members() {
			if got, want := Lost(from, to, m.ID, n), naiveLost(t, from, to, m.ID, n); !slices.Equal(got, want) {
				t.Fatalf("Lost(%s) = %v, want %v", m.ID, got, want)
			}
		}
	})
}

// newChecked builds a ring and checks that New fails exactly when, and as,
// it should; ok reports whether it built one.
func newChecked(t *testing.T, cfg Config, ms []Member) (r *Ring, ok bool) {
	t.Helper()
	ids, seeds := map[NodeID]bool{}, map[string]bool{}
	dupID, dupSeed := false, false
	for _, m := range ms {
		dupID = dupID || ids[m.ID]
		dupSeed = dupSeed || seeds[m.EffectiveSeed()]
		ids[m.ID], seeds[m.EffectiveSeed()] = true, true
	}
	r, err := New(cfg, ms)
	var want error
	switch {
	case len(ms) == 0:
		want = ErrNoMembers
	case len(ms) > cfg.Partitions:
		want = ErrTooManyMembers
	case dupID:
		want = ErrDuplicateMember
	case dupSeed:
		want = ErrDuplicateSeed
	}
	if !errors.Is(err, want) {
		t.Fatalf("New(%v) error %v, want %v", ms, err, want)
	}
	return r, err == nil
}
