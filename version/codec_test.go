package version

import (
	"encoding/base64"
	"errors"
	"math"
	"testing"

	"pgregory.net/rapid"
)

func TestContextRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := history(t, 3)[0].Context
		c.Add(Dot{"z", 9}) // a cloud dot
		got, err := DecodeContext(EncodeContext(c))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(c) {
			t.Fatalf("round trip: %+v != %+v", got, c)
		}
	})
}

func TestDecodeContextRejects(t *testing.T) {
	// A cloud array header claiming 4G dots must not allocate them.
	huge := base64.RawURLEncoding.EncodeToString([]byte{1, 0x81, 0xa1, 'd', 0xdd, 0xff, 0xff, 0xff, 0xff})
	for _, s := range []string{"!!!", "AA", "AQ", string(make([]byte, 40000)), huge} {
		if _, err := DecodeContext(s); !errors.Is(err, ErrBadContext) {
			t.Errorf("DecodeContext(%.10q) = %v, want ErrBadContext", s, err)
		}
	}
	if c, err := DecodeContext(""); err != nil || !c.IsEmpty() {
		t.Fatalf("empty context: %v %v", c, err)
	}
}

func FuzzDecodeContext(f *testing.F) {
	var c Context
	c.Add(Dot{"a", 1})
	c.Add(Dot{"b", 4})
	f.Add(EncodeContext(c))
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeContext(s)
		if err != nil {
			return
		}
		// Whatever decodes re-encodes to an equal context.
		again, err := DecodeContext(EncodeContext(c))
		if err != nil || !again.Equal(c) {
			t.Fatalf("re-encode of %q: %v %+v %+v", s, err, again, c)
		}
	})
}

// A context naming a counter above MaxCounter is malformed, and a write can
// never issue one: the counter would otherwise wrap around to 0, which
// every context counts as seen, so the acknowledged write would be dropped
// at its first merge.
func TestCountersStayBelowMaxCounter(t *testing.T) {
	for _, c := range []Context{
		{VV: map[string]uint64{"a": math.MaxUint64}},
		{VV: map[string]uint64{"a": MaxCounter + 1}},
		{Cloud: []Dot{{Node: "a", Counter: MaxCounter + 1}}},
	} {
		if _, err := DecodeContext(EncodeContext(c)); !errors.Is(err, ErrBadContext) {
			t.Errorf("DecodeContext(%+v) = %v, want ErrBadContext", c, err)
		}
	}
	if _, err := DecodeContext(EncodeContext(Context{VV: map[string]uint64{"a": MaxCounter}})); err != nil {
		t.Fatalf("a context at MaxCounter: %v", err)
	}
	var s Set
	if _, err := s.Update(Write{Node: "b", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	before := s.Clone()
	_, err := s.Update(Write{Node: "a", Value: []byte("y"), Context: Context{VV: map[string]uint64{"a": MaxCounter}}})
	if !errors.Is(err, ErrCounterExhausted) || !s.Equal(before) {
		t.Fatalf("Update past MaxCounter = %v, set %v; want ErrCounterExhausted and no change", err, s.Dots())
	}
}
