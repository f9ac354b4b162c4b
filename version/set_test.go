package version

import (
	"errors"
	"fmt"
	"testing"
)

func vv(kv ...any) Context {
	c := Context{VV: map[string]uint64{}}
	for i := 0; i < len(kv); i += 2 {
		c.VV[kv[i].(string)] = uint64(kv[i+1].(int))
	}
	return c
}

func TestUpdateSupersedesExactlyTheCoveredSiblings(t *testing.T) {
	var s Set
	d1, _ := s.Update(Write{Node: "a", Value: []byte("v1")})
	d2, _ := s.Update(Write{Node: "a", Value: []byte("v2")}) // no context: a sibling
	if got := len(s.Siblings); got != 2 {
		t.Fatalf("blind write: %d siblings, want 2", got)
	}
	// A client that read only v1 overwrites v1, not v2.
	d3, err := s.Update(Write{Node: "a", Context: WriteContext(Context{}, d1), Value: []byte("v3")})
	if err != nil {
		t.Fatal(err)
	}
	if s.Has(d1) || !s.Has(d2) || !s.Has(d3) {
		t.Fatalf("after context write: dots %v, want %v and %v", s.Dots(), d2, d3)
	}
	// A client that read everything resolves.
	d4, _ := s.Update(Write{Node: "b", Context: s.Context, Value: []byte("v4")})
	if len(s.Siblings) != 1 || s.Siblings[0].Dot != d4 {
		t.Fatalf("resolving write: %v", s.Dots())
	}
	if d4 != (Dot{"b", 1}) {
		t.Fatalf("dot = %v, want b:1", d4)
	}
	for _, d := range []Dot{d1, d2, d3, d4} {
		if !s.Context.Covers(d) {
			t.Fatalf("context %v does not cover %v", s.Context, d)
		}
	}
}

// The counter floor applies to every write, not only to a key absent on
// the replica: a set that holds only other nodes' dots (a sync arrived
// before this node's first write after a reap) must not make the node
// reissue a dot it issued before the reap.
func TestUpdateCounterFloorAlwaysApplies(t *testing.T) {
	var s Set
	d, _ := s.Update(Write{Node: "a", CounterFloor: 1000})
	if d.Counter != 1000 {
		t.Fatalf("first dot %v, want a:1000", d)
	}
	d, _ = s.Update(Write{Node: "a", Context: s.Context, CounterFloor: 5000})
	if d.Counter != 5000 {
		t.Fatalf("second dot %v, want a:5000", d)
	}
	// The floor never lowers a counter the contexts call for.
	d, _ = s.Update(Write{Node: "a", Context: s.Context, CounterFloor: 10})
	if d.Counter != 5001 {
		t.Fatalf("third dot %v, want a:5001", d)
	}
	// After a reap the key is gone here, and b's write arrives first.
	// Elsewhere a:1 still exists, a tombstone not yet reaped. With the
	// floor applied only to an absent key, a would issue a:1 again, and
	// the two different versions under one dot would make Sync keep
	// whichever side it met first.
	fresh := Set{Siblings: []Sibling{{Dot: Dot{"b", 3}, Value: []byte("b")}}, Context: vv("b", 3)}
	d, _ = fresh.Update(Write{Node: "a", Value: []byte("new"), CounterFloor: 9000})
	if d.Counter != 9000 {
		t.Fatalf("dot after a sync %v, want a:9000 from the floor", d)
	}
	old := Set{Siblings: []Sibling{{Dot: Dot{"a", 1}, Deleted: true}}, Context: vv("a", 1)}
	ab, ba := Sync(old, fresh), Sync(fresh, old)
	if !ab.Equal(ba) || len(ab.Live()) != 2 {
		t.Fatalf("sync with the old tombstone: %v and %v, want the same two live writes", ab.Dots(), ba.Dots())
	}
}

func TestUpdateSiblingCap(t *testing.T) {
	var s Set
	for i := 0; i < 3; i++ {
		if _, err := s.Update(Write{Node: "a", MaxSiblings: 3}); err != nil {
			t.Fatal(err)
		}
	}
	before := s.Clone()
	_, err := s.Update(Write{Node: "a", MaxSiblings: 3})
	if !errors.Is(err, ErrTooManySiblings) {
		t.Fatalf("err = %v, want ErrTooManySiblings", err)
	}
	if !s.Equal(before) {
		t.Fatal("a refused write changed the set")
	}
	// A resolving write is allowed at the cap.
	if _, err := s.Update(Write{Node: "a", Context: s.Context, MaxSiblings: 3}); err != nil {
		t.Fatal(err)
	}
}

func TestUpdateByteCap(t *testing.T) {
	val := make([]byte, 400)
	tests := []struct {
		name    string
		prior   int  // blind writes of 400 bytes already there
		resolve bool // the new write carries the context of all of them
		want    error
	}{
		{"under the cap", 1, false, nil},
		{"at the cap", 2, false, nil},
		{"past the cap", 3, false, ErrTooLarge},
		{"a resolving write at the cap", 3, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var s Set
			for range tt.prior {
				if _, err := s.Update(Write{Node: "a", Value: val}); err != nil {
					t.Fatal(err)
				}
			}
			before := s.Clone()
			w := Write{Node: "a", Value: val, MaxBytes: 1200}
			if tt.resolve {
				w.Context = s.Context
			}
			_, err := s.Update(w)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err != nil && !s.Equal(before) {
				t.Fatal("a refused write changed the set")
			}
		})
	}
}

func TestUpdateLWW(t *testing.T) {
	var s Set
	s.Update(Write{Node: "a", Value: []byte("x"), WriteTime: 1})
	s.Update(Write{Node: "a", Value: []byte("y"), WriteTime: 2, LWW: true})
	if len(s.Siblings) != 1 || string(s.Siblings[0].Value) != "y" {
		t.Fatalf("lww: %+v", s.Siblings)
	}
	a := s.Clone()
	a.Update(Write{Node: "a", Value: []byte("late"), WriteTime: 9, LWW: true})
	b := s.Clone()
	b.Update(Write{Node: "b", Value: []byte("early"), WriteTime: 5, LWW: true})
	m := Sync(a, b)
	m.ResolveLWW()
	if len(m.Siblings) != 1 || string(m.Siblings[0].Value) != "late" {
		t.Fatalf("lww sync kept %+v", m.Siblings)
	}
}

func TestSyncTable(t *testing.T) {
	sib := func(n string, c int) Sibling { return Sibling{Dot: Dot{n, uint64(c)}, Value: []byte(fmt.Sprint(n, c))} }
	tests := []struct {
		name string
		a, b Set
		want []Dot
	}{
		{"empty", Set{}, Set{}, nil},
		{"one side", Set{Siblings: []Sibling{sib("a", 1)}, Context: vv("a", 1)}, Set{}, []Dot{{"a", 1}}},
		{"descendant wins",
			Set{Siblings: []Sibling{sib("a", 1)}, Context: vv("a", 1)},
			Set{Siblings: []Sibling{sib("a", 2)}, Context: vv("a", 2)},
			[]Dot{{"a", 2}}},
		{"concurrent kept",
			Set{Siblings: []Sibling{sib("a", 1)}, Context: vv("a", 1)},
			Set{Siblings: []Sibling{sib("b", 1)}, Context: vv("b", 1)},
			[]Dot{{"a", 1}, {"b", 1}}},
		{"seen and dropped on one side",
			Set{Siblings: []Sibling{sib("a", 1), sib("b", 1)}, Context: vv("a", 1, "b", 1)},
			Set{Siblings: []Sibling{sib("c", 1)}, Context: vv("a", 1, "c", 1)},
			[]Dot{{"b", 1}, {"c", 1}}},
		{"same dot both sides",
			Set{Siblings: []Sibling{sib("a", 3)}, Context: vv("a", 3)},
			Set{Siblings: []Sibling{sib("a", 3), sib("b", 1)}, Context: vv("a", 3, "b", 1)},
			[]Dot{{"a", 3}, {"b", 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Sync(tt.a, tt.b)
			if fmt.Sprint(got.Dots()) != fmt.Sprint(tt.want) && !(len(got.Dots()) == 0 && len(tt.want) == 0) {
				t.Fatalf("Sync = %v, want %v", got.Dots(), tt.want)
			}
			if !got.Context.Descends(tt.a.Context) || !got.Context.Descends(tt.b.Context) {
				t.Fatalf("merged context %v misses a side", got.Context)
			}
		})
	}
}

func TestContextCloud(t *testing.T) {
	var c Context
	c.Add(Dot{"a", 1})
	c.Add(Dot{"a", 3})
	if c.Covers(Dot{"a", 2}) || !c.Covers(Dot{"a", 3}) {
		t.Fatalf("cloud context %+v", c)
	}
	if len(c.Cloud) != 1 {
		t.Fatalf("cloud = %v, want [a:3]", c.Cloud)
	}
	c.Add(Dot{"a", 2})
	if len(c.Cloud) != 0 || c.VV["a"] != 3 {
		t.Fatalf("not compacted: %+v", c)
	}
	if Compare(vv("a", 1), vv("a", 2)) != Before || Compare(vv("a", 2, "b", 1), vv("a", 3)) != Concurrent {
		t.Fatal("Compare is wrong")
	}
	big := Context{VV: map[string]uint64{"a": 1 << 60}}
	if !big.Descends(vv("a", 5)) || vv("a", 5).Descends(big) {
		t.Fatal("Descends with a large counter")
	}
}

// A detached write records its dot alone: the issuer's other dots stay
// uncovered, so versions it issued elsewhere survive a sync with it.
func TestUpdateDetached(t *testing.T) {
	var elsewhere Set
	d1, _ := elsewhere.Update(Write{Node: "a", Value: []byte("1"), CounterFloor: 100})
	var hint Set
	d2, _ := hint.Update(Write{Node: "a", Value: []byte("2"), CounterFloor: 200, Detached: true})
	if hint.Context.Covers(d1) || !hint.Context.Covers(d2) {
		t.Fatalf("detached context %v: covers %v? want only %v", hint.Context, d1, d2)
	}
	if got := Sync(elsewhere, hint); len(got.Siblings) != 2 {
		t.Fatalf("sync %v, want both writes", got.Dots())
	}
	var jumped Set
	jumped.Update(Write{Node: "a", Value: []byte("2"), CounterFloor: 200})
	if !jumped.Context.Covers(d1) {
		t.Fatal("an attached write should claim its issuer's earlier dots")
	}
}
