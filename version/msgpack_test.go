package version

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

// The plain* types mirror the package's types field for field, with the
// same tags and no methods, so msgpack encodes and decodes them by
// reflection: the reference the hand-written codec must agree with.
type plainDot struct {
	Node    string `msgpack:"n"`
	Counter uint64 `msgpack:"c"`
}

type plainSibling struct {
	Dot         plainDot `msgpack:"d"`
	Value       []byte   `msgpack:"v,omitempty"`
	ContentType string   `msgpack:"t,omitempty"`
	Deleted     bool     `msgpack:"x,omitempty"`
	WriteTime   int64    `msgpack:"w"`
}

type plainContext struct {
	VV    map[string]uint64 `msgpack:"v,omitempty"`
	Cloud []plainDot        `msgpack:"d,omitempty"`
}

type plainSet struct {
	Siblings []plainSibling `msgpack:"s,omitempty"`
	Context  plainContext   `msgpack:"c"`
}

func toPlain(s Set) plainSet {
	var p plainSet
	for _, sib := range s.Siblings {
		p.Siblings = append(p.Siblings, plainSibling{Dot: plainDot(sib.Dot), Value: sib.Value,
			ContentType: sib.ContentType, Deleted: sib.Deleted, WriteTime: sib.WriteTime})
	}
	p.Context.VV = s.Context.VV
	for _, d := range s.Context.Cloud {
		p.Context.Cloud = append(p.Context.Cloud, plainDot(d))
	}
	return p
}

func fromPlain(p plainSet) Set {
	var s Set
	for _, sib := range p.Siblings {
		s.Siblings = append(s.Siblings, Sibling{Dot: Dot(sib.Dot), Value: sib.Value,
			ContentType: sib.ContentType, Deleted: sib.Deleted, WriteTime: sib.WriteTime})
	}
	s.Context.VV = p.Context.VV
	for _, d := range p.Context.Cloud {
		s.Context.Cloud = append(s.Context.Cloud, Dot(d))
	}
	return s
}

// genSet draws arbitrary sets, not only reachable ones: the codec must
// carry whatever it is given, empty and extreme values included.
func genSet(t *rapid.T) Set {
	node := rapid.SampledFrom([]string{"", "n1", "n2", "a-much-longer-node-name"})
	dot := func(label string) Dot {
		return Dot{Node: node.Draw(t, label+".node"), Counter: rapid.Uint64().Draw(t, label+".counter")}
	}
	var s Set
	for i := rapid.IntRange(0, 4).Draw(t, "siblings"); i > 0; i-- {
		var v []byte
		if rapid.Bool().Draw(t, "hasValue") {
			v = rapid.SliceOfN(rapid.Byte(), 1, 300).Draw(t, "value")
		}
		s.Siblings = append(s.Siblings, Sibling{
			Dot: dot("sib"), Value: v,
			ContentType: rapid.SampledFrom([]string{"", "text/plain"}).Draw(t, "ct"),
			Deleted:     rapid.Bool().Draw(t, "deleted"),
			WriteTime:   rapid.Int64().Draw(t, "time"),
		})
	}
	if n := rapid.IntRange(0, 3).Draw(t, "vv"); n > 0 {
		s.Context.VV = map[string]uint64{}
		for ; n > 0; n-- {
			s.Context.VV[node.Draw(t, "vvnode")] = rapid.Uint64().Draw(t, "vvcounter")
		}
	}
	for i := rapid.IntRange(0, 3).Draw(t, "cloud"); i > 0; i-- {
		s.Context.Cloud = append(s.Context.Cloud, dot("cloud"))
	}
	return s
}

// The hand-written codec and msgpack's reflection read each other's output,
// and for values whose encoding does not depend on map order (a vector of
// at most one node) they write the same bytes.
func TestPropertyCodecMatchesReflection(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := genSet(t)

		mine, err := msgpack.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if len(mine) > s.SizeHint() {
			t.Fatalf("encoded %d bytes, SizeHint %d", len(mine), s.SizeHint())
		}
		var p plainSet
		if err := msgpack.Unmarshal(mine, &p); err != nil {
			t.Fatalf("reflection cannot read the codec's bytes: %v", err)
		}
		if got := fromPlain(p); !reflect.DeepEqual(got, s) {
			t.Fatalf("codec -> reflection:\n got %#v\nwant %#v", got, s)
		}

		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		enc.UseCompactInts(true)
		if err := enc.Encode(toPlain(s)); err != nil {
			t.Fatal(err)
		}
		var back Set
		if err := msgpack.Unmarshal(buf.Bytes(), &back); err != nil {
			t.Fatalf("codec cannot read reflection's bytes: %v", err)
		}
		if !reflect.DeepEqual(back, s) {
			t.Fatalf("reflection -> codec:\n got %#v\nwant %#v", back, s)
		}
		if len(s.Context.VV) <= 1 && !bytes.Equal(buf.Bytes(), mine) {
			t.Fatalf("encodings differ:\ncodec      %x\nreflection %x", mine, buf.Bytes())
		}
	})
}

// A context's vector is written in node order, whatever the map's order.
func TestContextEncodingIsDeterministic(t *testing.T) {
	c := Context{VV: map[string]uint64{}}
	for _, n := range []string{"q", "b", "z", "a", "m", "c", "x", "k", "e", "t"} {
		c.VV[n] = uint64(len(n))
	}
	first, err := msgpack.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		again, _ := msgpack.Marshal(c)
		if !bytes.Equal(again, first) {
			t.Fatalf("encoding %d differs:\n%x\n%x", i, again, first)
		}
	}
}

func TestDecodeRejectsAndSkips(t *testing.T) {
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// An unknown field, as a newer peer might send, is skipped.
	withExtra := enc(map[string]any{"n": "n1", "c": 7, "future": []any{1, "x", map[string]any{"y": nil}}})
	var d Dot
	if err := msgpack.Unmarshal(withExtra, &d); err != nil || d != (Dot{Node: "n1", Counter: 7}) {
		t.Fatalf("dot with an unknown field: %v, %v", d, err)
	}
	// Nil decodes as the zero value, over whatever was there.
	s := Set{Siblings: []Sibling{{Dot: Dot{Node: "a", Counter: 1}}}}
	if err := msgpack.Unmarshal(enc(nil), &s); err != nil || !reflect.DeepEqual(s, Set{}) {
		t.Fatalf("nil set: %#v, %v", s, err)
	}
	for name, b := range map[string][]byte{
		"dot counter is a string":   enc(map[string]any{"n": "a", "c": "x"}),
		"dot is an array":           enc([]any{"a", 1}),
		"sibling value is a map":    enc(map[string]any{"s": []any{map[string]any{"d": map[string]any{"n": "a", "c": 1}, "v": map[string]any{}}}}),
		"dot counter negative":      enc(map[string]any{"s": []any{map[string]any{"d": map[string]any{"n": "a", "c": -3}}}}),
		"set siblings not an array": enc(map[string]any{"s": 5}),
		"vector counter negative":   enc(map[string]any{"c": map[string]any{"v": map[string]any{"a": -1}}}),
		"truncated":                 enc(map[string]any{"s": []any{map[string]any{"d": map[string]any{"n": "a", "c": 1}}}})[:9],
		"array claims more":         {0x81, 0xa1, 's', 0xdd, 0x7f, 0xff, 0xff, 0xff},
	} {
		var s Set
		if err := msgpack.Unmarshal(b, &s); err == nil {
			t.Errorf("%s: decoded without error: %#v", name, s)
		}
	}
}

// BenchmarkSetCodec compares the hand-written codec with msgpack's
// reflection on a 1 KB single-sibling set. Encoding goes into a reused
// buffer, so the numbers are the codecs' and not buffer growth's.
func BenchmarkSetCodec(b *testing.B) {
	s := Set{Siblings: []Sibling{
		{Dot: Dot{Node: "n1", Counter: 41}, Value: bytes.Repeat([]byte("v"), 1000), ContentType: "application/octet-stream", WriteTime: 1700000000000000000},
	}, Context: Context{VV: map[string]uint64{"n1": 41, "n2": 17, "n3": 9}}}
	p := toPlain(s)
	encoded, err := msgpack.Marshal(s)
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		v    any
		out  func() any
	}{
		{"codec", &s, func() any { return new(Set) }},
		{"reflection", &p, func() any { return new(plainSet) }},
	} {
		b.Run(tc.name+"/encode", func(b *testing.B) {
			b.ReportAllocs()
			var buf bytes.Buffer
			enc := msgpack.NewEncoder(&buf)
			enc.UseCompactInts(true)
			for i := 0; i < b.N; i++ {
				buf.Reset()
				if err := enc.Encode(tc.v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/decode", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if err := msgpack.Unmarshal(encoded, tc.out()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
