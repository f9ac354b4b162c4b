package quorum

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/version"
)

// A replica refuses every context and set from the network that names a
// counter (or write time) past version.CounterBound of its clock: the
// apply's context, a merge (replication, read repair, a hint handed back)
// and a hint kept for another node. It stores nothing, answers with
// CodeImplausible, and the key stays writable.
func TestReplicaRefusesImplausibleVersions(t *testing.T) {
	clk := clock.NewFake()
	bound := version.CounterBound(clk.Now())
	forged := func(counter uint64) version.Set {
		return version.Set{
			Siblings: []version.Sibling{{Dot: version.Dot{Node: "x", Counter: counter}, Value: []byte("forged"), WriteTime: 1}},
			Context:  version.Context{VV: map[string]uint64{"x": counter}},
		}
	}
	lateWrite := written("x", "late")
	lateWrite.Siblings[0].WriteTime = math.MaxInt64
	for _, tc := range []struct {
		name string
		req  Request
	}{
		{"apply at MaxCounter", Request{Kind: KindApply, Write: &WriteRequest{Context: version.Context{VV: map[string]uint64{"n1": version.MaxCounter}}, Value: []byte("v")}}},
		{"apply past the slack", Request{Kind: KindApply, Write: &WriteRequest{Context: version.Context{Cloud: []version.Dot{{Node: "n2", Counter: bound + 1}}}, Value: []byte("v")}}},
		{"hinted apply", Request{Kind: KindApply, HintFor: "n2", Write: &WriteRequest{Context: forged(version.MaxCounter).Context}}},
		{"merge at MaxCounter", Request{Kind: KindMerge, Set: forged(version.MaxCounter)}},
		{"merge past the slack", Request{Kind: KindMerge, Set: forged(bound + 1)}},
		{"hint past the slack", Request{Kind: KindMerge, HintFor: "n2", Set: forged(bound + 1)}},
		{"merge written at MaxInt64", Request{Kind: KindMerge, Set: lateWrite}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, hints := mapStore{}, mapHints{}
			r := NewReplica(ReplicaConfig{Self: "n1", MaxSiblings: 10}, st, hints, clk)
			req := tc.req
			req.Key = []byte("k")
			_, err := r.Handle(context.Background(), &req)
			var ce *CodedError
			if !errors.Is(err, ErrImplausible) || !errors.Is(err, version.ErrImplausible) || !errors.As(err, &ce) || ce.Code() != CodeImplausible {
				t.Fatalf("Handle = %v, want ErrImplausible coded %s", err, CodeImplausible)
			}
			if !st["k"].IsEmpty() || !hints["n2/k"].IsEmpty() {
				t.Fatalf("stored after a refusal: data %+v, hint %+v", st["k"], hints["n2/k"])
			}
			if got := r.HLC().Now(); got > clk.Now().UnixNano()+1 {
				t.Fatalf("the HLC moved to %d on a refused set", got)
			}
			// The key stays writable.
			for i := range 3 {
				resp, err := r.Handle(context.Background(), &Request{Kind: KindApply, Key: []byte("k"),
					Write: &WriteRequest{Context: st["k"].Context, Value: []byte{byte(i)}}})
				if err != nil || len(resp.Set.Siblings) != 1 {
					t.Fatalf("write %d after the refusal: %v", i, err)
				}
			}
		})
	}
}

// What real nodes issue passes: counters of a node whose clock runs a
// year ahead, that restarted ten thousand times (each restart skips a
// reservation of 2^20 counters), or that issued a billion dots; write
// times from a clock a year ahead; hints replayed a year late.
func TestReplicaAcceptsRealVersions(t *testing.T) {
	clk := clock.NewFake()
	now := uint64(clk.Now().UnixMicro())
	year := uint64((365 * 24 * time.Hour).Microseconds())
	for _, tc := range []struct {
		name    string
		counter uint64
		wt      int64
	}{
		{"clock a year ahead", now + year, clk.Now().Add(365 * 24 * time.Hour).UnixNano()},
		{"restarted 10000 times", now + 10000<<20, clk.Now().UnixNano()},
		{"a billion dots", now + 1e9, clk.Now().UnixNano()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, hints := mapStore{}, mapHints{}
			r := NewReplica(ReplicaConfig{Self: "n1", MaxSiblings: 10}, st, hints, clk)
			set := version.Set{
				Siblings: []version.Sibling{{Dot: version.Dot{Node: "n9", Counter: tc.counter}, Value: []byte("v"), WriteTime: tc.wt}},
				Context:  version.Context{VV: map[string]uint64{"n9": tc.counter}},
			}
			ctx := context.Background()
			if _, err := r.Handle(ctx, &Request{Kind: KindMerge, Key: []byte("k"), HintFor: "n2", Set: set}); err != nil {
				t.Fatalf("hint: %v", err)
			}
			if _, err := r.Handle(ctx, &Request{Kind: KindMerge, Key: []byte("k"), Set: set}); err != nil || !st["k"].Equal(set) {
				t.Fatalf("merge: %v, stored %+v", err, st["k"])
			}
			clk.Advance(365 * 24 * time.Hour) // the hint is handed back a year late
			if _, err := r.Handle(ctx, &Request{Kind: KindMerge, Key: []byte("k2"), Set: hints["n2/k"]}); err != nil {
				t.Fatalf("late hint: %v", err)
			}
			resp, err := r.Handle(ctx, &Request{Kind: KindApply, Key: []byte("k"), Write: &WriteRequest{Context: set.Context, Value: []byte("w")}})
			if err != nil || len(resp.Set.Siblings) != 1 || string(resp.Set.Siblings[0].Value) != "w" {
				t.Fatalf("apply with the merged context: %v %+v", err, resp)
			}
		})
	}
}

// An apply refused as implausible ends the write with ErrImplausible: no
// other replica is asked to issue it, since each would refuse it alike.
func TestWriteMachineImplausibleEndsTheWrite(t *testing.T) {
	m := NewWrite([]Target{{Node: "n1", Counts: true}, {Node: "n2", Counts: true}, {Node: "n3", Counts: true}}, 2, false, "n1", nil)
	start := m.Start()
	if len(start) != 1 || start[0].Kind != KindApply {
		t.Fatalf("start = %+v", start)
	}
	refusal := &CodedError{code: CodeImplausible, Err: ErrImplausible}
	if out := m.Step(Reply{Target: start[0].Target, Kind: KindApply, Err: refusal}); len(out) != 0 {
		t.Fatalf("after the refusal the machine sent %+v", out)
	}
	if _, err := m.Result(); !m.Done() || !errors.Is(err, ErrImplausible) {
		t.Fatalf("done %v, result %v; want ErrImplausible", m.Done(), err)
	}
}
