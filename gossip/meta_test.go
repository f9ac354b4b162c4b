package gossip

import (
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
)

func maxMeta() versioned {
	return versioned{
		Meta: Meta{
			ID:         strings.Repeat("i", MaxIDLen),
			Cluster:    strings.Repeat("c", MaxClusterLen),
			HTTPAddr:   strings.Repeat("h", MaxAddrLen),
			RPCAddr:    strings.Repeat("r", MaxAddrLen),
			GossipAddr: strings.Repeat("g", MaxAddrLen),
			Joined:     1<<63 - 1,
			State:      strings.Repeat("s", MaxStateLen),
		},
		Ver: 1<<63 - 1,
	}
}

func TestMetaSizeBound(t *testing.T) {
	b, err := encodeMeta(maxMeta())
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > memberlist.MetaMaxSize {
		t.Fatalf("largest meta encodes to %d bytes, limit %d", len(b), memberlist.MetaMaxSize)
	}
	t.Logf("largest meta: %d of %d bytes", len(b), memberlist.MetaMaxSize)
	got, err := decodeMeta(b)
	if err != nil || got != maxMeta() {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
}

func TestMetaValidate(t *testing.T) {
	ok := Meta{ID: "a", Cluster: "c", State: StateUp}
	for _, tc := range []struct {
		name string
		edit func(*Meta)
		ok   bool
	}{
		{"valid", func(*Meta) {}, true},
		{"removed is valid meta", func(m *Meta) { m.State = StateRemoved }, true},
		{"empty id", func(m *Meta) { m.ID = "" }, false},
		{"long id", func(m *Meta) { m.ID = strings.Repeat("x", MaxIDLen+1) }, false},
		{"empty cluster", func(m *Meta) { m.Cluster = "" }, false},
		{"long cluster", func(m *Meta) { m.Cluster = strings.Repeat("x", MaxClusterLen+1) }, false},
		{"long http", func(m *Meta) { m.HTTPAddr = strings.Repeat("x", MaxAddrLen+1) }, false},
		{"long rpc", func(m *Meta) { m.RPCAddr = strings.Repeat("x", MaxAddrLen+1) }, false},
		{"long gossip", func(m *Meta) { m.GossipAddr = strings.Repeat("x", MaxAddrLen+1) }, false},
		{"empty state", func(m *Meta) { m.State = "" }, false},
		{"long state", func(m *Meta) { m.State = strings.Repeat("x", MaxStateLen+1) }, false},
		{"negative joined", func(m *Meta) { m.Joined = -1 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := ok
			tc.edit(&m)
			err := m.Validate()
			if tc.ok != (err == nil) {
				t.Fatalf("Validate = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrBadMeta) {
				t.Fatalf("error %v does not wrap ErrBadMeta", err)
			}
			_, encErr := encodeMeta(versioned{Meta: m, Ver: 1})
			if (encErr == nil) != tc.ok {
				t.Fatalf("encodeMeta = %v, want ok=%v", encErr, tc.ok)
			}
		})
	}
}

func TestDecodeMetaRejects(t *testing.T) {
	good, err := encodeMeta(versioned{Meta: Meta{ID: "a", Cluster: "c", State: StateUp}, Ver: 7})
	if err != nil {
		t.Fatal(err)
	}
	badFields, _ := marshal(metaFormat, metaWire{ID: "", Cluster: "c", State: StateUp})
	negVer, _ := marshal(metaFormat, metaWire{ID: "a", Cluster: "c", State: StateUp, Ver: -1})
	for _, tc := range []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"format only", []byte{metaFormat}},
		{"unknown format", append([]byte{9}, good[1:]...)},
		{"trailing byte", append(append([]byte{}, good...), 0xc0)},
		{"truncated", good[:len(good)-2]},
		{"invalid fields", badFields},
		{"negative version", negVer},
		{"oversize", make([]byte, memberlist.MetaMaxSize+1)},
		{"huge array header", []byte{metaFormat, 0xdd, 0xff, 0xff, 0xff, 0xff}},
		{"huge map header", []byte{metaFormat, 0xdf, 0x7f, 0xff, 0xff, 0xff}},
		{"wrong type", []byte{metaFormat, 0x81, 0xa1, 'i', 0x05}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeMeta(tc.b); err == nil {
				t.Fatal("decoded")
			}
		})
	}
	if m, err := DecodeMeta(good); err != nil || m.ID != "a" {
		t.Fatalf("DecodeMeta(good) = %+v, %v", m, err)
	}
}

func TestVersionedSupersedes(t *testing.T) {
	up := func(ver int64, http string) versioned {
		return versioned{Meta: Meta{ID: "x", Cluster: "c", HTTPAddr: http, State: StateUp}, Ver: ver}
	}
	tomb := func(ver int64) versioned {
		v := up(ver, "")
		v.Meta.State = StateRemoved
		return v
	}
	for _, tc := range []struct {
		name string
		a, b versioned
		want bool
	}{
		{"newer wins", up(2, "h"), up(1, "h"), true},
		{"older loses", up(1, "h"), up(2, "h"), false},
		{"equal does not supersede", up(1, "h"), up(1, "h"), false},
		{"tie broken by content", up(1, "z"), up(1, "a"), true},
		{"tie broken by content, reversed", up(1, "a"), up(1, "z"), false},
		{"old tombstone beats new live entry", tomb(1), up(9, "h"), true},
		{"live entry never beats tombstone", up(9, "h"), tomb(1), false},
		{"newer tombstone wins", tomb(2), tomb(1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.supersedes(tc.b); got != tc.want {
				t.Fatalf("supersedes = %v, want %v", got, tc.want)
			}
		})
	}
}
