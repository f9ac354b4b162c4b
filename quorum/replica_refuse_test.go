package quorum

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/version"
)

// refusedErr is a HintSink error for a hint the sink may not keep, as
// handoff.RefusedError is.
type refusedErr struct{}

func (refusedErr) Error() string     { return "hint refused: owner is not a member" }
func (refusedErr) HintRefused() bool { return true }

// refusingHints refuses every hint with refusedErr.
type refusingHints struct{ mapHints }

func (refusingHints) Store(string, int, []byte, version.Set) (bool, error) {
	return false, refusedErr{}
}

// cappedStore refuses every merge as too large, as store.Store does past
// its MaxMergeBytes.
type cappedStore struct{ mapStore }

func (cappedStore) Merge([]byte, version.Set) (version.Set, bool, error) {
	return version.Set{}, false, fmt.Errorf("store: merged record too large: %w", version.ErrTooLarge)
}

// A hint the sink refuses (a non-member owner, a full node) and a merge
// the store refuses as too large are answered with coded errors that say
// nothing was applied: hint_refused sends the coordinator to another
// fallback, key_too_large tells it the key must be resolved.
func TestReplicaCodesRefusals(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		st   Store
		h    HintSink
		req  *Request
		code string
		is   error
	}{
		{"hint merge refused", mapStore{}, refusingHints{mapHints{}}, &Request{Kind: KindMerge, Key: []byte("k"), HintFor: "ghost", Set: written("n2", "v")}, CodeHintRefused, ErrHintRefused},
		{"hinted apply refused", mapStore{}, refusingHints{mapHints{}}, &Request{Kind: KindApply, Key: []byte("k"), HintFor: "ghost", Write: &WriteRequest{Value: []byte("v")}}, CodeHintRefused, ErrHintRefused},
		{"merge too large", cappedStore{mapStore{}}, mapHints{}, &Request{Kind: KindMerge, Key: []byte("k"), Set: written("n2", "v")}, CodeKeyTooLarge, version.ErrTooLarge},
	} {
		r := NewReplica(ReplicaConfig{Self: "n1", MaxSiblings: 10}, tc.st, tc.h, clock.NewFake())
		resp, err := r.Handle(ctx, tc.req)
		var ce *CodedError
		if resp != nil || !errors.As(err, &ce) || ce.Code() != tc.code || !errors.Is(err, ErrNotApplied) || !errors.Is(err, tc.is) {
			t.Errorf("%s: %+v %v; want %s, not applied", tc.name, resp, err, tc.code)
		}
	}
}

// A fallback that refuses the write's merge with an error (hint_refused)
// is replaced by the next spare, as one that answers HintStored=false is.
func TestWriteRefusedHintErrorTakesSpare(t *testing.T) {
	m := NewWrite(parseTargets("a,d>b,e>c"), 3, true, "a", []string{"f"})
	m.Start()
	pending := m.Step(Reply{Target: 0, Kind: KindApply, Set: written("a", "v")})
	var sentToSpare bool
	for len(pending) > 0 {
		msg := pending[0]
		sentToSpare = sentToSpare || msg.To == "f"
		r := Reply{Target: msg.Target, Kind: KindMerge}
		if msg.To == "d" {
			r.Err = fmt.Errorf("%w: %w: d: not a member", ErrNotApplied, ErrHintRefused)
		}
		pending = append(pending[1:], m.Step(r)...)
	}
	out, err := m.Result()
	if err != nil || !sentToSpare || out.Receipt.Fallbacks["f"] != "b" {
		t.Fatalf("outcome %+v, %v; want f standing in for b", out.Receipt, err)
	}
}

// When merges refused as too large leave W out of reach, the write fails
// with the byte cap's error (409 key_too_large), not a bare quorum error;
// one refusal with W still reached is an ordinary ack.
func TestWriteMergeTooLarge(t *testing.T) {
	tooLarge := fmt.Errorf("%w: b's record would be too large", ErrKeyTooLarge)
	for _, tc := range []struct {
		w       int
		refused string // replicas that refuse the merge
		wantErr bool
	}{
		{2, "b", false},
		{2, "bc", true},
		{3, "c", true},
	} {
		m := NewWrite(parseTargets("a,b,c"), tc.w, true, "a", nil)
		m.Start()
		pending := m.Step(Reply{Target: 0, Kind: KindApply, Set: written("a", "v")})
		for len(pending) > 0 {
			msg := pending[0]
			r := Reply{Target: msg.Target, Kind: KindMerge}
			for _, n := range tc.refused {
				if msg.To == string(n) {
					r.Err = tooLarge
				}
			}
			pending = append(pending[1:], m.Step(r)...)
		}
		_, err := m.Result()
		var qe *QuorumError
		if got := err != nil; got != tc.wantErr || (got && (!isKeyTooLarge(err) || !errors.As(err, &qe))) {
			t.Errorf("w=%d, %s refusing: %v", tc.w, tc.refused, err)
		}
	}
}
