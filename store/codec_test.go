package store

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/quorumkv/quorumkv/version"
	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

var genNode = rapid.SampledFrom([]string{"a", "b", "c", "node-4", "node-5"})

// genSet draws a well-formed set: siblings with distinct dots, sorted, and
// a context covering them plus some superseded dots.
func genSet(t *rapid.T) version.Set {
	var ctx version.Context
	var s version.Set
	seen := map[version.Dot]bool{}
	for i, n := 0, rapid.IntRange(0, 6).Draw(t, "dots"); i < n; i++ {
		d := version.Dot{Node: genNode.Draw(t, "node"), Counter: rapid.Uint64Range(1, 12).Draw(t, "counter")}
		if seen[d] {
			continue
		}
		seen[d] = true
		ctx.Add(d)
		if rapid.Bool().Draw(t, "live") {
			s.Siblings = append(s.Siblings, version.Sibling{
				Dot:         d,
				Value:       rapid.SliceOfN(rapid.Byte(), 0, 8).Draw(t, "value"),
				ContentType: rapid.SampledFrom([]string{"", "text/plain"}).Draw(t, "ct"),
				Deleted:     rapid.IntRange(0, 3).Draw(t, "del") == 0,
				WriteTime:   rapid.Int64Range(0, 1<<40).Draw(t, "wt"),
			})
		}
	}
	s.Siblings = sortedSiblings(s.Siblings)
	s.Context = ctx
	return s
}

func sortedSiblings(in []version.Sibling) []version.Sibling {
	out := append([]version.Sibling(nil), in...)
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].Dot.Less(out[j-1].Dot); j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// variant returns a set Equal to s but represented differently: sibling
// values nil instead of empty, zero vector entries, and the top of each
// vector entry moved into the cloud.
func variant(t *rapid.T, s version.Set) version.Set {
	v := s.Clone()
	for i := range v.Siblings {
		if len(v.Siblings[i].Value) == 0 {
			if rapid.Bool().Draw(t, "emptyvalue") {
				v.Siblings[i].Value = []byte{}
			} else {
				v.Siblings[i].Value = nil
			}
		}
	}
	vv := map[string]uint64{"zzz": 0}
	var cloud []version.Dot
	for n, c := range v.Context.VV {
		keep := rapid.Uint64Range(0, c).Draw(t, "keep")
		if keep > 0 {
			vv[n] = keep
		}
		for i := keep + 1; i <= c; i++ {
			cloud = append(cloud, version.Dot{Node: n, Counter: i})
		}
	}
	cloud = append(cloud, v.Context.Cloud...)
	for i := 1; i < len(cloud); i++ {
		for j := i; j > 0 && cloud[j].Less(cloud[j-1]); j-- {
			cloud[j], cloud[j-1] = cloud[j-1], cloud[j]
		}
	}
	v.Context = version.Context{VV: vv, Cloud: cloud}
	return v
}

func TestPropertyEncodeSetCanonical(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genSet(t)
		v := variant(t, s)
		if !s.Equal(v) {
			t.Fatalf("variant is not Equal:\n%+v\n%+v", s, v)
		}
		a, b := EncodeSet(s), EncodeSet(v)
		if !bytes.Equal(a, b) {
			t.Fatalf("equal sets encode differently:\n%x\n%x", a, b)
		}
		// Reordered siblings encode the same too.
		if len(v.Siblings) > 1 {
			r := append([]version.Sibling(nil), v.Siblings...)
			r[0], r[len(r)-1] = r[len(r)-1], r[0]
			if got := EncodeSet(version.Set{Siblings: r, Context: v.Context}); !bytes.Equal(got, a) {
				t.Fatalf("reordered siblings encode differently")
			}
		}
		d, err := DecodeSet(a)
		if err != nil {
			t.Fatalf("DecodeSet: %v", err)
		}
		if !d.Equal(s) {
			t.Fatalf("round trip changed the set:\n%+v\n%+v", s, d)
		}
		if !bytes.Equal(EncodeSet(d), a) {
			t.Fatal("re-encoding a decoded set changed its bytes")
		}
		// The bytes are plain msgpack of a version.Set after the format byte.
		var plain version.Set
		if err := msgpack.Unmarshal(a[1:], &plain); err != nil || !plain.Equal(s) {
			t.Fatalf("msgpack.Unmarshal into version.Set: %+v, %v", plain, err)
		}
	})
}

func TestPropertyEncodeSetDistinguishes(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := genSet(t), genSet(t)
		if a.Equal(b) != bytes.Equal(EncodeSet(a), EncodeSet(b)) {
			t.Fatalf("Equal=%v but bytes equal=%v:\n%+v\n%+v", a.Equal(b), !a.Equal(b), a, b)
		}
	})
}

func TestEncodeSetMapKeysSorted(t *testing.T) {
	var want []byte
	for round := 0; round < 30; round++ {
		vv := map[string]uint64{}
		for i := 0; i < 20; i++ {
			n := (i*7 + round) % 20 // different insertion orders
			vv[fmt.Sprintf("node-%02d", n)] = uint64(n + 1)
		}
		got := EncodeSet(version.Set{Context: version.Context{VV: vv}})
		if want == nil {
			want = got
		} else if !bytes.Equal(got, want) {
			t.Fatalf("round %d: encoding depends on map order", round)
		}
	}
	// The vector's keys appear in sorted order in the bytes.
	if i, j := bytes.Index(want, []byte("node-03")), bytes.Index(want, []byte("node-04")); i < 0 || j < i {
		t.Fatalf("map keys not sorted: node-03 at %d, node-04 at %d", i, j)
	}
}

func TestEncodeSetEmptyAndFormat(t *testing.T) {
	b := EncodeSet(version.Set{})
	if len(b) == 0 || b[0] != setFormat {
		t.Fatalf("EncodeSet(zero) = %x", b)
	}
	s, err := DecodeSet(b)
	if err != nil || !s.IsEmpty() {
		t.Fatalf("DecodeSet(EncodeSet(zero)) = %+v, %v", s, err)
	}
}

func TestDecodeSetRejects(t *testing.T) {
	good := EncodeSet(version.Set{
		Siblings: []version.Sibling{{Dot: version.Dot{Node: "a", Counter: 1}, Value: []byte("x")}},
		Context:  version.Context{VV: map[string]uint64{"a": 1}},
	})
	raw := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte{setFormat}, b...)
	}
	dot := func(n string, c uint64) version.Dot { return version.Dot{Node: n, Counter: c} }
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"format only", []byte{setFormat}},
		{"trailing byte", append(bytes.Clone(good), 0xc0)},
		{"truncated", good[:len(good)-1]},
		{"not a map", []byte{setFormat, 0x01}},
		{"zero dot", raw(version.Set{Siblings: []version.Sibling{{Dot: dot("a", 0)}}})},
		{"empty node", raw(version.Set{Siblings: []version.Sibling{{Dot: dot("", 1)}}})},
		{"unsorted siblings", raw(version.Set{Siblings: []version.Sibling{{Dot: dot("b", 1)}, {Dot: dot("a", 1)}}})},
		{"duplicate siblings", raw(version.Set{Siblings: []version.Sibling{{Dot: dot("a", 1)}, {Dot: dot("a", 1)}}})},
		{"empty node in vector", raw(version.Set{Context: version.Context{VV: map[string]uint64{"": 1}}})},
		{"zero dot in cloud", raw(version.Set{Context: version.Context{Cloud: []version.Dot{dot("a", 0)}}})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeSet(tt.b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("DecodeSet(%x) error = %v, want ErrCorrupt", tt.b, err)
			}
		})
	}
	t.Run("unknown format", func(t *testing.T) {
		b := bytes.Clone(good)
		b[0] = 9
		_, err := DecodeSet(b)
		var fe *FormatError
		if !errors.As(err, &fe) || fe.Format != 9 || fe.What != "set" || !errors.Is(err, ErrCorrupt) {
			t.Fatalf("DecodeSet error = %v, want a set FormatError matching ErrCorrupt", err)
		}
	})
}

func TestRecordRoundTrip(t *testing.T) {
	set := EncodeSet(version.Set{Context: version.Context{VV: map[string]uint64{"a": 3}}})
	for _, r := range []record{{Set: set}, {Set: set, ReapAfter: 1_700_000_000_000_000_000}} {
		b := encodeRecord(r)
		if b[0] != recordFormat {
			t.Fatalf("format byte %d", b[0])
		}
		got, err := decodeRecord(b)
		if err != nil {
			t.Fatalf("decodeRecord: %v", err)
		}
		if !bytes.Equal(got.Set, r.Set) || got.ReapAfter != r.ReapAfter {
			t.Fatalf("round trip: got %+v, want %+v", got, r)
		}
	}
	// ReapAfter is node-local and absent from the set bytes; when zero it
	// is not stored at all.
	if a, b := encodeRecord(record{Set: set}), encodeRecord(record{Set: set, ReapAfter: 5}); len(a) >= len(b) {
		t.Fatalf("zero ReapAfter not omitted: %d vs %d bytes", len(a), len(b))
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	set := EncodeSet(version.Set{})
	good := encodeRecord(record{Set: set})
	neg, _ := msgpack.Marshal(&record{Set: set, ReapAfter: -1})
	noSet, _ := msgpack.Marshal(&record{})
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"trailing", append(bytes.Clone(good), 0)},
		{"truncated", good[:len(good)-2]},
		{"negative reap time", append([]byte{recordFormat}, neg...)},
		{"no set", append([]byte{recordFormat}, noSet...)},
		{"wrong type", []byte{recordFormat, 0xa1, 'x'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeRecord(tt.b); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeRecord(%x) error = %v, want ErrCorrupt", tt.b, err)
			}
		})
	}
	b := bytes.Clone(good)
	b[0] = 0xee
	var fe *FormatError
	if _, err := decodeRecord(b); !errors.As(err, &fe) || fe.What != "record" || fe.Format != 0xee {
		t.Fatalf("unknown record format: got %v", err)
	}
}
