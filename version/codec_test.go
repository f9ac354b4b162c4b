package version

import (
	"encoding/base64"
	"errors"
	"math"
	"testing"

	"pgregory.net/rapid"
)

// testKey is the key the codec tests bind their contexts to.
var testKey = []byte("b/k")

func TestContextRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		c := history(t, 3)[0].Context
		c.Add(Dot{"z", 9}) // a cloud dot
		key := rapid.SliceOf(rapid.Byte()).Draw(t, "key")
		got, err := DecodeContext(key, EncodeContext(key, c))
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(c) {
			t.Fatalf("round trip: %+v != %+v", got, c)
		}
	})
}

// encodeRaw is an X-Context of the given bytes.
func encodeRaw(b ...byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// taggedRaw is an X-Context in the current format for testKey, with body
// after the key binding.
func taggedRaw(body ...byte) string {
	tag := keyTag(testKey)
	return encodeRaw(append(append([]byte{contextFormat}, tag[:]...), body...)...)
}

func TestDecodeContextRejects(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"not base64", "!!!", ErrBadContext},
		{"zero byte", "AA", ErrBadContext},
		{"unknown format", encodeRaw(9, 0x80), ErrBadContext},
		{"format 2 without its tag", encodeRaw(contextFormat, 1, 2, 3), ErrBadContext},
		{"tag without a body", taggedRaw(), ErrBadContext},
		{"too long", string(make([]byte, 40000)), ErrBadContext},
		// A cloud array header claiming 4G dots must not allocate them.
		{"huge cloud", taggedRaw(0x81, 0xa1, 'd', 0xdd, 0xff, 0xff, 0xff, 0xff), ErrBadContext},
		// Format 1 had no key binding: refused, the client reads again.
		{"format 1", encodeRaw(1, 0x81, 0xa1, 'v', 0x81, 0xa1, 'a', 0x01), ErrForeignContext},
		{"format 1, bare", "AQ", ErrForeignContext},
	} {
		if _, err := DecodeContext(testKey, tc.in); !errors.Is(err, tc.want) {
			t.Errorf("%s: DecodeContext(%.10q) = %v, want %v", tc.name, tc.in, err, tc.want)
		}
	}
	if c, err := DecodeContext(testKey, ""); err != nil || !c.IsEmpty() {
		t.Fatalf("empty context: %v %v", c, err)
	}
	if c, err := DecodeContext(testKey, taggedRaw(0x80)); err != nil || !c.IsEmpty() {
		t.Fatalf("an empty map after the tag: %v %v", c, err)
	}
}

// A context decodes only for the key it was issued for: bucket and key
// both count, and a context of another key is ErrForeignContext, not a
// context that silently supersedes versions it never saw.
func TestContextIsBoundToItsKey(t *testing.T) {
	c := Context{VV: map[string]uint64{"n1": 5}}
	enc := EncodeContext([]byte("b/k"), c)
	for _, other := range [][]byte{[]byte("b/k2"), []byte("c/k"), []byte("b/K"), nil, []byte("b/k\x00")} {
		if _, err := DecodeContext(other, enc); !errors.Is(err, ErrForeignContext) {
			t.Errorf("context of b/k decoded for %q: %v, want ErrForeignContext", other, err)
		}
	}
	if got, err := DecodeContext([]byte("b/k"), enc); err != nil || !got.Equal(c) {
		t.Fatalf("own key: %v %+v", err, got)
	}
}

func FuzzDecodeContext(f *testing.F) {
	var c Context
	c.Add(Dot{"a", 1})
	c.Add(Dot{"b", 4})
	f.Add(EncodeContext(testKey, c))
	c.Add(Dot{"c", 7}) // a cloud dot
	f.Add(EncodeContext(testKey, c))
	f.Add(EncodeContext([]byte("other"), c))
	f.Add(EncodeContext(testKey, Context{VV: map[string]uint64{"a": MaxCounter}}))
	f.Add("")
	f.Add("AQ")
	f.Add(encodeRaw(1, 0x81, 0xa1, 'v', 0x81, 0xa1, 'a', 0x01))
	f.Add(taggedRaw())
	f.Add(taggedRaw(0x80))
	f.Add(taggedRaw(0x81, 0xa1, 'd', 0xdd, 0xff, 0xff, 0xff, 0xff))
	f.Fuzz(func(t *testing.T, s string) {
		c, err := DecodeContext(testKey, s)
		if err != nil {
			if !errors.Is(err, ErrBadContext) && !errors.Is(err, ErrForeignContext) {
				t.Fatalf("DecodeContext(%q) = %v, want ErrBadContext or ErrForeignContext", s, err)
			}
			return
		}
		// Whatever decodes re-encodes to an equal context, still bound.
		again, err := DecodeContext(testKey, EncodeContext(testKey, c))
		if err != nil || !again.Equal(c) {
			t.Fatalf("re-encode of %q: %v %+v %+v", s, err, again, c)
		}
		if !c.IsEmpty() {
			if _, err := DecodeContext([]byte("other"), s); !errors.Is(err, ErrForeignContext) {
				t.Fatalf("%q decoded for another key: %v", s, err)
			}
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
		if _, err := DecodeContext(testKey, EncodeContext(testKey, c)); !errors.Is(err, ErrBadContext) {
			t.Errorf("DecodeContext(%+v) = %v, want ErrBadContext", c, err)
		}
	}
	if _, err := DecodeContext(testKey, EncodeContext(testKey, Context{VV: map[string]uint64{"a": MaxCounter}})); err != nil {
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
