package node_test

import (
	"strings"
	"testing"

	"github.com/quorumkv/quorumkv/internal/testcluster"
	"github.com/quorumkv/quorumkv/quorum"
)

// A replica that missed a write is brought up to date by a single read at
// r=all, and the receipt says so.
func TestReadRepairFixesStaleReplica(t *testing.T) {
	c := testcluster.Start(t, 3)
	// n1's requests to n3 fail while the write happens: n3 misses it, and
	// with n3 still trusted no hint is kept.
	c.Net.Block("n1.rpc", "n3.rpc", true)
	r := c.Do(0, "PUT", "/v1/kv/b/stale?w=2", []byte("fresh"), nil)
	c.Net.Block("n1.rpc", "n3.rpc", false)
	if r.Status != 204 {
		t.Fatalf("PUT: %d %s", r.Status, r.Body)
	}
	if rc := quorum.ParseReceipt(r.Header); len(rc.Hinted) != 0 {
		t.Fatalf("n3 was trusted, yet a hint was kept: %+v", rc)
	}
	if s := replicaSet(t, c, 2, "b", "stale"); !s.IsEmpty() {
		t.Fatalf("n3 should have missed the write, holds %v", s.Dots())
	}
	r = c.Do(1, "GET", "/v1/kv/b/stale?r=all", nil, nil)
	if r.Status != 200 || string(r.Body) != "fresh" {
		t.Fatalf("GET r=all: %d %q", r.Status, r.Body)
	}
	rc := quorum.ParseReceipt(r.Header)
	if rc.Versions != 2 || len(rc.Repaired) != 1 || rc.Repaired[0] != "n3" {
		t.Fatalf("receipt %+v: want 2 versions seen and n3 repaired", rc)
	}
	s := replicaSet(t, c, 2, "b", "stale")
	if len(s.Siblings) != 1 || string(s.Siblings[0].Value) != "fresh" {
		t.Fatalf("after read repair n3 holds %v", s.Dots())
	}
	if !s.Equal(replicaSet(t, c, 0, "b", "stale")) {
		t.Fatal("n3 and n1 differ after read repair")
	}
	c.Eventually(5e9, "the repair to be counted in /metrics", func() bool {
		return strings.Contains(string(c.Do(1, "GET", "/metrics", nil, nil).Body), "quorumkv_coordinator_replicas_repaired_total 1")
	})
	// A second read finds the replicas in agreement.
	r = c.Do(0, "GET", "/v1/kv/b/stale?r=all", nil, nil)
	if rc := quorum.ParseReceipt(r.Header); rc.Versions != 1 || len(rc.Repaired) != 0 {
		t.Fatalf("second read receipt %+v", rc)
	}
}
