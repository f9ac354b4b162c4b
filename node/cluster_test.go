package node_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/internal/simcluster"
	"github.com/quorumkv/quorumkv/internal/testcluster"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

// nodes is what the replica helpers need of a cluster. Both
// *simcluster.Cluster and *testcluster.Cluster have it.
type nodes interface {
	// Size returns the number of nodes, running or not.
	Size() int
	// Node returns node i, nil while it is down.
	Node(i int) *node.Node
}

// replicaSet reads a key straight from node i's store.
func replicaSet(t *testing.T, c nodes, i int, bucket, key string) version.Set {
	t.Helper()
	s, err := c.Node(i).Store().Get(store.EncodeKey([]byte(bucket), []byte(key)))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// pendingHints counts the hints every running node keeps.
func pendingHints(c nodes) int64 {
	var total int64
	for i := 0; i < c.Size(); i++ {
		if n := c.Node(i); n != nil {
			total += n.Status().HintMetrics.PendingHints
		}
	}
	return total
}

// cluster is what the tests run by clusterVariants use: a simulated
// cluster (simCluster) or one on real sockets (tcpCluster).
type cluster interface {
	nodes
	// Stop stops node i; its data stays.
	Stop(i int)
	// Do sends a request to node i's API and fails the test if no
	// answer comes.
	Do(i int, method, path string, body []byte, hdr map[string]string) simcluster.Response
	// Await waits until cond holds, and fails the test if it does not
	// within limit.
	Await(limit time.Duration, what string, cond func() bool)
	// AwaitReachable waits until the failure detectors agree on who is up.
	AwaitReachable()
}

// clusterVariants runs f on clusters of 3 and 5 nodes, each in two ways.
//
// The "-inmem" variants run on simulated time in a synctest bubble
// (internal/simcluster), over the in-memory RPC and memberlist networks:
// no wall-clock sleeps, and every wait is a walk through simulated time.
// They take milliseconds, so -short runs them all.
//
// The "-tcp" variants stay on internal/testcluster and the wall clock.
// They exist to test the TCP transport and memberlist's real sockets,
// which cannot run inside a bubble: a goroutine blocked reading a socket
// is not durably blocked, so a bubble with a listener in it never goes
// idle and its clock never moves. Their waits poll the wall clock, and
// -short skips them.
func clusterVariants(t *testing.T, f func(t *testing.T, c cluster)) {
	for _, n := range []int{3, 5} {
		t.Run(fmt.Sprintf("%d-nodes-inmem", n), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f(t, simCluster{t, simcluster.Start(t, simcluster.Options{Nodes: n})})
			})
		})
		t.Run(fmt.Sprintf("%d-nodes-tcp", n), func(t *testing.T) {
			if testing.Short() {
				t.Skip("short")
			}
			f(t, tcpCluster{t, testcluster.StartWith(t, testcluster.Options{Nodes: n, TCP: true})})
		})
	}
}

// tcpCluster is a cluster over real TCP RPC and memberlist sockets, on
// the wall clock.
type tcpCluster struct {
	t testing.TB
	c *testcluster.Cluster
}

var _ cluster = tcpCluster{}

func (c tcpCluster) Size() int             { return c.c.Size() }
func (c tcpCluster) Node(i int) *node.Node { return c.c.Node(i) }
func (c tcpCluster) Stop(i int)            { c.c.Stop(i) }

func (c tcpCluster) AwaitReachable() {
	c.t.Helper()
	c.c.WaitReachable()
}

func (c tcpCluster) Do(i int, method, path string, body []byte, hdr map[string]string) simcluster.Response {
	c.t.Helper()
	return simcluster.Response(c.c.Do(i, method, path, body, hdr))
}

// Await polls the wall clock: real sockets leave no other way.
func (c tcpCluster) Await(limit time.Duration, what string, cond func() bool) {
	c.t.Helper()
	c.c.Eventually(limit, what, cond)
}

func TestClusterWriteAllReadOneEverywhere(t *testing.T) {
	clusterVariants(t, func(t *testing.T, c cluster) {
		for k := 0; k < 10; k++ {
			key := fmt.Sprintf("/v1/kv/b/key-%d", k)
			r := c.Do(k%c.Size(), "PUT", key+"?w=all", []byte(fmt.Sprint("v", k)), nil)
			if r.Status != 204 {
				t.Fatalf("PUT w=all: %d %s", r.Status, r.Body)
			}
			if got := quorum.ParseReceipt(r.Header); len(got.Replicas) != 3 {
				t.Fatalf("w=all acked by %v, want 3 replicas", got.Replicas)
			}
			for i := 0; i < c.Size(); i++ {
				r := c.Do(i, "GET", key+"?r=one", nil, nil)
				if r.Status != 200 || string(r.Body) != fmt.Sprint("v", k) {
					t.Fatalf("GET r=one via n%d: %d %q", i+1, r.Status, r.Body)
				}
			}
		}
	})
}

func TestClusterConcurrentCoordinatorsMakeSiblings(t *testing.T) {
	clusterVariants(t, func(t *testing.T, c cluster) {
		const path = "/v1/kv/b/contended"
		// Two coordinators write with no context, as two clients that never
		// read: the versions are concurrent and both must survive.
		if r := c.Do(0, "PUT", path+"?w=all", []byte("from-1"), nil); r.Status != 204 {
			t.Fatal(r.Status, string(r.Body))
		}
		if r := c.Do(1, "PUT", path+"?w=all", []byte("from-2"), nil); r.Status != 204 {
			t.Fatal(r.Status, string(r.Body))
		}
		r := c.Do(2, "GET", path+"?r=all", nil, nil)
		if r.Status != http.StatusMultipleChoices {
			t.Fatalf("r=all after concurrent writes: %d %s", r.Status, r.Body)
		}
		e := envelopeOf(t, r.Body)
		got := map[string]bool{}
		for _, s := range e.Siblings {
			got[string(s.Value)] = true
		}
		if len(e.Siblings) != 2 || !got["from-1"] || !got["from-2"] {
			t.Fatalf("siblings %+v", e.Siblings)
		}
		// A write carrying the merged context resolves them on every replica.
		if r := c.Do(c.Size()-1, "PUT", path+"?w=all", []byte("merged"), map[string]string{"X-Context": e.Context}); r.Status != 204 {
			t.Fatal(r.Status, string(r.Body))
		}
		key := store.EncodeKey([]byte("b"), []byte("contended"))
		pref, err := c.Node(0).Ring().PreferenceList(key, 3)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < c.Size(); i++ {
			isReplica := false
			for _, id := range pref[:3] {
				isReplica = isReplica || id == c.Node(i).ID()
			}
			s := replicaSet(t, c, i, "b", "contended")
			if !isReplica {
				if !s.IsEmpty() {
					t.Fatalf("%s is not a replica but holds %v", c.Node(i).ID(), s.Dots())
				}
				continue
			}
			if len(s.Siblings) != 1 || string(s.Siblings[0].Value) != "merged" {
				t.Fatalf("replica %s holds %d siblings %v", c.Node(i).ID(), len(s.Siblings), s.Dots())
			}
		}
	})
}

func TestClusterQuorumFailureReportsCounts(t *testing.T) {
	clusterVariants(t, func(t *testing.T, c cluster) {
		down := c.Size() - 1
		downID := c.Node(down).ID()
		c.Stop(down)
		c.AwaitReachable()
		// A key with the stopped node among its three primaries.
		var key string
		for k := 0; ; k++ {
			key = fmt.Sprint("k", k)
			pref, _ := c.Node(0).Ring().PreferenceList(store.EncodeKey([]byte("b"), []byte(key)), 3)
			if pref[0] == downID || pref[1] == downID || pref[2] == downID {
				break
			}
		}
		// W=3 with only two live primaries (and fallbacks not counting) is
		// out of reach from the start: the write fails before anything is
		// applied, and says how many answered and how many were needed.
		r := c.Do(0, "PUT", "/v1/kv/b/"+key+"?w=3&sloppy=false", []byte("v"), nil)
		if r.Status != http.StatusServiceUnavailable {
			t.Fatalf("w=3 with a primary down: %d %s", r.Status, r.Body)
		}
		var e struct {
			Code             string
			Needed, Answered int
		}
		if err := json.Unmarshal(r.Body, &e); err != nil || e.Code != "quorum_failed" || e.Needed != 3 || e.Answered != 0 {
			t.Fatalf("error body %s (%v)", r.Body, err)
		}
		if !strings.Contains(string(r.Body), "needed 3") || !strings.Contains(string(r.Body), downID) {
			t.Fatalf("message does not give the counts and the down node: %s", r.Body)
		}
		if r := c.Do(1, "GET", "/v1/kv/b/"+key+"?r=2", nil, nil); r.Status != 404 {
			t.Fatalf("a write refused up front was applied: GET %d %s", r.Status, r.Body)
		}
		// A sloppy write still works, and the receipt names the hint for the
		// down node. With 3 nodes a live primary keeps the hint (w=2 waits
		// for it); with 5 a fallback does, and w=3 needs its ack.
		w := 2
		if c.Size() > 3 {
			w = 3
		}
		r = c.Do(0, "PUT", fmt.Sprintf("/v1/kv/b/%s?w=%d", key, w), []byte("v"), nil)
		if r.Status != 204 {
			t.Fatalf("w=%d: %d %s", w, r.Status, r.Body)
		}
		if got := quorum.ParseReceipt(r.Header); len(got.Hinted) != 1 || got.Hinted[0] != downID {
			t.Fatalf("receipt %+v should name the hint for %s", got, downID)
		}
		// R=3 from primaries alone is out of reach. A sloppy read (the
		// default) counts the fallback, which answers from its hint; with
		// 3 nodes there is no fallback, only a hint on a live primary.
		if r = c.Do(1, "GET", "/v1/kv/b/"+key+"?r=3&sloppy=false", nil, nil); r.Status != 503 {
			t.Fatalf("r=3 sloppy=false with a primary down: %d", r.Status)
		}
		r = c.Do(1, "GET", "/v1/kv/b/"+key+"?r=3", nil, nil)
		switch {
		case c.Size() == 3 && r.Status != 503:
			t.Fatalf("r=3 with a primary down and no fallback: %d", r.Status)
		case c.Size() > 3 && (r.Status != 200 || string(r.Body) != "v" || len(quorum.ParseReceipt(r.Header).Fallbacks) != 1):
			t.Fatalf("sloppy r=3 with a fallback: %d %s %v", r.Status, r.Body, r.Header)
		}
	})
}

func TestClusterParamValidation(t *testing.T) {
	clusterVariants(t, func(t *testing.T, c cluster) {
		testParamValidation(t, c)
	})
}

func testParamValidation(t *testing.T, c cluster) {
	c.Do(0, "PUT", "/v1/kv/p/k?w=all", []byte("v"), nil)
	for _, tt := range []struct {
		q      string
		status int
	}{
		{"r=1", 200}, {"r=3", 200}, {"r=quorum", 200}, {"r=all&n=2", 200}, {"r=one&n=1", 200},
		{"r=4", 400}, {fmt.Sprint("n=", c.Size()+1), 400}, {"r=3&n=2", 400}, {"r=0", 400}, {"n=0", 400}, {"x=1", 400},
	} {
		r := c.Do(1, "GET", "/v1/kv/p/k?"+tt.q, nil, nil)
		if r.Status != tt.status {
			t.Errorf("GET ?%s: %d, want %d: %s", tt.q, r.Status, tt.status, r.Body)
		}
	}
	// Bucket n limits per-request n; bucket props reach every node.
	if r := c.Do(0, "PUT", "/v1/buckets/small", []byte(`{"n":2,"r":1,"w":1}`), nil); r.Status != 200 {
		t.Fatal(r.Status, string(r.Body))
	}
	c.Await(5*time.Second, "bucket props on every node", func() bool {
		for i := 0; i < c.Size(); i++ {
			if !strings.Contains(string(c.Do(i, "GET", "/v1/buckets/small", nil, nil).Body), `"n": 2`) {
				return false
			}
		}
		return true
	})
	if r := c.Do(2, "PUT", "/v1/kv/small/k?n=3", []byte("v"), nil); r.Status != 400 {
		t.Fatalf("n above the bucket's n: %d", r.Status)
	}
}

func TestClusterStatus(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The default partition count, so that the shares are those of
		// a real cluster (simulated nodes use fewer, to open faster).
		c := simcluster.Start(t, simcluster.Options{Nodes: 3, Configure: func(_ int, cfg *node.Config) {
			cfg.Partitions = node.DefaultConfig().Partitions
		}})
		var st struct {
			Members []struct {
				ID        string  `json:"id"`
				Reachable bool    `json:"reachable"`
				Share     float64 `json:"ring_share"`
				Phi       float64 `json:"phi"`
			}
			PhiThreshold float64 `json:"phi_threshold"`
		}
		r := simDo(t, c, 1, "GET", "/v1/cluster", nil, nil)
		if err := json.Unmarshal(r.Body, &st); err != nil {
			t.Fatal(err, string(r.Body))
		}
		total := 0.0
		for _, m := range st.Members {
			total += m.Share
			if !m.Reachable || m.Share < 0.3 {
				t.Fatalf("member %+v", m)
			}
		}
		if len(st.Members) != 3 || total < 0.999 || st.PhiThreshold != 8 {
			t.Fatalf("status %+v", st)
		}
	})
}
