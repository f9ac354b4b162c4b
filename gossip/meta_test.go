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
			Seen:       1<<64 - 1,
			Synced:     1<<64 - 1,
			Intent:     IntentRemove,
			Staged:     true,
			Seed:       strings.Repeat("d", MaxIDLen),
			IntentVer:  1<<63 - 1,
		},
		Ver: 1<<63 - 1,
	}
}

// maxBroadcast is the largest member broadcast that memberlist's default
// UDP packet (1400 bytes) carries with room for its own framing.
const maxBroadcast = 1200

func TestMetaSizeBound(t *testing.T) {
	b, err := encodeMeta(maxMeta())
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > memberlist.MetaMaxSize {
		t.Fatalf("largest meta encodes to %d bytes, limit %d", len(b), memberlist.MetaMaxSize)
	}
	t.Logf("largest node meta: %d of %d bytes", len(b), memberlist.MetaMaxSize)
	got, err := decodeMeta(b)
	if want := nodeOwned(maxMeta()); err != nil || got != want {
		t.Fatalf("round trip = %+v, %v; want the node-owned fields %+v", got, err, want)
	}
	// With the operator group the entry would not fit in node metadata:
	// it travels whole in member broadcasts and push-pull state.
	whole, err := marshal(metaFormat, toWire(maxMeta()))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("largest whole entry: %d bytes", len(whole))
	msg, err := encodeMessage(kindMember, toWire(maxMeta()))
	if err != nil {
		t.Fatal(err)
	}
	if len(msg) > maxBroadcast {
		t.Fatalf("largest member broadcast is %d bytes, want at most %d", len(msg), maxBroadcast)
	}
	dm, err := decodeMessage(msg)
	if err != nil || dm.member == nil || *dm.member != maxMeta() {
		t.Fatalf("member message round trip = %+v, %v", dm.member, err)
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
		{"intent join", func(m *Meta) { m.Intent = IntentJoin }, true},
		{"intent leave", func(m *Meta) { m.Intent = IntentLeave }, true},
		{"intent remove staged", func(m *Meta) { m.Intent, m.Staged = IntentRemove, true }, true},
		{"unknown intent", func(m *Meta) { m.Intent = "evict" }, false},
		{"longest seed", func(m *Meta) { m.Seed = strings.Repeat("x", MaxIDLen) }, true},
		{"long seed", func(m *Meta) { m.Seed = strings.Repeat("x", MaxIDLen+1) }, false},
		{"negative intent version", func(m *Meta) { m.IntentVer = -1 }, false},
		{"progress fingerprints", func(m *Meta) { m.Seen, m.Synced = 1<<64-1, 7 }, true},
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

func TestMetaDefaults(t *testing.T) {
	old := Meta{ID: "a", Cluster: "c", State: StateUp}
	if got := old.MemberIntent(); got != IntentJoin {
		t.Errorf("MemberIntent of an entry without intent = %q, want %q", got, IntentJoin)
	}
	if got := old.RingSeed(); got != "a" {
		t.Errorf("RingSeed without seed = %q, want the ID", got)
	}
	set := Meta{ID: "a", Intent: IntentLeave, Seed: "b"}
	if set.MemberIntent() != IntentLeave || set.RingSeed() != "b" {
		t.Errorf("MemberIntent, RingSeed = %q, %q; want leave, b", set.MemberIntent(), set.RingSeed())
	}
}

func TestOpGroupSupersedes(t *testing.T) {
	for _, tc := range []struct {
		name string
		a, b opGroup
		want bool
	}{
		{"higher version wins", opGroup{Intent: IntentJoin, IntentVer: 2}, opGroup{Intent: IntentRemove, Staged: true, IntentVer: 1}, true},
		{"lower version loses", opGroup{Intent: IntentRemove, IntentVer: 1}, opGroup{Intent: IntentJoin, IntentVer: 2}, false},
		{"equal does not supersede", opGroup{Intent: IntentLeave, IntentVer: 3}, opGroup{Intent: IntentLeave, IntentVer: 3}, false},
		{"any set group beats none", opGroup{Intent: IntentJoin}, opGroup{}, true},
		{"none beats nothing", opGroup{}, opGroup{Intent: IntentJoin}, false},
		{"tie: staged beats unstaged", opGroup{Intent: IntentJoin, Staged: true}, opGroup{Intent: IntentJoin}, true},
		{"tie: broken by intent", opGroup{Intent: IntentLeave}, opGroup{Intent: IntentJoin, Staged: true}, true},
		{"tie: broken by seed", opGroup{Intent: IntentJoin, Seed: "z"}, opGroup{Intent: IntentJoin, Seed: "a"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.supersedes(tc.b); got != tc.want {
				t.Fatalf("supersedes = %v, want %v", got, tc.want)
			}
		})
	}
}

// The operator group merges on its own version, whatever the node-owned
// version says, and on the local node's own entry too.
func TestMergeIntentGroup(t *testing.T) {
	entry := func(ver int64, http, intent string, iver int64) versioned {
		return versioned{Meta: Meta{ID: "x", Cluster: "c", HTTPAddr: http, State: StateUp, Joined: 5,
			Intent: intent, IntentVer: iver}, Ver: ver}
	}
	tomb := func(ver int64, intent string, iver int64) versioned {
		v := entry(ver, "", intent, iver)
		v.Meta.State = StateRemoved
		return v
	}
	for _, tc := range []struct {
		name      string
		self      bool // the table is x's own
		cur, in   versioned
		want      versioned
		unchanged bool
	}{
		{
			name: "newer intent on an older entry",
			cur:  entry(9, "new", IntentJoin, 1), in: entry(2, "old", IntentLeave, 7),
			want: entry(9, "new", IntentLeave, 7),
		},
		{
			name: "newer entry with an older intent",
			cur:  entry(2, "old", IntentLeave, 7), in: entry(9, "new", IntentJoin, 1),
			want: entry(9, "new", IntentLeave, 7),
		},
		{
			name: "node metadata carries no group and changes none",
			cur:  entry(2, "old", IntentLeave, 7), in: nodeOwned(entry(3, "new", IntentJoin, 9)),
			want: entry(3, "new", IntentLeave, 7),
		},
		{
			name: "self takes the operator's intent and keeps its own fields",
			self: true,
			cur:  entry(9, "mine", IntentJoin, 0), in: entry(2, "stale", IntentLeave, 7),
			want: entry(9, "mine", IntentLeave, 7),
		},
		{
			name: "self keeps a newer intent",
			self: true,
			cur:  entry(9, "mine", IntentLeave, 8), in: entry(2, "stale", IntentJoin, 7),
			want: entry(9, "mine", IntentLeave, 8), unchanged: true,
		},
		{
			name: "tombstone beats a newer intent",
			cur:  tomb(1, IntentRemove, 3), in: entry(9, "h", IntentJoin, 99),
			want: tomb(1, IntentRemove, 3), unchanged: true,
		},
		{
			name: "tombstone wins whole",
			cur:  entry(9, "h", IntentJoin, 99), in: tomb(1, IntentRemove, 3),
			want: tomb(1, IntentRemove, 3),
		},
		{
			name: "tombstones tie on the node fields: the group decides",
			cur:  tomb(1, IntentRemove, 3), in: tomb(1, IntentLeave, 4),
			want: tomb(1, IntentLeave, 4),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			owner := "other"
			if tc.self {
				owner = "x"
			}
			tb := newTable(owner, "c")
			tb.setMember(tc.cur)
			changed, err := tb.mergeMember(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got := tb.members["x"]; got != tc.want || changed == tc.unchanged {
				t.Fatalf("merged %+v, changed %v;\nwant %+v, changed %v", got, changed, tc.want, !tc.unchanged)
			}
		})
	}
}
