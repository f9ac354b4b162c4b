package node_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/internal/simcluster"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/transport"
)

// Twenty concurrent blind writes of a quarter of the byte cap per key to
// one key, through the three coordinators of a 3-node cluster (the
// defaults' 4 MiB values and 16 MiB cap, scaled down 64 times so that the
// test takes a second rather than a minute and 800 MiB of heap): each is
// acknowledged or refused with 409 key_too_large; no replica's record of
// the key grows past the merge cap (twice the cap per key: half the RPC
// frame by default); every acknowledged write reads back as a sibling; and
// a write with the read's context resolves them and shrinks the record on
// every replica.
func TestLargeSiblings(t *testing.T) {
	const (
		writes  = 20
		valSize = 64 << 10   // 4 MiB / 64
		keyCap  = 256 << 10  // 16 MiB / 64
		bound   = 2 * keyCap // store.Config.MaxMergeBytes as the node sets it
		path    = "/v1/kv/b/big"
	)
	synctest.Test(t, func(t *testing.T) {
		// While the writes run, replica requests take 100 ms: every
		// coordinator issues its writes on its own replica before the
		// others' merges land, as on a busy network, so the merges are
		// what would build a record past the bound.
		var slow atomic.Bool
		c := simcluster.Start(t, simcluster.Options{Nodes: 3, Configure: func(_ int, cfg *node.Config) {
			cfg.Limits.MaxValueSize = valSize
			cfg.Limits.MaxKeyBytes = keyCap
		}, Fate: func(_, _, method string, _ []byte) transport.Fate {
			if slow.Load() && method == "kv" {
				return transport.Fate{Delay: 100 * time.Millisecond}
			}
			return transport.Fate{}
		}})
		before := heapAfterGC()
		val := func(i int) []byte { return bytes.Repeat([]byte{byte('A' + i)}, valSize) }
		status := make([]int, writes)
		var wg sync.WaitGroup
		slow.Store(true)
		for i := range writes {
			wg.Go(func() {
				r := simDo(t, c, i%3, "PUT", path, val(i), nil)
				status[i] = r.Status
				if r.Status != http.StatusNoContent && (r.Status != http.StatusConflict || errorCode(t, r.Body) != "key_too_large") {
					t.Errorf("write %d via n%d: %d %s", i, i%3+1, r.Status, r.Body)
				}
			})
		}
		wg.Wait()
		time.Sleep(time.Second) // simulated: the writes' last merges land or are refused
		slow.Store(false)
		ek := store.EncodeKey([]byte("b"), []byte("big"))
		largest := 0
		for i := range 3 {
			set, err := c.Node(i).Store().Get(ek)
			if err != nil {
				t.Fatal(err)
			}
			size := len(store.EncodeSet(set))
			largest = max(largest, size)
			if size > bound {
				t.Errorf("n%d holds %d siblings in %d bytes, past the bound of %d", i+1, len(set.Siblings), size, bound)
			}
		}
		refusedMerges := uint64(0)
		for i := range 3 {
			refusedMerges += c.Node(i).Store().Metrics().MergesTooLarge
		}
		peak := heapAfterGC()

		r := simDo(t, c, 1, "GET", path+"?r=all", nil, nil)
		var env node.Envelope
		if r.Status != http.StatusMultipleChoices || json.Unmarshal(r.Body, &env) != nil {
			t.Fatalf("read: %d", r.Status)
		}
		have := map[byte]bool{}
		for _, s := range env.Siblings {
			if len(s.Value) == valSize {
				have[s.Value[0]] = true
			}
		}
		acked := 0
		for i, st := range status {
			if st != http.StatusNoContent {
				continue
			}
			acked++
			if !have[byte('A'+i)] {
				t.Errorf("acknowledged write %d is not among the %d siblings read", i, len(env.Siblings))
			}
		}
		t.Logf("%d of %d writes acknowledged, %d siblings read; largest record %d bytes (bound %d); %d merges refused",
			acked, writes, len(env.Siblings), largest, bound, refusedMerges)
		if acked == 0 {
			t.Fatal("no write was acknowledged")
		}

		resolved := []byte("resolved")
		if r := simDo(t, c, 2, "PUT", path+"?w=all", resolved, map[string]string{"X-Context": env.Context}); r.Status != http.StatusNoContent {
			t.Fatalf("resolving write: %d %s", r.Status, r.Body)
		}
		synctest.Wait()
		for i := range 3 {
			set, err := c.Node(i).Store().Get(ek)
			if err != nil {
				t.Fatal(err)
			}
			if size := len(store.EncodeSet(set)); len(set.Siblings) != 1 || size > 4<<10 {
				t.Errorf("n%d after resolving: %d siblings in %d bytes", i+1, len(set.Siblings), size)
			}
		}
		if r := simDo(t, c, 0, "GET", path+"?r=all", nil, nil); r.Status != 200 || !bytes.Equal(r.Body, resolved) {
			t.Fatalf("after resolving: %d", r.Status)
		}
		after := heapAfterGC()
		t.Logf("heap: %d KiB before, %d KiB with the siblings stored, %d KiB after resolving", before>>10, peak>>10, after>>10)
		// Three replicas hold at most the bound each; pebble's memtables
		// and the in-memory WALs hold the record's rewrites until flushed.
		if grown := int64(after) - int64(before); grown > 64<<20 {
			t.Errorf("heap grew by %d KiB", grown>>10)
		}
	})
}
