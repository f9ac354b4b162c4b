package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/testcluster"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

func rootsEqual(c *testcluster.Cluster) (int, bool) {
	parts := c.Node(0).Ring().PartitionCount()
	differing := 0
	for p := 0; p < parts; p++ {
		r := c.Node(0).AntiEntropy().Forest().Root(p)
		for i := 1; i < c.Size(); i++ {
			if c.Node(i).AntiEntropy().Forest().Root(p) != r {
				differing++
				break
			}
		}
	}
	return differing, differing == 0
}

func suspectedBy(c *testcluster.Cluster, id string, by ...int) bool {
	for _, i := range by {
		if c.Node(i).Detector().Available(id) {
			return false
		}
	}
	return true
}

// Partition one node while 10,000 keys are written, with hints unable to
// help (their budget is full), heal, and run anti-entropy: every replica
// ends with identical trees and identical sibling sets for every key.
func TestConvergencePartitionThenAntiEntropy(t *testing.T) {
	keys := 10000
	if testing.Short() {
		keys = 2000
	}
	c := testcluster.StartWith(t, testcluster.Options{Nodes: 3, Configure: func(_ int, cfg *node.Config) {
		cfg.HintBudget = 1
		cfg.AntiEntropy.BytesPerSecond = 0
	}})
	c.Net.Isolate("n3.rpc")
	c.Eventually(10*time.Second, "n3 to be suspected", func() bool { return suspectedBy(c, "n3", 0, 1) })

	params := quorum.Params{N: 3, R: 2, W: 2, Timeout: 5 * time.Second, Sloppy: true}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			coord := c.Node(w % 2).Coordinator()
			for k := w; k < keys; k += 16 {
				key := store.EncodeKey([]byte("b"), []byte(fmt.Sprintf("key-%05d", k)))
				if _, err := coord.Put(context.Background(), quorum.PutRequest{Key: key, Params: params, Value: []byte(fmt.Sprint("v", k))}); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("write during the partition: %v", err)
	}
	if len(c.Node(0).AntiEntropy().Prioritized())+len(c.Node(1).AntiEntropy().Prioritized()) == 0 {
		t.Fatal("overflowing hints did not prioritize any partition")
	}
	if d, _ := rootsEqual(c); d == 0 {
		t.Fatal("trees agree although n3 missed every write")
	}

	c.Net.Heal()
	c.WaitReachable()
	rounds := 0
	for ; rounds < 5; rounds++ {
		if _, ok := rootsEqual(c); ok {
			break
		}
		for i := 0; i < c.Size(); i++ {
			r := c.Do(i, "POST", "/v1/antientropy/run", nil, nil)
			if r.Status != 200 {
				t.Fatalf("anti-entropy run on n%d: %d %s", i+1, r.Status, r.Body)
			}
		}
	}
	d, ok := rootsEqual(c)
	if !ok {
		t.Fatalf("%d partitions still differ after %d rounds", d, rounds)
	}
	t.Logf("replicas converged after %d anti-entropy round(s) over all nodes", rounds)
	for k := 0; k < keys; k++ {
		key := fmt.Sprintf("key-%05d", k)
		a := replicaSet(t, c, 0, "b", key)
		if len(a.Siblings) != 1 || string(a.Siblings[0].Value) != fmt.Sprint("v", k) {
			t.Fatalf("n1 %s: %v", key, a.Dots())
		}
		for i := 1; i < 3; i++ {
			if b := replicaSet(t, c, i, "b", key); !b.Equal(a) {
				t.Fatalf("n%d %s: %v, n1 holds %v", i+1, key, b.Dots(), a.Dots())
			}
		}
	}
	if p := c.Node(0).AntiEntropy().Prioritized(); len(p) != 0 {
		t.Fatalf("prioritized partitions left after the exchange: %v", p)
	}
}

// Delete a key while one replica is down and still holds the old value.
// When it returns, read repair and anti-entropy bring it the tombstone; the
// key stays deleted on every replica before and after reaping.
func TestTombstoneStaysDeleted(t *testing.T) {
	c := testcluster.StartWith(t, testcluster.Options{Nodes: 3, Configure: func(_ int, cfg *node.Config) {
		cfg.HintBudget = 1                    // no hints: only read repair and anti-entropy can carry the tombstone
		cfg.TombstoneGrace = time.Millisecond // over by the time the test checks
		cfg.AntiEntropy.SweepInterval = 50 * time.Millisecond
		cfg.AntiEntropy.ReapInterval = 50 * time.Millisecond
		cfg.AntiEntropy.BytesPerSecond = 0
	}})
	const path = "/v1/kv/b/doomed"
	if r := c.Do(0, "PUT", path+"?w=all", []byte("old"), nil); r.Status != 204 {
		t.Fatal(r.Status)
	}
	ctx := c.Do(0, "GET", path+"?r=all", nil, nil).Header.Get("X-Context")
	c.Stop(2)
	c.WaitReachable()
	if r := c.Do(0, "DELETE", path+"?w=2", nil, map[string]string{"X-Context": ctx}); r.Status != 204 {
		t.Fatalf("DELETE: %d %s", r.Status, r.Body)
	}
	// The grace period is over, yet with n3 not holding the tombstone a
	// sweep and a reap on the live replicas must not remove it.
	part := c.Node(0).Ring().Partition(store.EncodeKey([]byte("b"), []byte("doomed")))
	for i := 0; i < 2; i++ {
		_, _ = c.Node(i).AntiEntropy().Sweep(context.Background(), part) // n3 cannot answer
		if _, err := c.Node(i).AntiEntropy().Reap(); err != nil {
			t.Fatalf("reap on n%d: %v", i+1, err)
		}
		if s := replicaSet(t, c, i, "b", "doomed"); !s.Deleted() {
			t.Fatalf("n%d reaped or lost the tombstone while n3 was down: %v", i+1, s.Dots())
		}
	}
	c.Restart(2)
	c.WaitReachable()
	if s := replicaSet(t, c, 2, "b", "doomed"); s.Deleted() || len(s.Live()) != 1 {
		t.Fatalf("n3 should still hold the old value: %v", s.Dots())
	}
	// Anti-entropy from n3's side first: the old value must not come back.
	for i := 2; i >= 0; i-- {
		if r := c.Do(i, "POST", "/v1/antientropy/run", nil, nil); r.Status != 200 {
			t.Fatal(r.Status, string(r.Body))
		}
	}
	for i := 0; i < 3; i++ {
		if s := replicaSet(t, c, i, "b", "doomed"); !s.Deleted() && !s.IsEmpty() {
			t.Fatalf("after anti-entropy n%d holds %v (live %d)", i+1, s.Dots(), len(s.Live()))
		}
	}
	if r := c.Do(2, "GET", path+"?r=all", nil, nil); r.Status != 404 {
		t.Fatalf("GET after repair: %d %s", r.Status, r.Body)
	}
	// Every replica holds the tombstone now: a sweep of its partition
	// marks it, and it is reaped everywhere after the grace period.
	for i := 0; i < 3; i++ {
		if _, err := c.Node(i).AntiEntropy().Sweep(context.Background(), part); err != nil {
			t.Fatalf("sweep on n%d: %v", i+1, err)
		}
	}
	c.Eventually(10*time.Second, "the tombstone to be reaped on every replica", func() bool {
		for i := 0; i < 3; i++ {
			if len(replicaSet(t, c, i, "b", "doomed").Siblings) != 0 {
				return false
			}
		}
		return true
	})
	for i := 0; i < 3; i++ {
		if r := c.Do(i, "POST", "/v1/antientropy/run", nil, nil); r.Status != 200 {
			t.Fatal(r.Status)
		}
	}
	for i := 0; i < 3; i++ {
		if s := replicaSet(t, c, i, "b", "doomed"); len(s.Siblings) != 0 {
			t.Fatalf("after reaping, anti-entropy brought back %v on n%d", s.Dots(), i+1)
		}
		if r := c.Do(i, "GET", path+"?r=all", nil, nil); r.Status != 404 {
			t.Fatalf("GET via n%d after reaping: %d %s", i+1, r.Status, r.Body)
		}
	}
	if _, ok := rootsEqual(c); !ok {
		t.Fatal("trees differ after reaping")
	}
}

// A clean restart loads the Merkle trees saved at shutdown instead of
// rebuilding them, and they still agree with the other replicas.
func TestTreesSurviveCleanRestart(t *testing.T) {
	c := testcluster.Start(t, 3)
	for k := 0; k < 200; k++ {
		if r := c.Do(k%3, "PUT", fmt.Sprintf("/v1/kv/b/t%d?w=all", k), []byte("v"), nil); r.Status != 204 {
			t.Fatal(r.Status)
		}
	}
	if d, ok := rootsEqual(c); !ok {
		t.Fatalf("%d partitions differ before the restart", d)
	}
	before := c.Node(0).AntiEntropy().Forest().Root(c.Node(0).Ring().Partition(store.EncodeKey([]byte("b"), []byte("t1"))))
	c.Stop(0)
	c.Restart(0)
	c.WaitReachable()
	if n := c.Node(0).AntiEntropy().Metrics().TreeRebuilds; n != 0 {
		t.Fatalf("clean restart rebuilt %d trees", n)
	}
	after := c.Node(0).AntiEntropy().Forest().Root(c.Node(0).Ring().Partition(store.EncodeKey([]byte("b"), []byte("t1"))))
	if before != after || before == 0 {
		t.Fatalf("root changed across the restart: %x -> %x", before, after)
	}
	if d, ok := rootsEqual(c); !ok {
		t.Fatalf("%d partitions differ after the restart", d)
	}
	// The snapshot is consumed: a second start without a clean shutdown
	// in between would rebuild (checked through the meta value).
	if b, err := c.Node(0).Store().GetMeta("antientropy.trees"); err == nil && len(b) != 0 {
		t.Fatalf("snapshot not consumed at start: %d bytes left", len(b))
	}
}

// A bucket created with a larger n than the default reaches all its
// replicas through anti-entropy: the exchange uses the largest bucket n,
// not the default bucket's, to find a partition's replicas.
func TestAntiEntropyReachesReplicasOfLargerBucket(t *testing.T) {
	c := testcluster.Start(t, 5)
	if r := c.Do(0, "PUT", "/v1/buckets/wide", []byte(`{"n":5,"r":2,"w":2}`), nil); r.Status != 200 {
		t.Fatalf("PUT bucket: %d %s", r.Status, r.Body)
	}
	c.Eventually(10*time.Second, "every node to know the bucket", func() bool {
		for i := 0; i < c.Size(); i++ {
			var b struct{ N int }
			if r := c.Do(i, "GET", "/v1/buckets/wide", nil, nil); json.Unmarshal(r.Body, &b) != nil || b.N != 5 {
				return false
			}
		}
		return true
	})
	key := store.EncodeKey([]byte("wide"), []byte("k"))
	pref, err := c.Node(0).Ring().PreferenceList(key, 5)
	if err != nil {
		t.Fatal(err)
	}
	index := func(id string) int {
		for i := 0; i < c.Size(); i++ {
			if c.Node(i).ID() == string(id) {
				return i
			}
		}
		t.Fatalf("no node %s", id)
		return -1
	}
	first := index(string(pref[0]))
	// A write only the first replica holds, as if the others had all
	// missed it; the fifth is outside the default n=3.
	if _, _, err := c.Node(first).Store().Update(key, func(cur version.Set) (version.Set, error) {
		_, err := cur.Update(version.Write{Node: string(pref[0]), Context: cur.Context, Value: []byte("v"), WriteTime: 1})
		return cur, err
	}); err != nil {
		t.Fatal(err)
	}
	if r := c.Do(first, "POST", "/v1/antientropy/run", nil, nil); r.Status != 200 {
		t.Fatalf("anti-entropy run: %d %s", r.Status, r.Body)
	}
	for i, id := range pref {
		if s := replicaSet(t, c, index(string(id)), "wide", "k"); len(s.Siblings) != 1 || string(s.Siblings[0].Value) != "v" {
			t.Fatalf("replica %d of the key's preference list (%s) holds %v", i+1, id, s.Dots())
		}
	}
}
