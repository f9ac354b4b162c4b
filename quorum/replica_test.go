package quorum

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/version"
)

// mapStore is an in-memory Store with the merge semantics of store.Store.
type mapStore map[string]version.Set

func (s mapStore) Get(k []byte) (version.Set, error) { return s[string(k)].Clone(), nil }

func (s mapStore) UpdateAsync(k []byte, fn func(version.Set) (version.Set, error)) (version.Set, bool, func() error, error) {
	next, err := fn(s[string(k)].Clone())
	if err != nil {
		return version.Set{}, false, nil, err
	}
	s[string(k)] = next
	return next.Clone(), true, nil, nil
}

func (s mapStore) Merge(k []byte, in version.Set) (version.Set, bool, error) {
	s[string(k)] = version.Sync(s[string(k)], in)
	return s[string(k)].Clone(), true, nil
}

// mapCounter is the key under which a mapStore keeps its NextCounter.
const mapCounter = "\x00next"

func (s mapStore) NextCounter() (uint64, error) {
	c := s[mapCounter]
	if c.Context.VV == nil {
		c.Context.VV = map[string]uint64{"": 0}
	}
	c.Context.VV[""]++
	s[mapCounter] = c
	return c.Context.VV[""], nil
}

// mapHints is an in-memory HintSink.
type mapHints map[string]version.Set // owner + "/" + key

func (h mapHints) Store(owner string, _ int, k []byte, set version.Set) (bool, error) {
	h[owner+"/"+string(k)] = version.Sync(h[owner+"/"+string(k)], set)
	return true, nil
}

func (h mapHints) Hint(owner string, k []byte) (version.Set, error) {
	return h[owner+"/"+string(k)].Clone(), nil
}

func written(node, value string) version.Set {
	var s version.Set
	if _, err := s.Update(version.Write{Node: node, Value: []byte(value)}); err != nil {
		panic(err)
	}
	return s
}

func TestReplicaMergeAckOnly(t *testing.T) {
	st, hints := mapStore{}, mapHints{}
	r := NewReplica(ReplicaConfig{Self: "n1", MaxSiblings: 10}, st, hints, clock.NewFake())
	ctx := context.Background()
	in := written("n2", "v")

	resp, err := r.Handle(ctx, &Request{Kind: KindMerge, Key: []byte("k"), Set: in, AckOnly: true})
	if err != nil || !resp.Set.IsEmpty() {
		t.Fatalf("ack-only merge answered %+v, %v; want no set", resp, err)
	}
	if !st["k"].Equal(in) {
		t.Fatalf("ack-only merge did not merge: %+v", st["k"])
	}
	more := written("n3", "w")
	resp, err = r.Handle(ctx, &Request{Kind: KindMerge, Key: []byte("k"), Set: more})
	if err != nil || !resp.Set.Equal(version.Sync(in, more)) {
		t.Fatalf("merge answered %+v, %v; want the merged set", resp, err)
	}
}

// A sloppy read of a fallback answers with the hint it keeps for the
// primary it stands in for, and nothing else: a record of its own for the
// key (a ring that moved left it there) is not an answer, since nothing
// maintains it and it may hold what the replicas deleted and reaped long
// ago. A plain read never sees hints.
func TestReplicaSloppyReadIsTheHintAlone(t *testing.T) {
	st, hints := mapStore{}, mapHints{}
	r := NewReplica(ReplicaConfig{Self: "n4", MaxSiblings: 10}, st, hints, clock.NewFake())
	ctx := context.Background()
	hinted := written("n1", "for n2")
	if _, err := r.Handle(ctx, &Request{Kind: KindMerge, Key: []byte("k"), HintFor: "n2", Set: hinted}); err != nil {
		t.Fatal(err)
	}
	if _, ok := st["k"]; ok {
		t.Fatalf("a hint was stored as data: %+v", st)
	}
	resp, err := r.Handle(ctx, &Request{Kind: KindRead, Key: []byte("k")})
	if err != nil || !resp.Set.IsEmpty() {
		t.Fatalf("a plain read saw the hint: %+v, %v", resp, err)
	}
	st["k"] = written("n9", "stale data")
	resp, err = r.Handle(ctx, &Request{Kind: KindRead, Key: []byte("k"), HintFor: "n2"})
	if err != nil || !resp.Set.Equal(hinted) {
		t.Fatalf("a sloppy read answered %+v, %v; want the hint alone", resp.Set.Dots(), err)
	}
	resp, err = r.Handle(ctx, &Request{Kind: KindRead, Key: []byte("k"), HintFor: "n3"})
	if err != nil || !resp.Set.IsEmpty() {
		t.Fatalf("a read for another owner answered %+v, %v; want nothing", resp.Set.Dots(), err)
	}
}

// A node asked to read a key it does not replicate refuses, so that its
// answer does not count toward R.
func TestReplicaReadOfAKeyItDoesNotReplicate(t *testing.T) {
	st := mapStore{"mine": written("n1", "a"), "theirs": written("n1", "b")}
	cfg := ReplicaConfig{Self: "n1", MaxSiblings: 10, Replicates: func(k []byte) bool { return string(k) == "mine" }}
	r := NewReplica(cfg, st, mapHints{}, clock.NewFake())
	if _, err := r.Handle(context.Background(), &Request{Kind: KindRead, Key: []byte("mine")}); err != nil {
		t.Fatal(err)
	}
	_, err := r.Handle(context.Background(), &Request{Kind: KindRead, Key: []byte("theirs")})
	var ce *CodedError
	if !errors.Is(err, ErrNotReplica) || !errors.As(err, &ce) || ce.Code() != CodeNotReplica {
		t.Fatalf("read of a key n1 does not replicate: %v; want ErrNotReplica, coded", err)
	}
}

// A write is stamped after every sibling it supersedes, even when the
// issuing node's clock is behind the node that wrote them: the hybrid
// logical clock, not the wall clock, orders a last-write-wins bucket.
func TestReplicaStampsAfterWhatItSupersedes(t *testing.T) {
	clk := clock.NewFake()
	st := mapStore{}
	r := NewReplica(ReplicaConfig{Self: "n1", MaxSiblings: 10}, st, mapHints{}, clk)
	future := clk.Now().Add(time.Hour).UnixNano()
	ahead := version.Set{}
	if _, err := ahead.Update(version.Write{Node: "n2", Value: []byte("ahead"), WriteTime: future}); err != nil {
		t.Fatal(err)
	}
	st["k"] = ahead
	resp, err := r.Handle(context.Background(), &Request{Kind: KindApply, Key: []byte("k"), LWW: true,
		Write: &WriteRequest{Context: ahead.Context, Value: []byte("later")}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.Set.Siblings[0].WriteTime; got <= future {
		t.Fatalf("write time %d, want after the superseded %d", got, future)
	}
	// A merge raises the clock too: the next write of any key follows it.
	far := clk.Now().Add(2 * time.Hour).UnixNano()
	other := version.Set{}
	if _, err := other.Update(version.Write{Node: "n3", Value: []byte("x"), WriteTime: far}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Handle(context.Background(), &Request{Kind: KindMerge, Key: []byte("k2"), Set: other}); err != nil {
		t.Fatal(err)
	}
	resp, err = r.Handle(context.Background(), &Request{Kind: KindApply, Key: []byte("k3"), Write: &WriteRequest{Value: []byte("y")}})
	if err != nil || resp.Set.Siblings[0].WriteTime <= far {
		t.Fatalf("write after a merge stamped %v (%v), want after %d", resp.Set.Siblings[0].WriteTime, err, far)
	}
}

// epochStore is a mapStore whose store replaced corrupt records.
type epochStore struct {
	mapStore
	epoch uint64
}

func (s epochStore) ActorEpoch() uint64 { return s.epoch }

// After its store healed a corrupt record, a replica issues dots under a
// new actor name: counters it issued before may live on in other replicas.
func TestReplicaIssuesUnderActorEpoch(t *testing.T) {
	ctx := context.Background()
	for _, tt := range []struct {
		epoch uint64
		want  string
	}{{0, "n1"}, {2, "n1~2"}} {
		r := NewReplica(ReplicaConfig{Self: "n1", MaxSiblings: 10}, epochStore{mapStore{}, tt.epoch}, mapHints{}, clock.NewFake())
		resp, err := r.Handle(ctx, &Request{Kind: KindApply, Key: []byte("k"), Write: &WriteRequest{Value: []byte("v")}})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Dot.Node != tt.want {
			t.Fatalf("epoch %d: dot %v, want actor %s", tt.epoch, resp.Dot, tt.want)
		}
	}
}

// corruptStore fails every read as a store with a corrupt record does.
type corruptStore struct {
	mapStore
	healable bool
}

type fakeCorrupt struct{ healable bool }

func (e fakeCorrupt) Error() string  { return "corrupt record" }
func (e fakeCorrupt) Healable() bool { return e.healable }

func (s corruptStore) Get([]byte) (version.Set, error) {
	return version.Set{}, fmt.Errorf("wrapped: %w", fakeCorrupt{s.healable})
}

// corruptHints fails every hint read as a store with a corrupt hint does.
type corruptHints struct {
	mapHints
	healable bool
}

func (h corruptHints) Hint(string, []byte) (version.Set, error) {
	return version.Set{}, fmt.Errorf("wrapped: %w", fakeCorrupt{h.healable})
}

// A read of a corrupt record, or a sloppy read of a corrupt hint, fails
// with ErrCorruptReplica, coded for the transport, so the coordinator
// repairs the replica; a record in a newer format is an ordinary failure.
func TestReplicaReadOfCorruptRecord(t *testing.T) {
	for _, healable := range []bool{true, false} {
		for _, tt := range []struct {
			name    string
			st      Store
			hints   HintSink
			hintFor string
		}{
			{"record", corruptStore{mapStore{}, healable}, mapHints{}, ""},
			{"hint", mapStore{}, corruptHints{mapHints{}, healable}, "n2"},
		} {
			r := NewReplica(ReplicaConfig{Self: "n1", MaxSiblings: 10}, tt.st, tt.hints, clock.NewFake())
			_, err := r.Handle(context.Background(), &Request{Kind: KindRead, Key: []byte("k"), HintFor: tt.hintFor})
			var ce *CodedError
			if got := errors.Is(err, ErrCorruptReplica) && errors.As(err, &ce) && ce.Code() == CodeCorrupt; got != healable {
				t.Fatalf("%s, healable=%v: err %v", tt.name, healable, err)
			}
			if err == nil {
				t.Fatalf("%s: a corrupt read succeeded", tt.name)
			}
		}
	}
}

// fullHints is a HintSink whose owners' budgets are all full.
type fullHints struct{ mapHints }

func (fullHints) Store(string, int, []byte, version.Set) (bool, error) { return false, nil }

// A fallback that issues the dot (no primary could) keeps the write as a
// hint for the primary it stands in for, durable before the ack, and not
// in its own data: the node-wide dot counter keeps the dot from being
// issued again. Through ApplyAsync (the coordinator's own replica) too,
// with nothing left to wait for.
func TestReplicaFallbackApplyKeepsHint(t *testing.T) {
	ctx := context.Background()
	for _, async := range []bool{false, true} {
		st, hints := mapStore{}, mapHints{}
		r := NewReplica(ReplicaConfig{Self: "n4", MaxSiblings: 10}, st, hints, clock.NewFake())
		req := &Request{Kind: KindApply, Key: []byte("k"), HintFor: "n1", Write: &WriteRequest{Value: []byte("v")}}
		var resp *Response
		var err error
		if async {
			var wait func() error
			resp, wait, err = r.ApplyAsync(ctx, req)
			if wait != nil {
				t.Fatal("a fallback's apply left a wait: its hint would not be durable at the ack")
			}
		} else {
			resp, err = r.Handle(ctx, req)
		}
		if err != nil {
			t.Fatal(err)
		}
		if resp.Dot.Node != "n4~h" || !resp.HintStored {
			t.Fatalf("async=%v: dot %v, hint stored %v; want a dot of n4's fallback actor and the hint kept", async, resp.Dot, resp.HintStored)
		}
		if _, ok := st["k"]; ok || !hints["n1/k"].Equal(resp.Set) {
			t.Fatalf("async=%v: record %v, hint for n1 %v; want only the hint %v", async, st["k"].Dots(), hints["n1/k"].Dots(), resp.Set.Dots())
		}
		// A second write through the same fallback supersedes the first
		// with a new dot.
		req.Write = &WriteRequest{Context: resp.Set.Context, Value: []byte("w")}
		resp2, err := r.Handle(ctx, req)
		if err != nil || resp2.Dot == resp.Dot || len(hints["n1/k"].Siblings) != 1 {
			t.Fatalf("second fallback write: %+v %v; hint %v", resp2, err, hints["n1/k"].Dots())
		}
	}
	// With a full hint budget nothing is kept, so the write was not
	// applied: the coordinator may ask another node to issue it.
	r := NewReplica(ReplicaConfig{Self: "n4", MaxSiblings: 10}, mapStore{}, fullHints{}, clock.NewFake())
	_, err := r.Handle(ctx, &Request{Kind: KindApply, Key: []byte("k"), HintFor: "n1", Write: &WriteRequest{Value: []byte("v")}})
	var ce *CodedError
	if !errors.Is(err, ErrNotApplied) || !errors.Is(err, ErrHintRefused) || !errors.As(err, &ce) || ce.Code() != CodeHintRefused {
		t.Fatalf("full budget: %v; want ErrHintRefused and ErrNotApplied, coded", err)
	}
}

// A node that issued a write of a key as a primary, and then issues
// another of the same key as a fallback on a hint, must not drop the
// first: the hint does not hold it, so the second version may not claim
// it as seen. (With one actor and the vector jump, the fallback's version
// covered the primary's, and wherever the two met, the first acknowledged
// write vanished.)
func TestReplicaFallbackDotsDoNotCoverItsPrimaryDots(t *testing.T) {
	ctx := context.Background()
	st, hints := mapStore{}, mapHints{}
	r := NewReplica(ReplicaConfig{Self: "n3", MaxSiblings: 10}, st, hints, clock.NewFake())
	first, err := r.Handle(ctx, &Request{Kind: KindApply, Key: []byte("k"), Write: &WriteRequest{Value: []byte("as primary")}})
	if err != nil {
		t.Fatal(err)
	}
	// A request with a smaller n makes n3 a fallback for n2.
	second, err := r.Handle(ctx, &Request{Kind: KindApply, Key: []byte("k"), HintFor: "n2", Write: &WriteRequest{Value: []byte("as fallback")}})
	if err != nil {
		t.Fatal(err)
	}
	third, err := r.Handle(ctx, &Request{Kind: KindApply, Key: []byte("k"), HintFor: "n1", Write: &WriteRequest{Value: []byte("for another")}})
	if err != nil {
		t.Fatal(err)
	}
	got := version.Sync(version.Sync(first.Set, second.Set), third.Set)
	if len(got.Live()) != 3 {
		t.Fatalf("merged %v: want all three concurrent writes", got.Dots())
	}
}

// On a fallback, a corrupt record of its own does not matter to a sloppy
// read: the fallback answers with its hint alone.
func TestReplicaFallbackOwnCorruptRecord(t *testing.T) {
	hints := mapHints{"n1/k": written("n2", "h")}
	r := NewReplica(ReplicaConfig{Self: "n4", MaxSiblings: 10}, corruptStore{mapStore{}, true}, hints, clock.NewFake())
	resp, err := r.Handle(context.Background(), &Request{Kind: KindRead, Key: []byte("k"), HintFor: "n1"})
	if err != nil || !resp.Set.Equal(hints["n1/k"]) {
		t.Fatalf("sloppy read of a fallback with a corrupt record: %+v, %v; want its hint", resp, err)
	}
}
