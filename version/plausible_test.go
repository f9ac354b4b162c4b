package version

import (
	"errors"
	"math"
	"testing"
	"time"

	"pgregory.net/rapid"
)

// testNow is the receiving node's clock in these tests.
var testNow = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

func TestCounterBound(t *testing.T) {
	for _, tc := range []struct {
		name string
		now  time.Time
		want uint64
	}{
		{"now", testNow, uint64(testNow.UnixMicro()) + Slack},
		{"before 1970", time.Unix(-5, 0), Slack},
		{"year 100000", time.Date(100000, 1, 1, 0, 0, 0, 0, time.UTC), MaxCounter / 2},
	} {
		if got := CounterBound(tc.now); got != tc.want {
			t.Errorf("%s: CounterBound = %d, want %d", tc.name, got, tc.want)
		}
	}
	// The bound leaves room for any number of writes a key will ever see.
	if b := CounterBound(testNow); b > MaxCounter/1000 {
		t.Fatalf("CounterBound(now) = %d is within a thousandth of MaxCounter %d", b, MaxCounter)
	}
	if b := WriteTimeBound(time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)); b <= 0 || b > math.MaxInt64-writeTimeSlack {
		t.Fatalf("WriteTimeBound of a clock far ahead = %d: no room left below MaxInt64", b)
	}
}

// A context or set is plausible exactly when every counter is at most
// CounterBound(now) (and every write time at most WriteTimeBound(now)),
// and the error names the offending node.
func TestPropertyPlausibleIsTheBound(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		bound := CounterBound(testNow)
		counter := func(label string) uint64 {
			switch rapid.IntRange(0, 3).Draw(t, label+"kind") {
			case 0: // far past it
				return rapid.Uint64Range(bound+1, MaxCounter).Draw(t, label)
			case 1: // at the edge
				return rapid.Uint64Range(bound-2, bound+2).Draw(t, label)
			default: // a real one: the clock when first opened plus dots
				return rapid.Uint64Range(1, uint64(testNow.UnixMicro())+1e9).Draw(t, label)
			}
		}
		nodes := []string{"a", "b", "c"}
		var s Set
		want := true
		for i, n := range nodes {
			if rapid.Bool().Draw(t, "vv") {
				c := counter("vv")
				s.Context.Add(Dot{Node: n, Counter: c})
				want = want && c <= bound
			}
			if rapid.Bool().Draw(t, "sibling") {
				c := counter("sib")
				wt := rapid.Int64Range(0, math.MaxInt64).Draw(t, "wt")
				if rapid.Bool().Draw(t, "realtime") {
					wt = testNow.UnixNano() + int64(i)
				}
				s.Siblings = append(s.Siblings, Sibling{Dot: Dot{Node: n + "x", Counter: c}, WriteTime: wt})
				want = want && c <= bound && wt <= WriteTimeBound(testNow)
			}
		}
		err := s.Plausible(testNow)
		if (err == nil) != want {
			t.Fatalf("Plausible(%+v) = %v, want plausible %v", s, err, want)
		}
		if err != nil && !errors.Is(err, ErrImplausible) {
			t.Fatalf("error %v does not wrap ErrImplausible", err)
		}
		if cerr := s.Context.Plausible(testNow); cerr != nil && err == nil {
			t.Fatalf("set plausible but its context is not: %v", cerr)
		}
	})
}

// No plausible context can freeze a key: after one, every later write
// still issues its dot, however many come, on a key whose own history is
// plausible too.
func TestPropertyPlausibleContextCannotFreezeAKey(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		now := time.UnixMicro(rapid.Int64Range(0, math.MaxInt64).Draw(t, "now"))
		bound := CounterBound(now)
		ctx := Context{VV: map[string]uint64{"a": rapid.Uint64Range(bound-10, bound).Draw(t, "a")}}
		ctx.Add(Dot{Node: "b", Counter: rapid.Uint64Range(1, bound).Draw(t, "b")})
		if err := ctx.Plausible(now); err != nil {
			t.Fatalf("a context within the bound: %v", err)
		}
		s := Set{Context: ctx.Clone()}
		floor := rapid.Uint64Range(0, bound).Draw(t, "floor")
		for i := range 100 {
			if _, err := s.Update(Write{Node: "a", Context: s.Context, Value: []byte{byte(i)}, CounterFloor: floor}); err != nil {
				t.Fatalf("write %d after a plausible context: %v", i, err)
			}
		}
		// Each write moved the counter by one: MaxCounter stays ~2^61 away.
		if got := s.Context.Max("a"); got > max(bound, floor)+100 || MaxCounter-got < MaxCounter/2-100 {
			t.Fatalf("counter %d after 100 writes from a context at most %d", got, bound)
		}
	})
}

// The forged contexts of issue 14: counters at MaxCounter, or one past the
// slack, are refused; the same contexts one under the bound are not.
func TestPlausibleRefusesForgedContexts(t *testing.T) {
	bound := CounterBound(testNow)
	for _, tc := range []struct {
		name string
		ctx  Context
		ok   bool
	}{
		{"empty", Context{}, true},
		{"at the bound", Context{VV: map[string]uint64{"n1": bound}}, true},
		{"clock-sized", Context{VV: map[string]uint64{"n1": uint64(testNow.UnixMicro())}}, true},
		{"MaxCounter", Context{VV: map[string]uint64{"n1": MaxCounter}}, false},
		{"past the slack", Context{VV: map[string]uint64{"n1": bound + 1}}, false},
		{"cloud past the slack", Context{VV: map[string]uint64{"n1": 3}, Cloud: []Dot{{Node: "n2", Counter: bound + 1}}}, false},
	} {
		err := tc.ctx.Plausible(testNow)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrImplausible)) {
			t.Errorf("%s: Plausible = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
	forged := Set{Siblings: []Sibling{{Dot: Dot{Node: "n1", Counter: 7}, WriteTime: math.MaxInt64}},
		Context: Context{VV: map[string]uint64{"n1": 7}}}
	if err := forged.Plausible(testNow); !errors.Is(err, ErrImplausible) {
		t.Errorf("a sibling written at MaxInt64: %v, want ErrImplausible", err)
	}
}
