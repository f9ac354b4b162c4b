package gossip

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
	"pgregory.net/rapid"
)

// layoutOf is a layout at epoch e of the given member IDs, each joined at
// its position.
func layoutOf(e uint64, ids ...string) Layout {
	l := Layout{Epoch: e}
	for i, id := range ids {
		l.Members = append(l.Members, LayoutMember{ID: id, Joined: int64(i + 1)})
	}
	return l
}

func TestLayoutValidate(t *testing.T) {
	many := Layout{Epoch: 1}
	for i := range MaxLayoutMembers + 1 {
		many.Members = append(many.Members, LayoutMember{ID: fmt.Sprintf("n%05d", i)})
	}
	for _, tc := range []struct {
		name string
		l    Layout
		ok   bool
	}{
		{"one member", layoutOf(1, "a"), true},
		{"three members", layoutOf(7, "a", "b", "c"), true},
		{"most members", Layout{Epoch: 1, Members: many.Members[:MaxLayoutMembers]}, true},
		{"seeded", Layout{Epoch: 1, Members: []LayoutMember{{ID: "a", Seed: strings.Repeat("s", MaxIDLen)}}}, true},
		{"epoch 0", layoutOf(0, "a"), false},
		{"no members", Layout{Epoch: 1}, false},
		{"too many members", many, false},
		{"unsorted", layoutOf(1, "b", "a"), false},
		{"duplicate", layoutOf(1, "a", "a"), false},
		{"empty id", layoutOf(1, ""), false},
		{"long id", layoutOf(1, strings.Repeat("x", MaxIDLen+1)), false},
		{"long seed", Layout{Epoch: 1, Members: []LayoutMember{{ID: "a", Seed: strings.Repeat("s", MaxIDLen+1)}}}, false},
		{"negative join", Layout{Epoch: 1, Members: []LayoutMember{{ID: "a", Joined: -1}}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.l.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadLayout) {
				t.Fatalf("error %v does not wrap ErrBadLayout", err)
			}
		})
	}
}

func TestLayoutSupersedes(t *testing.T) {
	seeded := layoutOf(1, "a", "b")
	seeded.Members[1].Seed = "x"
	for _, tc := range []struct {
		name string
		a, b Layout
		want bool
	}{
		{"higher epoch wins", layoutOf(2, "a"), layoutOf(1, "a", "b", "c"), true},
		{"lower epoch loses", layoutOf(1, "a", "b", "c"), layoutOf(2, "a"), false},
		{"same epoch: more members win", layoutOf(1, "a", "b", "c"), layoutOf(1, "z"), true},
		// A wiped node bootstraps a layout of itself at epoch 1: it must
		// lose to the cluster's, whatever the hashes.
		{"a wiped node's own layout loses", layoutOf(1, "c"), layoutOf(1, "a", "b", "c"), false},
		{"equal does not supersede", layoutOf(3, "a", "b"), layoutOf(3, "a", "b"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.Supersedes(tc.b); got != tc.want {
				t.Fatalf("Supersedes = %v, want %v", got, tc.want)
			}
		})
	}
	// Same epoch and size: exactly one of two distinct layouts wins.
	for _, pair := range [][2]Layout{
		{layoutOf(1, "a", "b"), layoutOf(1, "a", "c")},
		{layoutOf(1, "a", "b"), seeded},
	} {
		if pair[0].Supersedes(pair[1]) == pair[1].Supersedes(pair[0]) {
			t.Errorf("%v and %v: not exactly one supersedes", pair[0], pair[1])
		}
	}
}

func genLayout(t *rapid.T, label string) Layout {
	ids := rapid.SliceOfDistinct(rapid.SampledFrom([]string{"a", "b", "c", "d"}), func(s string) string { return s }).
		Filter(func(s []string) bool { return len(s) > 0 }).Draw(t, label+"ids")
	l := Layout{Epoch: rapid.Uint64Range(1, 2).Draw(t, label+"epoch")}
	for _, id := range []string{"a", "b", "c", "d"} { // sorted
		for _, x := range ids {
			if x == id {
				l.Members = append(l.Members, LayoutMember{
					ID:     id,
					Joined: rapid.Int64Range(0, 1).Draw(t, label+id+"joined"),
					Seed:   rapid.SampledFrom([]string{"", "s"}).Draw(t, label+id+"seed"),
				})
			}
		}
	}
	return l
}

// Supersedes is a strict total order on distinct layouts, so adopting the
// greatest converges whatever the order of delivery.
func TestLayoutOrderProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := genLayout(t, "a"), genLayout(t, "b"), genLayout(t, "c")
		if a.Supersedes(a) {
			t.Fatalf("%v supersedes itself", a)
		}
		if !a.Equal(b) && a.Supersedes(b) == b.Supersedes(a) {
			t.Fatalf("%v, %v: not exactly one supersedes", a, b)
		}
		if a.Supersedes(b) && b.Supersedes(c) && !a.Supersedes(c) {
			t.Fatalf("not transitive: %v > %v > %v", a, b, c)
		}
		x, y := newTable("me", "c"), newTable("me", "c")
		for _, l := range []Layout{a, b, c} {
			_, _, _ = x.mergeLayout(l)
		}
		for _, l := range []Layout{c, a, b, c} {
			_, _, _ = y.mergeLayout(l)
		}
		if !x.layout.Equal(*y.layout) {
			t.Fatalf("orders disagree: %v, %v", x.layout, y.layout)
		}
	})
}

func TestProposeLayout(t *testing.T) {
	g := bareGossip("a", "c")
	if _, ok := g.Layout(); ok {
		t.Fatal("a new Gossip holds a layout")
	}
	l3 := layoutOf(1, "a", "b", "c")
	for _, tc := range []struct {
		name    string
		l       Layout
		adopted bool
		err     error
	}{
		{"first", l3, true, nil},
		{"same again", l3, false, nil},
		{"one member at the same epoch", layoutOf(1, "a"), false, nil},
		{"invalid", Layout{Epoch: 1}, false, ErrBadLayout},
		{"next epoch", layoutOf(2, "a", "b"), true, nil},
		{"older epoch", l3, false, nil},
	} {
		adopted, err := g.ProposeLayout(tc.l)
		if adopted != tc.adopted || !errors.Is(err, tc.err) {
			t.Fatalf("%s: ProposeLayout = %v, %v; want %v, %v", tc.name, adopted, err, tc.adopted, tc.err)
		}
	}
	got, ok := g.Layout()
	if !ok || !got.Equal(layoutOf(2, "a", "b")) {
		t.Fatalf("holds %v, %v; want epoch 2", got, ok)
	}
	got.Members[0].ID = "mutated"
	if again, _ := g.Layout(); again.Members[0].ID != "a" {
		t.Fatal("Layout shares its members with the caller")
	}
	if s := g.State(); s.Layout == nil || !s.Layout.Equal(layoutOf(2, "a", "b")) {
		t.Fatalf("State holds layout %v", s.Layout)
	}
	if m := g.Metrics(); m.LayoutsAdopted != 2 || m.LayoutsRejected != 3 {
		t.Fatalf("adopted %d, rejected %d; want 2, 3", m.LayoutsAdopted, m.LayoutsRejected)
	}
	// Proposals coalesce into one pending spreading pass.
	if n := len(g.spread); n != 1 {
		t.Fatalf("%d spreading passes pending, want 1", n)
	}
}

func TestLayoutMessage(t *testing.T) {
	a, b := bareGossip("a", "c"), bareGossip("b", "c")
	l := layoutOf(4, "a", "b")
	msg, err := encodeMessage(kindLayout, layoutMsg{Cluster: "c", Layout: l})
	if err != nil {
		t.Fatal(err)
	}
	delegate{b}.NotifyMsg(msg)
	if got, ok := b.Layout(); !ok || !got.Equal(l) {
		t.Fatalf("b holds %v, %v after the message", got, ok)
	}
	if n := len(b.queue.GetBroadcasts(0, 1400)) + len(b.spread); n != 0 {
		t.Fatal("a received layout was forwarded")
	}
	old, _ := encodeMessage(kindLayout, layoutMsg{Cluster: "c", Layout: layoutOf(3, "a", "b", "c")})
	foreign, _ := encodeMessage(kindLayout, layoutMsg{Cluster: "x", Layout: layoutOf(9, "x")})
	invalid, _ := marshal(kindLayout, layoutMsg{Cluster: "c", Layout: layoutOf(9, "b", "a")})
	for _, m := range [][]byte{old, foreign, invalid} {
		delegate{b}.NotifyMsg(m)
	}
	if got, _ := b.Layout(); !got.Equal(l) {
		t.Fatalf("b holds %v, want %v", got, l)
	}
	if m := b.Metrics(); m.LayoutsAdopted != 1 || m.LayoutsRejected != 1 || m.Rejected != 1 || m.DecodeErrors != 1 {
		t.Fatalf("metrics %+v; want 1 adopted, 1 rejected layout, 1 foreign, 1 undecodable", m)
	}

	// Push-pull carries it too; a state's invalid layout is dropped, the
	// rest of the state merged.
	delegate{a}.MergeRemoteState(delegate{b}.LocalState(false), false)
	if got, ok := a.Layout(); !ok || !got.Equal(l) {
		t.Fatalf("a holds %v, %v after push-pull", got, ok)
	}
	c := bareGossip("c", "c")
	bad := c.tbl.wire()
	bad.Layout = &Layout{Epoch: 0, Members: []LayoutMember{{ID: "c"}}}
	st, _ := encodeMessage(kindState, bad)
	delegate{a}.MergeRemoteState(st, false)
	if _, ok := a.Member("c"); !ok {
		t.Fatal("the members of a state with an invalid layout were not merged")
	}
	if got, _ := a.Layout(); !got.Equal(l) {
		t.Fatalf("a holds %v after an invalid layout", got)
	}
}

// holds is a condition: every node in nodes holds layout l.
func holds(nodes []*Gossip, l Layout) func() error {
	return func() error {
		for _, g := range nodes {
			if got, ok := g.Layout(); !ok || !got.Equal(l) {
				return fmt.Errorf("%s holds %v (%v), want %v", g.cfg.Meta.ID, got, ok, l)
			}
		}
		return nil
	}
}

// A proposed layout reaches every member over reliable messages at once,
// a later joiner through the join's push-pull, and a wiped node's
// one-member layout loses to the cluster's; the layout survives a restart
// through the persisted state.
func TestLayoutSpreads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newMemCluster(t)
		slowPushPull := func(cfg *Config) { cfg.PushPullInterval = 10 * time.Second }
		a := c.start("a", memA, slowPushPull)
		b := c.start("b", memB, slowPushPull)
		x := c.start("c", memC, slowPushPull)
		nodes := []*Gossip{a, b, x}
		c.join(b, a)
		c.join(x, a)
		c.wait("three alive members", allSee(nodes, "a", "b", "c"))

		l1 := layoutOf(1, "a", "b", "c")
		if ok, err := a.ProposeLayout(l1); !ok || err != nil {
			t.Fatalf("ProposeLayout = %v, %v", ok, err)
		}
		synctest.Wait() // no time passes: no push-pull has run
		if err := holds(nodes, l1)(); err != nil {
			t.Fatal(err)
		}
		if m := a.Metrics(); m.LayoutSends != 2 {
			t.Errorf("a sent the layout %d times, want 2", m.LayoutSends)
		}

		// Lower precedence, or invalid: rejected, and nothing changes.
		if ok, err := b.ProposeLayout(layoutOf(1, "b")); ok || err != nil {
			t.Fatalf("ProposeLayout(one member, epoch 1) = %v, %v; want false, nil", ok, err)
		}
		if _, err := b.ProposeLayout(Layout{Epoch: 2}); !errors.Is(err, ErrBadLayout) {
			t.Fatalf("ProposeLayout(no members) = %v, want ErrBadLayout", err)
		}
		if m := b.Metrics(); m.LayoutsRejected != 2 || m.LayoutsAdopted != 1 {
			t.Errorf("b metrics %+v, want 1 adopted, 2 rejected", m)
		}

		// A later joiner gets it from the join's push-pull.
		d := c.start("d", "10.0.0.4:7946", slowPushPull)
		c.join(d, x)
		c.wait("the layout on the late joiner", holds([]*Gossip{d}, l1))

		// A node whose disk was wiped bootstraps a layout of itself at
		// epoch 1, then joins: the cluster's layout of the same epoch wins
		// on both sides.
		e := c.start("e", "10.0.0.5:7946", slowPushPull)
		if ok, err := e.ProposeLayout(layoutOf(1, "e")); !ok || err != nil {
			t.Fatalf("bootstrap ProposeLayout = %v, %v", ok, err)
		}
		rejectedBefore := a.Metrics().LayoutsRejected
		c.join(e, a)
		synctest.Wait() // a merges e's side of the push-pull
		nodes = []*Gossip{a, b, x, d, e}
		c.wait("the cluster's layout everywhere", holds(nodes, l1))
		if a.Metrics().LayoutsRejected == rejectedBefore {
			t.Error("a never saw the wiped node's layout")
		}
		c.wait("five alive members", allSee(nodes, "a", "b", "c", "d", "e"))

		// The next epoch wins wherever it is proposed.
		l2 := layoutOf(2, "a", "b", "c", "d", "e")
		l2.Members[1].Seed = "old"
		if ok, err := x.ProposeLayout(l2); !ok || err != nil {
			t.Fatalf("ProposeLayout(epoch 2) = %v, %v", ok, err)
		}
		synctest.Wait()
		if err := holds(nodes, l2)(); err != nil {
			t.Fatal(err)
		}

		// The layout is persisted and restored.
		raw, err := EncodeState(b.State())
		if err != nil {
			t.Fatal(err)
		}
		st, err := DecodeState(raw)
		if err != nil {
			t.Fatal(err)
		}
		if st.Layout == nil || !st.Layout.Equal(l2) {
			t.Fatalf("persisted layout %v, want %v", st.Layout, l2)
		}
		_ = b.Close()
		b = c.start("b", memB, func(cfg *Config) {
			slowPushPull(cfg)
			cfg.Initial = st
		})
		if got, ok := b.Layout(); !ok || !got.Equal(l2) {
			t.Fatalf("restarted b holds %v, %v; want %v", got, ok, l2)
		}
	})
	goleak.VerifyNone(t)
}

// A member the reliable send misses gets the layout from push-pull; the
// layout is not forwarded by receivers.
func TestLayoutReachesStragglerByPushPull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newMemCluster(t)
		a := c.start("a", memA, nil)
		b := c.start("b", memB, nil)
		x := c.start("c", memC, nil)
		nodes := []*Gossip{a, b, x}
		c.join(b, a)
		c.join(x, a)
		c.wait("three alive members", allSee(nodes, "a", "b", "c"))

		c.net.Block(memA, memC, true) // a's send to c fails
		l := layoutOf(3, "a", "b", "c")
		if ok, err := a.ProposeLayout(l); !ok || err != nil {
			t.Fatalf("ProposeLayout = %v, %v", ok, err)
		}
		synctest.Wait() // a's spreading pass ends
		if m := a.Metrics(); m.LayoutSends != 2 || m.LayoutSendErrors != 1 {
			t.Fatalf("a sent %d, %d failed; want 2, 1", m.LayoutSends, m.LayoutSendErrors)
		}
		if _, ok := x.Layout(); ok {
			t.Fatal("c got the layout through the block")
		}
		c.net.Block(memA, memC, false) // no resend: push-pull carries it
		c.wait("the layout on every node", holds(nodes, l))
		if m := b.Metrics(); m.LayoutSends != 0 {
			t.Errorf("b forwarded the layout %d times", m.LayoutSends)
		}
	})
	goleak.VerifyNone(t)
}
