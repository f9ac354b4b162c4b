package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/quorumkv/quorumkv/internal/faultfs"
	"github.com/quorumkv/quorumkv/internal/simcluster"
	"github.com/quorumkv/quorumkv/node"
)

// diskWriter writes keys through the given nodes in turn, at the default
// w=2, and remembers the acknowledged ones.
type diskWriter struct {
	t      *testing.T
	c      *simcluster.Cluster
	via    []int
	next   int
	acked  []string
	failed []string // "key: status body" of every write that was not acked
}

// write sends one write and reports whether it was acknowledged.
func (w *diskWriter) write() bool {
	w.t.Helper()
	key := fmt.Sprintf("k%04d", w.next)
	via := w.via[w.next%len(w.via)]
	w.next++
	r := simDo(w.t, w.c, via, "PUT", "/v1/kv/b/"+key, []byte("v-"+key), nil)
	if r.Status != 204 {
		w.failed = append(w.failed, fmt.Sprintf("%s via n%d: %d %s", key, via+1, r.Status, r.Body))
		return false
	}
	w.acked = append(w.acked, key)
	return true
}

// ready reads node i's GET /v1/ready.
func ready(t *testing.T, c *simcluster.Cluster, i int) (status int, body map[string]any) {
	t.Helper()
	r := simDo(t, c, i, "GET", "/v1/ready", nil, nil)
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("GET /v1/ready: %d %q: %v", r.Status, r.Body, err)
	}
	return r.Status, body
}

// The disk of one node of three fills while a client writes through the
// other two. The node fails its store, says it is not ready and advertises
// itself unavailable; the others route around it and every write keeps
// succeeding at w=2. When the disk has room again the node reopens its
// store by itself, without a restart, is ready again, hinted handoff (and
// one anti-entropy round, for the writes it refused before the others
// knew) fills it, and every acknowledged write is on every replica.
func TestDiskFullNodeRecoversByItself(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		disk := &faultfs.DiskFull{}
		const full = 2 // n3
		c := simcluster.Start(t, simcluster.Options{Nodes: 3, WrapFS: func(i int, fs vfs.FS) vfs.FS {
			if i == full {
				return disk.Wrap(fs)
			}
			return fs
		}})
		w := &diskWriter{t: t, c: c, via: []int{0, 1}}
		for range 30 {
			w.write()
		}
		if status, body := ready(t, c, full); status != 200 || body["ready"] != true {
			t.Fatalf("GET /v1/ready before the disk fills: %d %v", status, body)
		}

		disk.Set(true)
		n3 := c.Node(full)
		took := c.Await(10*time.Second, "n3 to report itself not ready", func() bool {
			w.write()
			return n3.Ready() != nil
		})
		if err := n3.Ready(); !errors.Is(err, node.ErrStoreFailed) {
			t.Fatalf("Ready = %v, want ErrStoreFailed", err)
		}
		status, body := ready(t, c, full)
		if reason, _ := body["reason"].(string); status != 503 || body["ready"] != false || !strings.Contains(reason, "no space left") {
			t.Fatalf("GET /v1/ready on a full disk: %d %v", status, body)
		}
		t.Logf("n3 not ready %v (simulated) after its disk filled", took)
		took = c.Await(5*time.Second, "n1 and n2 to route around n3", func() bool {
			w.write()
			return !reachable(t, c, 0, "n3") && !reachable(t, c, 1, "n3")
		})
		t.Logf("n1 and n2 route around n3 %v (simulated) later", took)
		// Routed around: writes through the others, and through n3's own
		// coordinator, succeed without it.
		for range 40 {
			w.write()
		}
		c.Advance(500 * time.Millisecond)
		if r := simDo(t, c, full, "PUT", "/v1/kv/b/via-n3", []byte("v-via-n3"), nil); r.Status != 204 {
			t.Fatalf("PUT through n3 while its disk is full: %d %s", r.Status, r.Body)
		}
		w.acked = append(w.acked, "via-n3")
		if len(w.failed) > 0 {
			t.Fatalf("%d writes failed while n3's disk was full, first: %s", len(w.failed), w.failed[0])
		}
		if got := metric(t, c, full, "quorumkv_node_ready"); got != "0" {
			t.Fatalf("quorumkv_node_ready = %s on a failed store", got)
		}

		disk.Set(false)
		took = c.Await(time.Minute, "n3 to reopen its store and be ready", func() bool {
			w.write()
			return n3.Ready() == nil
		})
		t.Logf("n3 ready %v (simulated) after its disk had room again", took)
		if c.Node(full) != n3 {
			t.Fatal("n3 was restarted")
		}
		if status, body := ready(t, c, full); status != 200 || body["ready"] != true {
			t.Fatalf("GET /v1/ready after the reopen: %d %v", status, body)
		}
		c.Await(10*time.Second, "n1 and n2 to trust n3 again", func() bool {
			return reachable(t, c, 0, "n3") && reachable(t, c, 1, "n3")
		})
		c.Await(30*time.Second, "hinted handoff to n3", func() bool { return pendingHints(c) == 0 })
		missing := missingOn(t, c, full, w.acked)
		t.Logf("%d writes acknowledged; after handoff n3 lacks %d (refused before the others knew)", len(w.acked), len(missing))
		if _, err := n3.AntiEntropy().RunOnce(context.Background()); err != nil {
			t.Fatalf("anti-entropy: %v", err)
		}
		for i := range c.Size() {
			if missing := missingOn(t, c, i, w.acked); len(missing) > 0 {
				t.Fatalf("n%d lacks %d acknowledged writes, first %s", i+1, len(missing), missing[0])
			}
		}
		if len(w.failed) > 0 {
			t.Fatalf("%d writes failed, first: %s", len(w.failed), w.failed[0])
		}
		m := n3.Store().Metrics()
		if m.Failed || m.Failures == 0 || m.Reopens != 1 {
			t.Fatalf("n3's store: failed %v, failures %d, reopens %d", m.Failed, m.Failures, m.Reopens)
		}
		if got := metric(t, c, full, "quorumkv_node_ready"); got != "1" {
			t.Fatalf("quorumkv_node_ready = %s after the reopen", got)
		}
	})
}

// reachable reports whether node i's coordinator would send to id.
func reachable(t *testing.T, c *simcluster.Cluster, i int, id string) bool {
	t.Helper()
	for _, m := range c.Node(i).Status().Members {
		if m.ID == id {
			return m.Reachable
		}
	}
	t.Fatalf("n%d does not know %s", i+1, id)
	return false
}

// missingOn lists the keys whose acknowledged value node i's store lacks.
func missingOn(t *testing.T, c *simcluster.Cluster, i int, keys []string) []string {
	t.Helper()
	var out []string
	for _, k := range keys {
		set := replicaSet(t, c, i, "b", k)
		found := false
		for _, s := range set.Siblings {
			found = found || string(s.Value) == "v-"+k
		}
		if !found {
			out = append(out, k)
		}
	}
	return out
}

// metric reads one unlabelled series from node i's /metrics.
func metric(t *testing.T, c *simcluster.Cluster, i int, name string) string {
	t.Helper()
	r := simDo(t, c, i, "GET", "/metrics", nil, nil)
	for _, line := range strings.Split(string(r.Body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return ""
}
