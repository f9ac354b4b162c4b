package gossip

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func sampleState() State {
	return State{
		Members: []Meta{
			{ID: "a", Cluster: "c", HTTPAddr: "h:1", RPCAddr: "r:1", Joined: 10, State: StateUp,
				Seen: 3, Synced: 2, Intent: IntentLeave, Staged: true, Seed: "z", IntentVer: 40},
			{ID: "b", Cluster: "c", Joined: 20, State: StateRemoved},
		},
		Buckets: map[string]BucketProps{
			"users": {N: 3, R: 2, W: 2, Conflict: ConflictSiblings, Updated: 5, UpdatedBy: "a"},
		},
		Layout: &Layout{Epoch: 2, Members: []LayoutMember{{ID: "a", Joined: 10, Seed: "z"}, {ID: "c", Joined: 30}}},
	}
}

func TestStateRoundTrip(t *testing.T) {
	s := sampleState()
	b, err := EncodeState(s)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeState(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Fatalf("round trip = %+v, want %+v", got, s)
	}
}

var updateGolden = flag.Bool("update-golden", false, "rewrite testdata/*-v2.bin from the current encoders")

// Persisted states and wire messages of every format version decode. The
// -v1 files were written by the version before operator intents, progress
// fingerprints and layouts; the -v2 ones by the current version
// (-update-golden rewrites them).
func TestFormatGoldens(t *testing.T) {
	v1Member := Meta{ID: "a", Cluster: "c", HTTPAddr: "h:1", RPCAddr: "r:1", GossipAddr: "g:1", Joined: 10, State: StateUp}
	v1State := State{
		Members: []Meta{v1Member, {ID: "b", Cluster: "c", Joined: 20, State: StateRemoved}},
		Buckets: map[string]BucketProps{"users": {N: 3, R: 2, W: 2, Conflict: ConflictSiblings, Updated: 5, UpdatedBy: "a"}},
	}
	v2Member := sampleState().Members[0]
	v2Member.GossipAddr = "g:1"
	if *updateGolden {
		writeGoldens(t, v2Member)
	}
	read := func(t *testing.T, name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	t.Run("state", func(t *testing.T) {
		for _, tc := range []struct {
			file string
			want State
		}{
			{"state-v1.bin", v1State},
			{"state-v2.bin", sampleState()},
		} {
			got, err := DecodeState(read(t, tc.file))
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("%s decodes to %+v, %v; want %+v", tc.file, got, err, tc.want)
			}
		}
		old, _ := DecodeState(read(t, "state-v1.bin"))
		if m := old.Members[0]; m.MemberIntent() != IntentJoin || m.RingSeed() != "a" || old.Layout != nil {
			t.Errorf("old state reads as intent %q, seed %q, layout %v; want join, a, none", m.MemberIntent(), m.RingSeed(), old.Layout)
		}
	})
	t.Run("node meta", func(t *testing.T) {
		for _, tc := range []struct {
			file string
			want Meta
		}{
			{"nodemeta-v1.bin", v1Member},
			{"nodemeta-v2.bin", nodeOwned(versioned{Meta: v2Member}).Meta},
		} {
			got, err := DecodeMeta(read(t, tc.file))
			if err != nil || got != tc.want {
				t.Errorf("%s decodes to %+v, %v; want %+v", tc.file, got, err, tc.want)
			}
		}
	})
	t.Run("member broadcast", func(t *testing.T) {
		for _, tc := range []struct {
			file string
			want Meta
		}{
			{"member-v1.bin", v1Member},
			{"member-v2.bin", v2Member},
		} {
			m, err := decodeMessage(read(t, tc.file))
			if err != nil || m.member == nil || m.member.Meta != tc.want || m.member.Ver != 7 {
				t.Errorf("%s decodes to %+v, %v; want %+v at version 7", tc.file, m.member, err, tc.want)
			}
		}
	})
	t.Run("push-pull", func(t *testing.T) {
		g := bareGossip("z", "c")
		delegate{g}.MergeRemoteState(read(t, "pushpull-v1.bin"), false)
		if m, ok := g.Member("a"); !ok || m.Meta != v1Member {
			t.Errorf("old push-pull state gave a = %+v, %v", m.Meta, ok)
		}
		if m, ok := g.Member("b"); !ok || !m.Meta.Removed() {
			t.Errorf("old push-pull state gave b = %+v, %v", m.Meta, ok)
		}
		delegate{g}.MergeRemoteState(read(t, "pushpull-v2.bin"), false)
		if m, _ := g.Member("a"); m.Meta.group() != v2Member.group() {
			t.Errorf("push-pull state gave a's group %+v, want %+v", m.Meta.group(), v2Member.group())
		}
		if l, ok := g.Layout(); !ok || !l.Equal(*sampleState().Layout) {
			t.Errorf("push-pull state gave layout %+v, %v", l, ok)
		}
		if m := g.Metrics(); m.DecodeErrors != 0 || m.PushPullMerges != 2 {
			t.Errorf("metrics %+v, want 2 merges and no decode errors", m)
		}
	})
}

func writeGoldens(t *testing.T, m Meta) {
	t.Helper()
	v := versioned{Meta: m, Ver: 7}
	st, err := EncodeState(sampleState())
	if err != nil {
		t.Fatal(err)
	}
	meta, err := encodeMeta(v)
	if err != nil {
		t.Fatal(err)
	}
	member, err := encodeMessage(kindMember, toWire(v))
	if err != nil {
		t.Fatal(err)
	}
	tb := newTable("a", "c")
	tb.setMember(v)
	tb.layout = sampleState().Layout
	pp, err := encodeMessage(kindState, tb.wire())
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"state-v2.bin": st, "nodemeta-v2.bin": meta, "member-v2.bin": member, "pushpull-v2.bin": pp,
	} {
		if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDecodeStateRejects(t *testing.T) {
	dup := sampleState()
	dup.Members = append(dup.Members, dup.Members[0])
	badBucket := sampleState()
	badBucket.Buckets["x"] = BucketProps{N: 1, R: 2, W: 1, Conflict: ConflictLWW}
	emptyName := sampleState()
	emptyName.Buckets[""] = DefaultBucketProps()
	badMember := sampleState()
	badMember.Members[0].ID = ""
	badIntent := sampleState()
	badIntent.Members[0].Intent = "evict"
	badLayout := sampleState()
	badLayout.Layout = &Layout{Epoch: 0, Members: []LayoutMember{{ID: "a"}}}
	for _, tc := range []struct {
		name string
		s    State
	}{
		{"duplicate member", dup},
		{"invalid intent", badIntent},
		{"invalid layout", badLayout},
		{"invalid bucket", badBucket},
		{"empty bucket name", emptyName},
		{"invalid member", badMember},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := EncodeState(tc.s)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := DecodeState(b); !errors.Is(err, ErrBadState) {
				t.Fatalf("DecodeState = %v, want ErrBadState", err)
			}
		})
	}
	for _, b := range [][]byte{nil, {stateFormat}, {2, 0x80}, {stateFormat, 0xdd, 0, 1, 0, 0}} {
		if _, err := DecodeState(b); !errors.Is(err, ErrBadState) {
			t.Errorf("DecodeState(%x) = %v, want ErrBadState", b, err)
		}
	}
}

// genUpdate draws a member entry or a bucket update over a small space of
// IDs, versions and contents so collisions and ties are frequent.
type update struct {
	member *versioned
	bucket string
	props  BucketProps
}

func genUpdate(t *rapid.T, label string) update {
	if rapid.Bool().Draw(t, label+"kind") {
		v := genMember(t, label, rapid.SampledFrom([]string{"x", "y", "z"}).Draw(t, label+"id"))
		return update{member: &v}
	}
	return update{
		bucket: rapid.SampledFrom([]string{"b1", "b2"}).Draw(t, label+"bucket"),
		props: BucketProps{
			N:         3,
			R:         rapid.IntRange(1, 3).Draw(t, label+"r"),
			W:         2,
			Conflict:  rapid.SampledFrom([]string{ConflictLWW, ConflictSiblings}).Draw(t, label+"conflict"),
			Updated:   rapid.Int64Range(0, 3).Draw(t, label+"updated"),
			UpdatedBy: rapid.SampledFrom([]string{"x", "y"}).Draw(t, label+"by"),
		},
	}
}

// genMember draws an entry for member id, node-owned fields and operator
// group alike, over a small space so that ties are frequent.
func genMember(t *rapid.T, label, id string) versioned {
	return versioned{
		Meta: Meta{
			ID:        id,
			Cluster:   rapid.SampledFrom([]string{"c", "c", "c", "other"}).Draw(t, label+"cluster"),
			HTTPAddr:  rapid.SampledFrom([]string{"h1", "h2"}).Draw(t, label+"http"),
			State:     rapid.SampledFrom([]string{StateUp, StateUp, StateRemoved}).Draw(t, label+"state"),
			Joined:    rapid.Int64Range(0, 3).Draw(t, label+"joined"),
			Seen:      rapid.Uint64Range(0, 1).Draw(t, label+"seen"),
			Intent:    rapid.SampledFrom([]string{"", IntentJoin, IntentLeave}).Draw(t, label+"intent"),
			Staged:    rapid.Bool().Draw(t, label+"staged"),
			Seed:      rapid.SampledFrom([]string{"", "s"}).Draw(t, label+"seed"),
			IntentVer: rapid.Int64Range(0, 3).Draw(t, label+"intentver"),
		},
		Ver: rapid.Int64Range(0, 3).Draw(t, label+"ver"),
	}
}

func apply(tb *table, u update) {
	if u.member != nil {
		_, _ = tb.mergeMember(*u.member)
		return
	}
	_, _ = tb.mergeBucket(u.bucket, u.props)
}

// The merge is a join: any delivery order, with duplicates, converges.
func TestTableMergeConvergesProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(0, 20).Draw(t, "n")
		ups := make([]update, n)
		for i := range ups {
			ups[i] = genUpdate(t, fmt.Sprint(i))
		}
		order := rapid.Permutation(ups).Draw(t, "order")
		dups := rapid.SliceOfN(rapid.IntRange(0, max(0, n-1)), 0, n).Draw(t, "dups")

		a, b := newTable("self", "c"), newTable("self", "c")
		for _, u := range ups {
			apply(a, u)
		}
		for _, u := range order {
			apply(b, u)
		}
		for _, i := range dups {
			if n > 0 {
				apply(b, ups[i])
			}
		}
		if !reflect.DeepEqual(a.members, b.members) || !reflect.DeepEqual(a.buckets, b.buckets) {
			t.Fatalf("orders disagree:\n%+v %+v\n%+v %+v", a.members, a.buckets, b.members, b.buckets)
		}
		for id, v := range a.members {
			if v.Meta.Cluster != "c" {
				t.Fatalf("member %s of another cluster admitted", id)
			}
		}
		// A live member keeps the earliest join any live copy held.
		for id, v := range a.members {
			if v.Meta.Removed() || v.Meta.Cluster != "c" {
				continue
			}
			want := int64(0)
			for _, u := range ups {
				if u.member != nil && u.member.Meta.ID == id && u.member.Meta.Cluster == "c" && !u.member.Meta.Removed() {
					want = minJoined(want, u.member.Meta.Joined)
				}
			}
			if id != "self" && v.Meta.Joined != want {
				t.Fatalf("member %s joined %d, want the earliest %d", id, v.Meta.Joined, want)
			}
		}
		// Every kept entry is the maximum of what was offered for its key:
		// a live one in its node-owned fields and in its operator group
		// separately.
		for _, u := range ups {
			if u.member != nil && u.member.Meta.Cluster == "c" && u.member.supersedes(a.members[u.member.Meta.ID]) {
				t.Fatalf("kept %+v although %+v supersedes it", a.members[u.member.Meta.ID], *u.member)
			}
			if u.member != nil && u.member.Meta.Cluster == "c" {
				kept := a.members[u.member.Meta.ID]
				if !kept.Meta.Removed() && u.member.Meta.group().supersedes(kept.Meta.group()) {
					t.Fatalf("kept group %+v although %+v supersedes it", kept.Meta.group(), u.member.Meta.group())
				}
			}
			if u.member == nil && u.props.supersedes(a.buckets[u.bucket]) {
				t.Fatalf("kept %+v although %+v supersedes it", a.buckets[u.bucket], u.props)
			}
		}
	})
}

// merge is a join on the entries of one member: commutative, associative
// and idempotent.
func TestMergeIsJoinProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b, c := genMember(t, "a", "x"), genMember(t, "b", "x"), genMember(t, "c", "x")
		if got := merge(a, a); got != a {
			t.Fatalf("merge(a, a) = %+v, want a = %+v", got, a)
		}
		if ab, ba := merge(a, b), merge(b, a); ab != ba {
			t.Fatalf("not commutative:\n%+v\n%+v", ab, ba)
		}
		if l, r := merge(merge(a, b), c), merge(a, merge(b, c)); l != r {
			t.Fatalf("not associative:\n%+v\n%+v", l, r)
		}
		if ab := merge(a, b); merge(ab, a) != ab || merge(ab, b) != ab {
			t.Fatalf("merging an input back changed %+v", ab)
		}
	})
}

// The local node's own entry keeps its node-owned content (outbidding
// newer copies) but takes the greatest operator group and the earliest
// join time offered, whatever the order of delivery.
func TestTableSelfEntryGroupConvergesProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		mine := versioned{Meta: Meta{ID: "me", Cluster: "c", HTTPAddr: "mine", State: StateUp, Joined: 2, Intent: IntentJoin}, Ver: 2}
		n := rapid.IntRange(0, 12).Draw(t, "n")
		ups := make([]versioned, n)
		wantGroup, wantJoined := mine.Meta.group(), mine.Meta.Joined
		for i := range ups {
			ups[i] = genMember(t, fmt.Sprint(i), "me")
			ups[i].Meta.Cluster, ups[i].Meta.State = "c", StateUp
			if g := ups[i].Meta.group(); g.supersedes(wantGroup) {
				wantGroup = g
			}
			wantJoined = minJoined(wantJoined, ups[i].Meta.Joined)
		}
		order := rapid.Permutation(ups).Draw(t, "order")
		var got []Meta
		for _, seq := range [][]versioned{ups, order, append(slices.Clone(order), ups...)} {
			tb := newTable("me", "c")
			tb.setMember(mine)
			for _, v := range seq {
				if _, err := tb.mergeMember(v); err != nil {
					t.Fatal(err)
				}
			}
			m := tb.members["me"].Meta
			if m.group() != wantGroup || m.Joined != wantJoined || compareMeta(m, mine.Meta) != 0 {
				t.Fatalf("self became %+v; want its own fields, group %+v, joined %d", m, wantGroup, wantJoined)
			}
			got = append(got, m)
		}
		if got[0] != got[1] || got[1] != got[2] {
			t.Fatalf("orders disagree: %+v", got)
		}
	})
}

// A member keeps the earliest join time any live copy of its entry held:
// a node restarted on an empty disk (a new first-start time) keeps its
// ring position, and learns it back itself.
func TestTableKeepsEarliestJoin(t *testing.T) {
	first := versioned{Meta: Meta{ID: "n1", Cluster: "c", HTTPAddr: "a", State: StateUp, Joined: 100}, Ver: 1}
	wiped := first
	wiped.Ver, wiped.Meta.Joined, wiped.Meta.HTTPAddr = 50, 900, "b"
	tb := newTable("other", "c")
	tb.setMember(first)
	if changed, _ := tb.mergeMember(wiped); !changed {
		t.Fatal("the newer entry was not taken")
	}
	if got := tb.members["n1"]; got.Meta.Joined != 100 || got.Meta.HTTPAddr != "b" || got.Ver != 50 {
		t.Fatalf("after the wiped node's entry: %+v; want its content with the first join", got)
	}
	self := newTable("n1", "c")
	self.setMember(wiped)
	if changed, _ := self.mergeMember(first); !changed {
		t.Fatal("the node did not take its first join back")
	}
	if got := self.members["n1"]; got.Meta.Joined != 100 || got.Meta.HTTPAddr != "b" || got.Ver != 51 {
		t.Fatalf("self after learning its first join: %+v; want its content, join 100, version 51", got)
	}
}

func TestTableSelfEntryOnlyTombstoned(t *testing.T) {
	tb := newTable("me", "c")
	mine := versioned{Meta: Meta{ID: "me", Cluster: "c", HTTPAddr: "mine", State: StateUp}, Ver: 1}
	tb.setMember(mine)
	older := mine
	older.Ver, older.Meta.HTTPAddr = 0, "theirs"
	if changed, _ := tb.mergeMember(older); changed || tb.members["me"] != mine {
		t.Fatalf("an older remote copy changed self: %+v", tb.members["me"])
	}
	// A newer copy comes from an earlier life whose clock ran ahead: self
	// keeps its content and outbids it, so that it wins once gossiped.
	newer := mine
	newer.Ver, newer.Meta.HTTPAddr = 99, "theirs"
	changed, _ := tb.mergeMember(newer)
	if got := tb.members["me"]; !changed || got.Meta != mine.Meta || got.Ver != 100 || !got.supersedes(newer) {
		t.Fatalf("after a newer remote copy of self: %+v, changed %v; want mine at version 100", got, changed)
	}
	mine = tb.members["me"]
	tomb := mine
	tomb.Meta.State = StateRemoved
	if changed, _ := tb.mergeMember(tomb); !changed || !tb.members["me"].Meta.Removed() {
		t.Fatalf("tombstone of self not applied: %+v", tb.members["me"])
	}
	foreign := versioned{Meta: Meta{ID: "f", Cluster: "other", State: StateUp}}
	if _, err := tb.mergeMember(foreign); !errors.Is(err, ErrWrongCluster) {
		t.Fatalf("foreign member: %v", err)
	}
}

func TestNextVer(t *testing.T) {
	for _, tc := range []struct{ now, cur, want int64 }{
		{100, 5, 100},
		{100, 100, 101},
		{100, 500, 501}, // clock behind the entry: still supersede it
	} {
		if got := nextVer(tc.now, tc.cur); got != tc.want {
			t.Errorf("nextVer(%d, %d) = %d, want %d", tc.now, tc.cur, got, tc.want)
		}
	}
}
