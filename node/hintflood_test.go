package node_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"testing"
	"testing/synctest"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/handoff"
	"github.com/quorumkv/quorumkv/internal/simcluster"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/transport"
	"github.com/quorumkv/quorumkv/version"
)

// heapAfterGC returns the live heap after a collection.
func heapAfterGC() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// A program floods a node's RPC handler with hints: thousands for owners
// that are not members, which are all refused, and thousands for the real
// members, which are kept only up to the node's total hint budget. The
// node's hint bytes and heap stay bounded, and it serves other clients'
// writes and reads throughout.
func TestHintFlood(t *testing.T) {
	const (
		perOwner = 1 << 20   // roomy: the total budget is what binds
		total    = 256 << 10 // the holder budget under test
		valSize  = 4 << 10
		invented = 4000
		real     = 2000
	)
	synctest.Test(t, func(t *testing.T) {
		c := simcluster.Start(t, simcluster.Options{Nodes: 3, Configure: func(_ int, cfg *node.Config) {
			cfg.HintBudget = perOwner
			cfg.HintBudgetTotal = total
		}})
		n1 := c.Node(0)
		send := func(i int, owner string) error {
			k := store.EncodeKey([]byte("flood"), fmt.Appendf(nil, "k%d", i))
			set := version.Set{
				Siblings: []version.Sibling{{Dot: version.Dot{Node: "n2", Counter: uint64(i + 1)}, Value: bytes.Repeat([]byte{byte(i)}, valSize)}},
				Context:  version.Context{VV: map[string]uint64{"n2": uint64(i + 1)}},
			}
			body, err := msgpack.Marshal(&quorum.Request{Kind: quorum.KindMerge, Key: k, HintFor: owner, Set: set})
			if err != nil {
				t.Fatal(err)
			}
			_, err = n1.ServeRPC(context.Background(), &transport.Request{From: "n2", To: "n1", Method: node.MethodKV, Body: body})
			return err
		}
		// serves checks that n1 still takes and answers other clients.
		serves := func(round int) {
			path := fmt.Sprintf("/v1/kv/b/other%d", round)
			val := fmt.Appendf(nil, "value %d", round)
			if r := simDo(t, c, 0, "PUT", path, val, nil); r.Status != 204 {
				t.Fatalf("write during the flood: %d %s", r.Status, r.Body)
			}
			if r := simDo(t, c, 0, "GET", path, nil, nil); r.Status != 200 || !bytes.Equal(r.Body, val) {
				t.Fatalf("read during the flood: %d %q", r.Status, r.Body)
			}
		}
		before := heapAfterGC()

		for i := range invented {
			err := send(i, fmt.Sprintf("invented-%d", i))
			var coded interface{ Code() string }
			if !errors.As(err, &coded) || coded.Code() != quorum.CodeHintRefused || !errors.Is(err, handoff.ErrNotMember) {
				t.Fatalf("hint %d for an invented owner: %v, want %s (not a member)", i, err, quorum.CodeHintRefused)
			}
			if i%1000 == 0 {
				serves(i)
			}
		}
		var stored, refused int
		var peak int64
		for i := range real {
			err := send(invented+i, c.ID(1+i%2)) // n2, n3: members
			switch {
			case err == nil:
				stored++
			case errors.Is(err, handoff.ErrHolderFull):
				refused++
			default:
				t.Fatalf("hint %d for a member: %v", i, err)
			}
			peak = max(peak, n1.Store().Metrics().HintBytes)
			if i%500 == 0 {
				serves(invented + i)
			}
		}
		after := heapAfterGC()
		hm := n1.Status().HintMetrics
		sm := n1.Store().Metrics()
		t.Logf("member hints: %d stored, %d refused; hint bytes: peak %d, now %d (budget %d); pending %d hints",
			stored, refused, peak, sm.HintBytes, total, hm.PendingHints)
		t.Logf("refused: %d not member, %d holder full; heap %d KiB -> %d KiB",
			hm.RefusedNotMember, hm.RefusedFull, before>>10, after>>10)
		if hm.RefusedNotMember != invented {
			t.Errorf("RefusedNotMember = %d, want %d", hm.RefusedNotMember, invented)
		}
		if stored == 0 || refused == 0 || hm.RefusedFull != uint64(refused) {
			t.Errorf("member hints: %d stored, %d refused (metric %d): want some of each", stored, refused, hm.RefusedFull)
		}
		if peak > total {
			t.Errorf("hint bytes peaked at %d, past the budget of %d", peak, total)
		}
		for owner := range n1.Status().Hints {
			if c.Index(owner) < 0 {
				t.Errorf("n1 keeps figures for non-member %q", owner)
			}
		}
		// What was sent: (invented+real) × 4 KiB ≈ 24 MiB. A node that
		// kept it would hold all of it; this one holds its budget.
		if grown := int64(after) - int64(before); grown > 8<<20 {
			t.Errorf("heap grew by %d KiB during the flood", grown>>10)
		}
		serves(-1)
	})
}
