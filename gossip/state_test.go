package gossip

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"pgregory.net/rapid"
)

func sampleState() State {
	return State{
		Members: []Meta{
			{ID: "a", Cluster: "c", HTTPAddr: "h:1", RPCAddr: "r:1", Joined: 10, State: StateUp},
			{ID: "b", Cluster: "c", Joined: 20, State: StateRemoved},
		},
		Buckets: map[string]BucketProps{
			"users": {N: 3, R: 2, W: 2, Conflict: ConflictSiblings, Updated: 5, UpdatedBy: "a"},
		},
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

func TestDecodeStateRejects(t *testing.T) {
	dup := sampleState()
	dup.Members = append(dup.Members, dup.Members[0])
	badBucket := sampleState()
	badBucket.Buckets["x"] = BucketProps{N: 1, R: 2, W: 1, Conflict: ConflictLWW}
	emptyName := sampleState()
	emptyName.Buckets[""] = DefaultBucketProps()
	badMember := sampleState()
	badMember.Members[0].ID = ""
	for _, tc := range []struct {
		name string
		s    State
	}{
		{"duplicate member", dup},
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
		v := versioned{
			Meta: Meta{
				ID:       rapid.SampledFrom([]string{"x", "y", "z"}).Draw(t, label+"id"),
				Cluster:  rapid.SampledFrom([]string{"c", "c", "c", "other"}).Draw(t, label+"cluster"),
				HTTPAddr: rapid.SampledFrom([]string{"h1", "h2"}).Draw(t, label+"http"),
				State:    rapid.SampledFrom([]string{StateUp, StateUp, StateRemoved}).Draw(t, label+"state"),
				Joined:   rapid.Int64Range(0, 3).Draw(t, label+"joined"),
			},
			Ver: rapid.Int64Range(0, 3).Draw(t, label+"ver"),
		}
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
		// Every kept entry is the maximum of what was offered for its key.
		for _, u := range ups {
			if u.member != nil && u.member.Meta.Cluster == "c" && u.member.supersedes(a.members[u.member.Meta.ID]) {
				t.Fatalf("kept %+v although %+v supersedes it", a.members[u.member.Meta.ID], *u.member)
			}
			if u.member == nil && u.props.supersedes(a.buckets[u.bucket]) {
				t.Fatalf("kept %+v although %+v supersedes it", a.buckets[u.bucket], u.props)
			}
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
