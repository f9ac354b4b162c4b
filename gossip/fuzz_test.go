package gossip

import (
	"os"
	"reflect"
	"testing"

	"github.com/hashicorp/memberlist"
)

func FuzzDecodeMeta(f *testing.F) {
	for _, v := range []versioned{
		{Meta: Meta{ID: "a", Cluster: "c", State: StateUp}, Ver: 1},
		maxMeta(),
	} {
		b, err := encodeMeta(v)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{metaFormat, 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decodeMeta(b)
		if err != nil {
			return
		}
		if err := v.Meta.Validate(); err != nil {
			t.Fatalf("decoded invalid meta %+v: %v", v, err)
		}
		out, err := encodeMeta(v)
		if err != nil {
			t.Fatalf("re-encode %+v: %v", v, err)
		}
		if len(out) > memberlist.MetaMaxSize {
			t.Fatalf("re-encoded to %d bytes", len(out))
		}
		again, err := decodeMeta(out)
		if err != nil || again != v {
			t.Fatalf("round trip %+v -> %+v, %v", v, again, err)
		}
	})
}

func FuzzDecodeState(f *testing.F) {
	b, err := EncodeState(sampleState())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	empty, _ := EncodeState(State{})
	f.Add(empty)
	if b, err = os.ReadFile("testdata/state-v1.bin"); err == nil {
		f.Add(b)
	}
	f.Add([]byte{stateFormat, 0x81, 0xa7, 'm', 'e', 'm', 'b', 'e', 'r', 's', 0xdd, 0, 0, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeState(b)
		if err != nil {
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("decoded invalid state: %v", err)
		}
		out, err := EncodeState(s)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeState(out)
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if len(s.Members) != len(again.Members) || len(s.Buckets) != len(again.Buckets) ||
			(len(s.Members) > 0 && !reflect.DeepEqual(s.Members, again.Members)) ||
			(s.Layout == nil) != (again.Layout == nil) || (s.Layout != nil && !s.Layout.Equal(*again.Layout)) {
			t.Fatalf("round trip changed the state: %+v -> %+v", s, again)
		}
	})
}

func FuzzDecodeMessage(f *testing.F) {
	g := bareGossip("a", "c")
	if _, err := g.SetBucket("users", DefaultBucketProps()); err != nil {
		f.Fatal(err)
	}
	g.tbl.setMember(versioned{Meta: Meta{ID: "b", Cluster: "c", State: StateRemoved}, Ver: 4})
	f.Add(delegate{g}.LocalState(false))
	for _, m := range g.queue.GetBroadcasts(0, 1400) {
		f.Add(m)
	}
	member, _ := encodeMessage(kindMember, toWire(g.tbl.members["b"]))
	f.Add(member)
	withGroup, _ := encodeMessage(kindMember, toWire(maxMeta()))
	f.Add(withGroup)
	if _, err := g.ProposeLayout(layoutOf(2, "a", "b")); err != nil {
		f.Fatal(err)
	}
	f.Add(delegate{g}.LocalState(false))
	lm, _ := encodeMessage(kindLayout, layoutMsg{Cluster: "c", Layout: layoutOf(3, "a", "c")})
	f.Add(lm)
	seeded, _ := encodeMessage(kindLayout, layoutMsg{Cluster: "c", Layout: Layout{Epoch: 1 << 63, Members: []LayoutMember{{ID: "z", Joined: 1, Seed: "y"}}}})
	f.Add(seeded)
	for _, name := range []string{"member-v1.bin", "pushpull-v1.bin", "member-v2.bin", "pushpull-v2.bin"} {
		if b, err := os.ReadFile("testdata/" + name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte{kindState, 0xdf, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{kindLayout, 0x82, 0xa1, 'l', 0x82, 0xa5, 'e', 'p', 'o', 'c', 'h', 0x01, 0xa7, 'm', 'e', 'm', 'b', 'e', 'r', 's', 0xdd, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMessage(b)
		if err != nil {
			return
		}
		if m.member != nil {
			if err := m.member.Meta.Validate(); err != nil {
				t.Fatalf("decoded invalid member: %v", err)
			}
		}
		if m.layout != nil {
			if err := m.layout.Layout.Validate(); err != nil {
				t.Fatalf("decoded invalid layout: %v", err)
			}
			out, err := encodeMessage(kindLayout, *m.layout)
			if err != nil {
				t.Fatal(err)
			}
			again, err := decodeMessage(out)
			if err != nil || again.layout == nil || !again.layout.Layout.Equal(m.layout.Layout) {
				t.Fatalf("layout round trip %+v -> %+v, %v", m.layout, again.layout, err)
			}
		}
		// Whatever decodes must be safe to merge.
		h := bareGossip("z", "c")
		delegate{h}.NotifyMsg(b)
		delegate{h}.MergeRemoteState(b, false)
		for _, mem := range h.Members() {
			if err := mem.Meta.Validate(); err != nil {
				t.Fatalf("merged invalid member %+v", mem)
			}
		}
		for name, p := range h.Buckets() {
			if err := p.Validate(); err != nil || validBucketName(name) != nil {
				t.Fatalf("merged invalid bucket %q %+v", name, p)
			}
		}
		if l, ok := h.Layout(); ok {
			if err := l.Validate(); err != nil {
				t.Fatalf("adopted invalid layout %v: %v", l, err)
			}
		}
	})
}
