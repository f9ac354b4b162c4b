package quorum

import (
	"bytes"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"

	"github.com/quorumkv/quorumkv/internal/wire"
	"github.com/quorumkv/quorumkv/version"
)

// plainRequest and plainWrite mirror Request and WriteRequest with the same
// tags and no methods, so msgpack handles them by reflection. The sets keep
// version's own codec (tested against reflection in package version).
type plainWrite struct {
	Context     version.Context `msgpack:"c"`
	Value       []byte          `msgpack:"v"`
	ContentType string          `msgpack:"t"`
	Deleted     bool            `msgpack:"d"`
}

type plainRequest struct {
	Kind      Kind        `msgpack:"k"`
	Key       []byte      `msgpack:"y"`
	Partition int         `msgpack:"p"`
	HintFor   string      `msgpack:"h,omitempty"`
	Set       version.Set `msgpack:"s"`
	Write     *plainWrite `msgpack:"w,omitempty"`
	LWW       bool        `msgpack:"l,omitempty"`
	AckOnly   bool        `msgpack:"a,omitempty"`
}

type plainResponse struct {
	Set        version.Set `msgpack:"s"`
	Dot        version.Dot `msgpack:"d"`
	HintStored bool        `msgpack:"h"`
}

func genSet(t *rapid.T, label string) version.Set {
	var s version.Set
	for i := rapid.IntRange(0, 2).Draw(t, label+".n"); i > 0; i-- {
		s.Siblings = append(s.Siblings, version.Sibling{
			Dot:       version.Dot{Node: "n1", Counter: rapid.Uint64Range(1, 1<<40).Draw(t, label+".c")},
			Value:     rapid.SliceOfN(rapid.Byte(), 1, 100).Draw(t, label+".v"),
			WriteTime: rapid.Int64().Draw(t, label+".w"),
		})
	}
	if rapid.Bool().Draw(t, label+".vv") {
		s.Context.VV = map[string]uint64{"n1": rapid.Uint64().Draw(t, label+".vvc")}
	}
	return s
}

func genRequest(t *rapid.T) *Request {
	r := &Request{
		Kind:      Kind(rapid.IntRange(0, 255).Draw(t, "kind")),
		Key:       rapid.SliceOfN(rapid.Byte(), 0, 40).Draw(t, "key"),
		Partition: rapid.IntRange(-1, 1<<16).Draw(t, "part"),
		HintFor:   rapid.SampledFrom([]string{"", "n3"}).Draw(t, "hint"),
		Set:       genSet(t, "set"),
		LWW:       rapid.Bool().Draw(t, "lww"),
		AckOnly:   rapid.Bool().Draw(t, "ackonly"),
	}
	if rapid.Bool().Draw(t, "write") {
		r.Write = &WriteRequest{
			Context:     genSet(t, "ctx").Context,
			Value:       rapid.SliceOfN(rapid.Byte(), 0, 200).Draw(t, "value"),
			ContentType: rapid.SampledFrom([]string{"", "text/plain"}).Draw(t, "ct"),
			Deleted:     rapid.Bool().Draw(t, "del"),
		}
	}
	return r
}

func toPlainRequest(r *Request) plainRequest {
	p := plainRequest{Kind: r.Kind, Key: r.Key, Partition: r.Partition, HintFor: r.HintFor, Set: r.Set, LWW: r.LWW, AckOnly: r.AckOnly}
	if r.Write != nil {
		w := plainWrite(*r.Write)
		p.Write = &w
	}
	return p
}

// The hand-written request codec and msgpack's reflection read each
// other's output, and write the same bytes when integers are compact.
func TestPropertyRequestCodecMatchesReflection(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := genRequest(t)
		mine, err := wire.Marshal(r, r.SizeHint())
		if err != nil {
			t.Fatal(err)
		}
		if len(mine) > r.SizeHint() {
			t.Fatalf("encoded %d bytes, SizeHint %d", len(mine), r.SizeHint())
		}
		var p plainRequest
		if err := msgpack.Unmarshal(mine, &p); err != nil {
			t.Fatalf("reflection cannot read the codec's bytes: %v", err)
		}
		if want := toPlainRequest(r); !reflect.DeepEqual(p, want) {
			t.Fatalf("codec -> reflection:\n got %#v\nwant %#v", p, want)
		}
		var buf bytes.Buffer
		enc := msgpack.NewEncoder(&buf)
		enc.UseCompactInts(true)
		if err := enc.Encode(toPlainRequest(r)); err != nil {
			t.Fatal(err)
		}
		var back Request
		if err := msgpack.Unmarshal(buf.Bytes(), &back); err != nil {
			t.Fatalf("codec cannot read reflection's bytes: %v", err)
		}
		if !reflect.DeepEqual(&back, r) {
			t.Fatalf("reflection -> codec:\n got %#v\nwant %#v", &back, r)
		}
		if !bytes.Equal(buf.Bytes(), mine) {
			t.Fatalf("encodings differ:\ncodec      %x\nreflection %x", mine, buf.Bytes())
		}
	})
}

func TestPropertyResponseCodecMatchesReflection(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		r := &Response{
			Set:        genSet(t, "set"),
			Dot:        version.Dot{Node: rapid.SampledFrom([]string{"", "n2"}).Draw(t, "node"), Counter: rapid.Uint64().Draw(t, "c")},
			HintStored: rapid.Bool().Draw(t, "hint"),
		}
		mine, err := wire.Marshal(r, r.SizeHint())
		if err != nil {
			t.Fatal(err)
		}
		if len(mine) > r.SizeHint() {
			t.Fatalf("encoded %d bytes, SizeHint %d", len(mine), r.SizeHint())
		}
		var p plainResponse
		if err := msgpack.Unmarshal(mine, &p); err != nil {
			t.Fatalf("reflection cannot read the codec's bytes: %v", err)
		}
		if want := plainResponse(*r); !reflect.DeepEqual(p, want) {
			t.Fatalf("codec -> reflection:\n got %#v\nwant %#v", p, want)
		}
		var back Response
		if err := msgpack.Unmarshal(mine, &back); err != nil || !reflect.DeepEqual(&back, r) {
			t.Fatalf("round trip: %v\n got %#v\nwant %#v", err, &back, r)
		}
	})
}

func TestRequestDecodeRejects(t *testing.T) {
	enc := func(v any) []byte {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var r Request
	if err := msgpack.Unmarshal(enc(map[string]any{"k": 1, "future": "x", "w": nil}), &r); err != nil || r.Kind != 1 || r.Write != nil {
		t.Fatalf("unknown field and nil write: %#v, %v", r, err)
	}
	for name, b := range map[string][]byte{
		"kind too large":      enc(map[string]any{"k": 256}),
		"kind negative":       enc(map[string]any{"k": -1}),
		"partition too large": enc(map[string]any{"p": int64(1) << 40}),
		"write not a map":     enc(map[string]any{"w": []any{1}}),
		"write value is int":  enc(map[string]any{"w": map[string]any{"v": 3}}),
		"not a map":           enc([]any{1, 2}),
	} {
		var r Request
		if err := msgpack.Unmarshal(b, &r); err == nil {
			t.Errorf("%s: decoded without error: %#v", name, r)
		}
	}
}

// FuzzRequestDecode feeds arbitrary bytes to the request decoder after the
// same vetting the node applies: it must return an error or a request that
// encodes and decodes to itself.
func FuzzRequestDecode(f *testing.F) {
	seed, _ := wire.Marshal(&Request{Kind: KindApply, Key: []byte("k"), Write: &WriteRequest{Value: []byte("v")}}, 64)
	f.Add(seed)
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		if wire.Check(b) != nil {
			return
		}
		var r Request
		if err := msgpack.Unmarshal(b, &r); err != nil {
			return
		}
		again, err := wire.Marshal(&r, r.SizeHint())
		if err != nil {
			t.Fatal(err)
		}
		var back Request
		if err := msgpack.Unmarshal(again, &back); err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if !reflect.DeepEqual(&back, &r) {
			t.Fatalf("round trip changed the request:\n got %#v\nwant %#v", &back, &r)
		}
	})
}
