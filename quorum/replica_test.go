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

func (s mapStore) MarkReapable([]byte, version.Set, time.Time) error { return nil }

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

func TestReplicaSloppyReadIncludesHint(t *testing.T) {
	st, hints := mapStore{}, mapHints{}
	r := NewReplica(ReplicaConfig{Self: "n4", MaxSiblings: 10}, st, hints, clock.NewFake())
	ctx := context.Background()
	hinted := written("n1", "for n2")
	if _, err := r.Handle(ctx, &Request{Kind: KindMerge, Key: []byte("k"), HintFor: "n2", Set: hinted}); err != nil {
		t.Fatal(err)
	}
	if len(st) != 0 {
		t.Fatalf("a hint was stored as data: %+v", st)
	}
	resp, err := r.Handle(ctx, &Request{Kind: KindRead, Key: []byte("k")})
	if err != nil || !resp.Set.IsEmpty() {
		t.Fatalf("a plain read saw the hint: %+v, %v", resp, err)
	}
	st["k"] = written("n9", "data")
	resp, err = r.Handle(ctx, &Request{Kind: KindRead, Key: []byte("k"), HintFor: "n2"})
	if err != nil || !resp.Set.Equal(version.Sync(st["k"], hinted)) {
		t.Fatalf("a sloppy read answered %+v, %v; want data and hint merged", resp, err)
	}
	resp, err = r.Handle(ctx, &Request{Kind: KindRead, Key: []byte("k"), HintFor: "n3"})
	if err != nil || !resp.Set.Equal(st["k"]) {
		t.Fatalf("a read for another owner answered %+v, %v; want the data only", resp, err)
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

// A fallback that issues the dot (no primary could) keeps the result as
// its own record, which holds the dot's counter, and as a hint for the
// primary it stands in for, durable before the ack. Through ApplyAsync
// (the coordinator's own replica) too, with nothing left to wait for.
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
		if resp.Dot.Node != "n4" || !resp.HintStored {
			t.Fatalf("async=%v: dot %v, hint stored %v; want a dot of n4 and the hint kept", async, resp.Dot, resp.HintStored)
		}
		if !st["k"].Equal(resp.Set) || !hints["n1/k"].Equal(resp.Set) {
			t.Fatalf("async=%v: record %v, hint for n1 %v; want both %v", async, st["k"].Dots(), hints["n1/k"].Dots(), resp.Set.Dots())
		}
	}
	// A full hint budget is reported, not an error: the write succeeds and
	// anti-entropy repairs the primary.
	r := NewReplica(ReplicaConfig{Self: "n4", MaxSiblings: 10}, mapStore{}, fullHints{}, clock.NewFake())
	resp, err := r.Handle(ctx, &Request{Kind: KindApply, Key: []byte("k"), HintFor: "n1", Write: &WriteRequest{Value: []byte("v")}})
	if err != nil || resp.HintStored {
		t.Fatalf("full budget: %+v, %v; want HintStored false and no error", resp, err)
	}
}

// On a fallback, a corrupt record of its own is an ordinary failure: the
// repair of a fallback goes into its hint and would not replace the record.
func TestReplicaFallbackOwnCorruptRecord(t *testing.T) {
	r := NewReplica(ReplicaConfig{Self: "n4", MaxSiblings: 10}, corruptStore{mapStore{}, true}, mapHints{}, clock.NewFake())
	_, err := r.Handle(context.Background(), &Request{Kind: KindRead, Key: []byte("k"), HintFor: "n1"})
	if err == nil || errors.Is(err, ErrCorruptReplica) {
		t.Fatalf("sloppy read of a fallback's corrupt record: %v; want a plain failure", err)
	}
}
