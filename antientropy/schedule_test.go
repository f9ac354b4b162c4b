package antientropy

import (
	"bytes"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
)

// Leaves remembered as settled (their keys do not belong on the peer) are
// looked at again once the background round starts over: which nodes
// replicate a key may have changed since, and the new replica must then
// get the keys.
func TestSettledLeavesForgottenEachRound(t *testing.T) {
	var bReplicates atomic.Bool
	cfg := testConfig()
	cfg.Replicates = func(k []byte, node string) bool {
		if bytes.Contains(k, []byte("solo")) && node == "b" {
			return bReplicates.Load()
		}
		return true
	}
	c := newTestCluster(t, cfg, "a", "b")
	for i := range 30 {
		c.write("a", "solo"+strings.Repeat("s", i), "v", false, true)
	}
	a := c.node("a")
	round := func() { // one full background round on a
		for range cfg.Partitions {
			a.svc.tickExchange()
		}
	}
	round()
	if n := c.node("b").st.len(); n != 0 {
		t.Fatalf("b got %d keys it does not replicate", n)
	}
	bReplicates.Store(true) // placement changed: b is now a replica
	round()
	round()
	if n := c.node("b").st.len(); n != 30 {
		t.Fatalf("two rounds after b became a replica it holds %d of 30 keys", n)
	}
}

// A prioritized partition that cannot clear (one of its replicas is down)
// takes every other background tick, not all of them: the round-robin
// still reaches the other partitions.
func TestPriorityDoesNotStarveTheRound(t *testing.T) {
	c := newTestCluster(t, testConfig(), "a", "b", "c")
	a := c.node("a")
	var key string // a key of partition 1, written on a only
	for i := 0; ; i++ {
		key = "k" + strings.Repeat("x", i)
		if a.svc.shape.Partition(xxhash.Sum64(testKey(key))) == 1 {
			break
		}
	}
	c.write("a", key, "v", false, true)
	a.svc.Prioritize(0)
	c.net.setDown("c", true) // partition 0's exchange with c fails: its priority stays
	for range 2 * testConfig().Partitions {
		a.svc.tickExchange()
	}
	if c.node("b").st.len() == 0 {
		t.Fatalf("after two rounds of ticks b still lacks the partition-1 key; prioritized %v", a.svc.Prioritized())
	}
	if got := a.svc.Prioritized(); len(got) != 1 || got[0] != 0 {
		t.Fatalf("prioritized %v, want partition 0 still queued", got)
	}
}

// A node that does not replicate a partition (a fallback whose hint budget
// overflowed) cannot exchange it: Prioritize asks the partition's replicas
// to queue it, and queues nothing itself.
func TestPriorityOnANonReplicaIsForwarded(t *testing.T) {
	cfg := testConfig()
	cfg.N = 2
	c := newTestCluster(t, cfg, "a", "b", "c", "d")
	d := c.node("d")
	p := -1
	for q := range cfg.Partitions {
		if !slices.Contains(c.ring.PartitionsFor("d", 2), q) {
			p = q
			break
		}
	}
	if p < 0 {
		t.Fatal("d replicates every partition")
	}
	replicas, err := c.ring.PartitionPreference(p, 2)
	if err != nil {
		t.Fatal(err)
	}
	replicas = replicas[:2] // the fake lists every member
	d.svc.Prioritize(p)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		queued := 0
		for _, id := range replicas {
			if slices.Contains(c.node(id).svc.Prioritized(), p) {
				queued++
			}
		}
		if queued == len(replicas) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partition %d queued on %d of its replicas %v", p, queued, replicas)
		}
	}
	if got := d.svc.Prioritized(); len(got) != 0 || d.svc.Metrics().PrioritiesForwarded != 1 {
		t.Fatalf("d queued %v and forwarded %d priorities; want none queued, 1 forwarded", got, d.svc.Metrics().PrioritiesForwarded)
	}
}
