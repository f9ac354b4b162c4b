package version

import (
	"fmt"
	"testing"

	"pgregory.net/rapid"
)

// history drives several replicas of one key through random writes (with
// contexts taken from earlier reads or writes) and syncs, and returns the
// replicas' sets. Every set it returns is reachable in a real cluster.
func history(t *rapid.T, replicas int) []Set {
	nodes := []string{"a", "b", "c", "d"}[:replicas]
	sets := make([]Set, replicas)
	var seen []Context // contexts clients have held
	steps := rapid.IntRange(0, 25).Draw(t, "steps")
	for i := 0; i < steps; i++ {
		r := rapid.IntRange(0, replicas-1).Draw(t, "replica")
		switch rapid.IntRange(0, 3).Draw(t, "op") {
		case 0, 1: // a write with some context a client held, or none
			var ctx Context
			if len(seen) > 0 && rapid.Bool().Draw(t, "withctx") {
				ctx = seen[rapid.IntRange(0, len(seen)-1).Draw(t, "ctx")]
			}
			d, err := sets[r].Update(Write{Node: nodes[r], Context: ctx, Value: []byte(fmt.Sprint(i)),
				Deleted: rapid.IntRange(0, 5).Draw(t, "del") == 0, WriteTime: int64(i)})
			if err != nil {
				t.Fatal(err)
			}
			seen = append(seen, WriteContext(ctx, d))
		case 2: // a read
			seen = append(seen, sets[r].Context.Clone())
		case 3: // replication / repair from another replica
			o := rapid.IntRange(0, replicas-1).Draw(t, "from")
			sets[r] = Sync(sets[r], sets[o])
		}
	}
	return sets
}

func TestPropertySyncIsALattice(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := history(t, 3)
		a, b, c := s[0], s[1], s[2]
		if !Sync(a, b).Equal(Sync(b, a)) {
			t.Fatalf("not commutative:\n%+v\n%+v", Sync(a, b), Sync(b, a))
		}
		if !Sync(Sync(a, b), c).Equal(Sync(a, Sync(b, c))) {
			t.Fatal("not associative")
		}
		if !Sync(a, a).Equal(a) {
			t.Fatalf("not idempotent: %+v vs %+v", Sync(a, a), a)
		}
		m := Sync(a, b)
		if !Sync(m, a).Equal(m) {
			t.Fatal("merging a part back changed the join")
		}
	})
}

func TestPropertyUpdateRule(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		sets := history(t, 3)
		s := sets[0]
		ctx := sets[rapid.IntRange(0, 2).Draw(t, "ctxfrom")].Context
		before := s.Clone()
		d, err := s.Update(Write{Node: "a", Context: ctx, Value: []byte("new")})
		if err != nil {
			t.Fatal(err)
		}
		for _, sib := range before.Siblings {
			if ctx.Covers(sib.Dot) == s.Has(sib.Dot) {
				t.Fatalf("sibling %v: covered=%v but kept=%v", sib.Dot, ctx.Covers(sib.Dot), s.Has(sib.Dot))
			}
		}
		if !s.Has(d) || before.Context.Covers(d) || ctx.Covers(d) {
			t.Fatalf("new dot %v not fresh or not stored", d)
		}
		if !s.Context.Descends(before.Context) || !s.Context.Descends(ctx) {
			t.Fatal("context lost history")
		}
	})
}

func TestPropertyCompare(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := history(t, 3)
		a, b := s[0].Context, s[1].Context
		m := a.Clone()
		m.Merge(b)
		if !m.Descends(a) || !m.Descends(b) {
			t.Fatal("merge is not an upper bound")
		}
		switch Compare(a, b) {
		case Equal:
			if !a.Equal(b) || Compare(b, a) != Equal {
				t.Fatal("equal is not symmetric")
			}
		case Before:
			if Compare(b, a) != After || !m.Equal(b) {
				t.Fatal("before/after mismatch")
			}
		case After:
			if Compare(b, a) != Before || !m.Equal(a) {
				t.Fatal("after/before mismatch")
			}
		case Concurrent:
			if Compare(b, a) != Concurrent || m.Equal(a) || m.Equal(b) {
				t.Fatal("concurrent mismatch")
			}
		}
	})
}

// (a) Two clients doing interleaved read-modify-writes through one node,
// each with its own context, never see more than two siblings and never
// lose an acknowledged write.
func TestPropertyTwoClientsReadModifyWrite(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var s Set
		type client struct {
			ctx     Context
			hasRead bool
		}
		clients := [2]client{}
		var acked []Dot
		supersededBy := map[Dot]bool{} // dots some client read before writing over them
		steps := rapid.IntRange(1, 60).Draw(t, "steps")
		for i := 0; i < steps; i++ {
			c := &clients[rapid.IntRange(0, 1).Draw(t, "client")]
			if !c.hasRead {
				c.ctx, c.hasRead = s.Context.Clone(), true
				if n := len(s.Siblings); n > 2 {
					t.Fatalf("a read saw %d siblings", n)
				}
				continue
			}
			for _, sib := range s.Siblings {
				if c.ctx.Covers(sib.Dot) {
					supersededBy[sib.Dot] = true
				}
			}
			d, err := s.Update(Write{Node: "n1", Context: c.ctx, Value: []byte{byte(i)}})
			if err != nil {
				t.Fatal(err)
			}
			acked = append(acked, d)
			c.hasRead = false
			if n := len(s.Siblings); n > 2 {
				t.Fatalf("%d siblings after a write", n)
			}
		}
		for _, d := range acked {
			if !s.Has(d) && !supersededBy[d] {
				t.Fatalf("acknowledged write %v lost without a client having read it", d)
			}
		}
	})
}

// (b) A write without context on an existing key becomes a sibling and
// loses nothing.
func TestPropertyBlindWriteLosesNothing(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := history(t, 2)[0]
		before := s.Clone()
		d, err := s.Update(Write{Node: rapid.SampledFrom([]string{"a", "b", "z"}).Draw(t, "node"), Value: []byte("blind")})
		if err != nil {
			t.Fatal(err)
		}
		for _, sib := range before.Siblings {
			if !s.Has(sib.Dot) {
				t.Fatalf("blind write dropped %v", sib.Dot)
			}
		}
		if len(s.Siblings) != len(before.Siblings)+1 || !s.Has(d) {
			t.Fatalf("blind write: %d siblings, want %d", len(s.Siblings), len(before.Siblings)+1)
		}
	})
}

// Acknowledged writes survive replication: whatever order replicas sync in,
// a write's sibling disappears only if some client context covered it.
func TestPropertyReplicationLosesNoWrite(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		nodes := []string{"a", "b", "c"}
		sets := make([]Set, 3)
		var acked []Dot
		clientSeen := Context{} // union of every context a client wrote with
		for i := rapid.IntRange(0, 30).Draw(t, "steps"); i > 0; i-- {
			r := rapid.IntRange(0, 2).Draw(t, "r")
			if rapid.Bool().Draw(t, "write") {
				var ctx Context
				if rapid.Bool().Draw(t, "read first") {
					ctx = sets[rapid.IntRange(0, 2).Draw(t, "readfrom")].Context.Clone()
				}
				clientSeen.Merge(ctx)
				d, _ := sets[r].Update(Write{Node: nodes[r], Context: ctx})
				acked = append(acked, d)
			} else {
				sets[r] = Sync(sets[r], sets[rapid.IntRange(0, 2).Draw(t, "from")])
			}
		}
		all := Sync(Sync(sets[0], sets[1]), sets[2])
		for _, d := range acked {
			if !all.Has(d) && !clientSeen.Covers(d) {
				t.Fatalf("write %v vanished though no client saw it", d)
			}
		}
	})
}
