package quorum

import (
	"context"
	"slices"
	"testing"

	"github.com/rs/zerolog"
	"pgregory.net/rapid"

	"github.com/quorumkv/quorumkv/internal/clock"
)

// pendingPlace is fixedPlace with d joining: d will replace c among the
// key's replicas once the change completes.
type pendingPlace struct{ fixedPlace }

func (pendingPlace) PreferenceList([]byte, int) ([]string, error) {
	return []string{"a", "b", "c", "d"}, nil
}
func (pendingPlace) Pending([]byte, int) []string { return []string{"d"} }

func TestWithPending(t *testing.T) {
	tests := []struct {
		pref, pending []string
		n             int
		want          []string
		wantN         int
	}{
		{[]string{"a", "b", "c", "d", "e"}, nil, 3, []string{"a", "b", "c", "d", "e"}, 3},
		{[]string{"a", "b", "c", "d", "e"}, []string{"e"}, 3, []string{"a", "b", "c", "e", "d"}, 4},
		{[]string{"a", "b", "c"}, []string{"x", "y"}, 3, []string{"a", "b", "c", "x", "y"}, 5},
		{[]string{"a", "b", "c", "d"}, []string{"d"}, 2, []string{"a", "b", "d", "c"}, 3},
	}
	for _, tt := range tests {
		got, n := withPending(tt.pref, tt.n, tt.pending)
		if !slices.Equal(got, tt.want) || n != tt.wantN {
			t.Errorf("withPending(%v, %d, %v) = %v, %d; want %v, %d", tt.pref, tt.n, tt.pending, got, n, tt.want, tt.wantN)
		}
	}
}

// TestPendingWriteNeedsAnExtraAck: with d pending, a w=2 write needs
// three acks among a, b, c and d. With c and d failing, a and b are not
// enough; with only c failing, a, b and d are.
func TestPendingWriteNeedsAnExtraAck(t *testing.T) {
	net := newReplicaNet()
	net.replicas["d"] = NewReplica(ReplicaConfig{Self: "d", MaxSiblings: 10}, mapStore{}, mapHints{}, clock.NewFake())
	cfg := DefaultConfig()
	cfg.Self = "a"
	c, err := New(cfg, func() Placement { return pendingPlace{} }, func(string) bool { return true }, net, clock.Real(), zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := Params{N: 3, R: 2, W: 2, Sloppy: false}
	net.fail["c"], net.fail["d"] = true, true
	if _, err := c.Put(context.Background(), PutRequest{Key: []byte("k"), Params: p, Value: []byte("v")}); err == nil {
		t.Fatal("a w=2 write with a pending replica was acknowledged by two nodes")
	}
	net.mu.Lock()
	net.fail["d"] = false
	net.mu.Unlock()
	res, err := c.Put(context.Background(), PutRequest{Key: []byte("k2"), Params: p, Value: []byte("v")})
	if err != nil {
		t.Fatalf("a, b and d up: %v", err)
	}
	if !slices.Contains(res.Receipt.Replicas, "d") {
		t.Fatalf("receipt %+v does not name the pending replica", res.Receipt)
	}
	if c.Metrics().PendingWrites != 2 {
		t.Fatalf("PendingWrites = %d", c.Metrics().PendingWrites)
	}
}

// TestPendingAckArithmetic is the reason for the extra acks: whatever
// W + p of the n + p targets ack, at least W of them are replicas now and
// at least W are replicas once the change retires p of the current ones
// and promotes the p pending ones.
func TestPendingAckArithmetic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.IntRange(1, 7).Draw(t, "n")
		p := rapid.IntRange(0, n).Draw(t, "p")
		w := rapid.IntRange(1, n).Draw(t, "w")
		// Targets 0..n-1 are current, n..n+p-1 pending; the change
		// retires p current ones, chosen by the draw.
		retired := rapid.SliceOfNDistinct(rapid.IntRange(0, n-1), p, p, rapid.ID[int]).Draw(t, "retired")
		acks := rapid.SliceOfNDistinct(rapid.IntRange(0, n+p-1), w+p, w+p, rapid.ID[int]).Draw(t, "acks")
		cur, next := 0, 0
		for _, a := range acks {
			if a < n {
				cur++
				if !slices.Contains(retired, a) {
					next++
				}
			} else {
				next++
			}
		}
		if cur < w || next < w {
			t.Fatalf("acks %v (retired %v): %d current, %d future replicas, want ≥ %d each", acks, retired, cur, next, w)
		}
	})
}
