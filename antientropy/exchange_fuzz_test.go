package antientropy

import (
	"context"
	"errors"
	"testing"

	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/transport"
	"github.com/quorumkv/quorumkv/version"
	"github.com/vmihailenco/msgpack/v5"
)

func msgpackUnmarshal(b []byte, v any) error { return msgpack.Unmarshal(b, v) }

var fuzzMethods = []string{MethodHashes, MethodLeafKeys, MethodFetch, MethodPush, MethodHasTomb, MethodPrioritize}

// FuzzHandleRPC feeds arbitrary bodies to every ae.* method of a started
// service holding a few records: it must answer or fail with an error,
// never panic, and an answer must decode as the method's reply.
func FuzzHandleRPC(f *testing.F) {
	c := newTestCluster(f, testConfig(), "a", "b")
	for i := range 20 {
		c.write("a", string(rune('a'+i)), "v", i%3 == 0, true)
	}
	svc := c.node("a").svc
	code := svc.shape.code()
	var set version.Set
	_, _ = set.Update(version.Write{Node: "b", Deleted: true, WriteTime: 1})
	k := testKey("a")
	h := c.node("a").st.hash(k)
	p := svc.shape.Partition(h)
	rec := Record{Hash: h, Key: k, Set: store.EncodeSet(set)}
	seeds := [][]byte{
		encodeMsg(&HashesRequest{Shape: code, Partition: p, Level: 0, Index: []uint32{0, 1, 63}}),
		encodeMsg(&HashesRequest{Shape: code, Partition: p, Level: svc.shape.Levels() - 1, Index: []uint32{0}}),
		encodeMsg(&LeafKeysRequest{Shape: code, Partition: p, Leaves: []uint32{uint32(svc.shape.Leaf(h)), 5}}),
		encodeMsg(&FetchRequest{Shape: code, Partition: p, Hashes: []uint64{h, h + 1}}),
		encodeMsg(&PushRequest{Shape: code, Partition: p, Records: []Record{rec}}),
		encodeMsg(&HasTombRequest{Shape: code, Partition: p, Items: []Record{rec}}),
		encodeMsg(&PrioritizeRequest{Partition: p}),
		{}, {0x90}, {0xdc, 0xff, 0xff}, {0x95, 0xce, 0, 0, 0, 0},
	}
	for i, b := range seeds {
		for m := range fuzzMethods {
			f.Add(uint8(m+i), b)
		}
	}
	f.Fuzz(func(t *testing.T, m uint8, body []byte) {
		method := fuzzMethods[int(m)%len(fuzzMethods)]
		out, err := svc.HandleRPC(context.Background(), &transport.Request{From: "b", Method: method, Body: body})
		if err != nil {
			if !errors.Is(err, ErrBadRequest) && !errors.Is(err, ErrShapeMismatch) {
				t.Fatalf("%s: unexpected error kind: %v", method, err)
			}
			return
		}
		var resp any
		switch method {
		case MethodHashes:
			resp = &HashesResponse{}
		case MethodLeafKeys:
			resp = &LeafKeysResponse{}
		case MethodFetch:
			resp = &FetchResponse{}
		case MethodPush:
			resp = &PushResponse{}
		case MethodHasTomb:
			resp = &HasTombResponse{}
		case MethodPrioritize:
			resp = &struct{}{}
		}
		if err := decodeMsg(out, resp); err != nil {
			t.Fatalf("%s: reply does not decode: %v", method, err)
		}
	})
}

// FuzzDecodeReplies feeds arbitrary bytes to the reply decoders and the
// leaf list check the exchange driver applies to a peer's answer.
func FuzzDecodeReplies(f *testing.F) {
	s := Shape{PartitionBits: 2, LeafBits: 6, FanoutBits: 2}
	f.Add(encodeMsg(&LeafKeysResponse{Leaves: []LeafList{leafList([]Entry{{Hash: 0x0400000000000000, KeyHash: 7}})}}))
	f.Add(encodeMsg(&LeafKeysResponse{Leaves: []LeafList{{Hashes: []uint64{1}, KeyHashes: nil}}}))
	f.Add(encodeMsg(&FetchResponse{Records: []Record{{Hash: 1, Key: []byte("k"), Set: []byte{1}}}, Served: 1}))
	f.Add(encodeMsg(&HashesResponse{Hashes: []uint64{1, 2, 3}}))
	f.Add([]byte{0x91, 0x91, 0x93, 0x90, 0x90, 0x90})
	f.Fuzz(func(t *testing.T, b []byte) {
		var lk LeafKeysResponse
		if decodeMsg(b, &lk) == nil {
			for i, l := range lk.Leaves {
				es, err := l.entries(s, 0, i%s.Leaves())
				if err != nil {
					if !errors.Is(err, ErrProtocol) {
						t.Fatalf("entries error kind: %v", err)
					}
					continue
				}
				for _, e := range es {
					if s.Partition(e.Hash) != 0 || s.Leaf(e.Hash) != i%s.Leaves() {
						t.Fatalf("accepted entry %+v outside its leaf", e)
					}
				}
				if back := leafList(es); len(back.Hashes) != len(l.Hashes) {
					t.Fatal("round trip lost entries")
				}
			}
		}
		var fr FetchResponse
		_ = decodeMsg(b, &fr)
		var hr HashesResponse
		_ = decodeMsg(b, &hr)
		var pr PushResponse
		_ = decodeMsg(b, &pr)
		var tr HasTombResponse
		_ = decodeMsg(b, &tr)
	})
}

// FuzzCheckMsgpack: whatever checkMsgpack accepts decodes without
// allocating more than a small multiple of the input, and everything the
// encoder produces is accepted.
func FuzzCheckMsgpack(f *testing.F) {
	f.Add(encodeMsg(&LeafKeysResponse{Leaves: []LeafList{leafList([]Entry{{Hash: 1 << 63, KeyHash: 7}})}}))
	f.Add(encodeMsg(&PushRequest{Shape: 1, Records: []Record{{Hash: 1, Key: []byte("k"), Set: []byte("set")}}}))
	f.Add([]byte("\x91\xdd\xdd\xdd\xdd\xaf\x91\x8f"))
	f.Add([]byte{0xdf, 0, 0, 0, 1, 0xa1, 'k', 0xc7, 1, 5, 0})
	f.Add([]byte{0xd8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17})
	f.Fuzz(func(t *testing.T, b []byte) {
		if checkMsgpack(b) != nil {
			return
		}
		var lk LeafKeysResponse
		_ = msgpackUnmarshal(b, &lk)
		var pr PushRequest
		_ = msgpackUnmarshal(b, &pr)
		var v any
		_ = msgpackUnmarshal(b, &v)
		if b2 := encodeMsg(&lk); checkMsgpack(b2) != nil {
			t.Fatal("encoder output rejected")
		}
	})
}

func TestCheckMsgpack(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		ok   bool
	}{
		{"fixint", []byte{0x05}, true},
		{"empty", nil, false},
		{"huge array32", []byte{0x91, 0xdd, 0xdd, 0xdd, 0xdd, 0xdd}, false},
		{"huge map16", []byte{0xde, 0xff, 0xff, 0x01}, false},
		{"array longer than the bytes left", []byte{0x93, 0x01, 0x02}, false},
		{"array that fits", []byte{0x93, 0x01, 0x02, 0x03}, true},
		{"str8 past the end", []byte{0xd9, 0x05, 'a'}, false},
		{"bin32 past the end", []byte{0xc6, 0xff, 0xff, 0xff, 0xff, 0}, false},
		{"ext8", []byte{0xc7, 0x01, 0x05, 0x00}, true},
		{"ext8 truncated", []byte{0xc7, 0x02, 0x05, 0x00}, false},
		{"fixext16", append([]byte{0xd8, 0x01}, make([]byte, 16)...), true},
		{"reserved code", []byte{0xc1}, false},
		{"uint64", []byte{0xcf, 1, 2, 3, 4, 5, 6, 7, 8}, true},
		{"uint64 truncated", []byte{0xcf, 1, 2, 3}, false},
	}
	for _, tc := range tests {
		if err := checkMsgpack(tc.b); (err == nil) != tc.ok {
			t.Errorf("%s: err %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	for _, m := range []any{
		&HashesRequest{Shape: 1, Partition: 3, Level: 2, Index: []uint32{0, 1, 70000}},
		&LeafKeysResponse{Leaves: []LeafList{leafList([]Entry{{Hash: 1, KeyHash: 2}}), {}}},
		&FetchResponse{Records: []Record{{Hash: 1, Key: []byte("k"), Set: make([]byte, 70000)}}, Served: 1},
	} {
		if err := checkMsgpack(encodeMsg(m)); err != nil {
			t.Errorf("%T rejected: %v", m, err)
		}
	}
}
