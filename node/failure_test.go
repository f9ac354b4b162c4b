package node_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/testcluster"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/store"
)

func pendingHints(c *testcluster.Cluster) int64 {
	var total int64
	for i := 0; i < c.Size(); i++ {
		if n := c.Node(i); n != nil {
			total += n.Status().HintMetrics.PendingHints
		}
	}
	return total
}

// Three nodes, one stopped: writes succeed with a hint, the hint is handed
// back when the node returns, and the node then serves the value alone.
func TestFailureHintedHandoffThreeNodes(t *testing.T) {
	c := testcluster.Start(t, 3)
	c.Stop(2)
	c.WaitReachable()

	const keys = 20
	for k := 0; k < keys; k++ {
		r := c.Do(k%2, "PUT", fmt.Sprintf("/v1/kv/b/k%d?w=2", k), []byte(fmt.Sprint("v", k)), nil)
		if r.Status != 204 {
			t.Fatalf("PUT w=2 with n3 down: %d %s", r.Status, r.Body)
		}
		rc := quorum.ParseReceipt(r.Header)
		if len(rc.Hinted) != 1 || rc.Hinted[0] != "n3" || len(rc.Replicas) != 2 {
			t.Fatalf("receipt %+v: want two replicas and a hint for n3", rc)
		}
		if g := c.Do(1-k%2, "GET", fmt.Sprintf("/v1/kv/b/k%d?r=2", k), nil, nil); g.Status != 200 || string(g.Body) != fmt.Sprint("v", k) {
			t.Fatalf("GET r=2: %d %q", g.Status, g.Body)
		}
	}
	if got := pendingHints(c); got != keys {
		t.Fatalf("pending hints = %d, want %d", got, keys)
	}

	start := time.Now()
	c.Restart(2)
	c.Eventually(10*time.Second, "hints handed back to n3", func() bool { return pendingHints(c) == 0 })
	t.Logf("hints handed back %v after the restart", time.Since(start).Round(time.Millisecond))
	for i := 0; i < 2; i++ {
		if b := c.Node(i).Store().HintBytes("n3"); b != 0 {
			t.Fatalf("n%d still holds %d bytes of hints for n3", i+1, b)
		}
	}
	// n3 alone: stop the others, then read every key from n3 with r=one.
	c.Stop(0)
	c.Stop(1)
	c.WaitReachable()
	for k := 0; k < keys; k++ {
		r := c.Do(2, "GET", fmt.Sprintf("/v1/kv/b/k%d?r=one", k), nil, nil)
		if r.Status != 200 || string(r.Body) != fmt.Sprint("v", k) {
			t.Fatalf("n3 alone, k%d: %d %q", k, r.Status, r.Body)
		}
		if got := quorum.ParseReceipt(r.Header).Replicas; len(got) != 1 || got[0] != "n3" {
			t.Fatalf("served by %v, want n3 alone", got)
		}
	}
}

// Five nodes, N=3: a down primary's write goes to a real fallback, which
// counts toward W (unless sloppy=false) and hands the write back.
func TestFailureSloppyQuorumFallback(t *testing.T) {
	c := testcluster.Start(t, 5)
	c.Stop(4) // n5
	c.WaitReachable()
	r0 := c.Node(0).Ring()
	var key string
	for k := 0; ; k++ {
		key = fmt.Sprint("key", k)
		pref, _ := r0.PreferenceList(store.EncodeKey([]byte("b"), []byte(key)), 3)
		if pref[0] == "n5" || pref[1] == "n5" || pref[2] == "n5" {
			break
		}
	}
	r := c.Do(0, "PUT", "/v1/kv/b/"+key+"?w=3", []byte("v"), nil)
	if r.Status != 204 {
		t.Fatalf("w=3 with a fallback: %d %s", r.Status, r.Body)
	}
	rc := quorum.ParseReceipt(r.Header)
	if len(rc.Fallbacks) != 1 || len(rc.Hinted) != 1 || rc.Hinted[0] != "n5" {
		t.Fatalf("receipt %+v: want one fallback standing in for n5", rc)
	}
	for f, p := range rc.Fallbacks {
		if p != "n5" || !strings.HasPrefix(f, "n") {
			t.Fatalf("fallback %s for %s", f, p)
		}
	}
	if r := c.Do(0, "PUT", "/v1/kv/b/"+key+"?w=3&sloppy=false", []byte("v2"), nil); r.Status != 503 {
		t.Fatalf("w=3 sloppy=false with a primary down: %d %s", r.Status, r.Body)
	}
	c.Restart(4)
	c.Eventually(10*time.Second, "the fallback's hints reach n5", func() bool { return pendingHints(c) == 0 })
	s := replicaSet(t, c, 4, "b", key)
	if len(s.Siblings) == 0 {
		t.Fatal("n5 did not get the hinted write")
	}
}

// With two of a key's three primaries down, a sloppy write lands on the
// live primary and two fallbacks, and a sloppy read counts the fallbacks,
// which answer from their hints: the value reads back at R=2 and R=3.
// With sloppy=false the read needs primaries and fails.
func TestFailureSloppyRead(t *testing.T) {
	c := testcluster.Start(t, 5)
	r0 := c.Node(0).Ring()
	var key string
	for k := 0; ; k++ {
		key = fmt.Sprint("key", k)
		pref, _ := r0.PreferenceList(store.EncodeKey([]byte("b"), []byte(key)), 3)
		if slices.Contains(pref[:3], "n4") && slices.Contains(pref[:3], "n5") { // pref goes on with fallbacks
			break
		}
	}
	c.Stop(3)
	c.Stop(4)
	c.WaitReachable()
	if r := c.Do(0, "PUT", "/v1/kv/b/"+key+"?w=2", []byte("v"), nil); r.Status != 204 {
		t.Fatalf("sloppy write with two primaries down: %d %s", r.Status, r.Body)
	}
	for _, q := range []string{"r=2", "r=3"} {
		r := c.Do(0, "GET", "/v1/kv/b/"+key+"?"+q, nil, nil)
		if r.Status != 200 || string(r.Body) != "v" {
			t.Fatalf("sloppy read %s: %d %s", q, r.Status, r.Body)
		}
		rc := quorum.ParseReceipt(r.Header)
		stoodIn := map[string]bool{}
		for f, p := range rc.Fallbacks {
			if f == "n4" || f == "n5" {
				t.Fatalf("%s: a stopped node %s answered", q, f)
			}
			stoodIn[p] = true
		}
		if want := map[string]bool{"r=2": false, "r=3": true}[q]; want && (!stoodIn["n4"] || !stoodIn["n5"]) {
			t.Fatalf("%s: receipt %+v, want fallbacks for n4 and n5", q, rc)
		}
		if len(rc.Fallbacks) == 0 {
			t.Fatalf("%s: receipt %+v names no fallback", q, rc)
		}
	}
	if r := c.Do(0, "GET", "/v1/kv/b/"+key+"?r=2&sloppy=false", nil, nil); r.Status != 503 {
		t.Fatalf("read r=2 sloppy=false with two primaries down: %d %s", r.Status, r.Body)
	}
	c.Restart(3)
	c.Restart(4)
	c.Eventually(10*time.Second, "the fallbacks' hints reach n4 and n5", func() bool { return pendingHints(c) == 0 })
	// The hint holders trusting n4 and n5 again (so that handoff ran) does
	// not mean the coordinator n1 does yet.
	c.WaitReachable()
	if r := c.Do(0, "GET", "/v1/kv/b/"+key+"?r=3&sloppy=false", nil, nil); r.Status != 200 || string(r.Body) != "v" {
		t.Fatalf("read r=3 sloppy=false after handoff: %d %s", r.Status, r.Body)
	}
}

// When an owner's hint budget is full, writes still succeed, and the
// overflow is counted in /v1/cluster and /metrics.
func TestFailureHintBudgetOverflow(t *testing.T) {
	c := testcluster.StartWith(t, testcluster.Options{Nodes: 3, Configure: func(_ int, cfg *node.Config) {
		cfg.HintBudget = 300
	}})
	c.Stop(2)
	c.WaitReachable()
	for k := 0; k < 30; k++ {
		if r := c.Do(0, "PUT", fmt.Sprintf("/v1/kv/b/k%d?w=2", k), []byte(strings.Repeat("x", 50)), nil); r.Status != 204 {
			t.Fatalf("write %d with a full hint budget: %d %s", k, r.Status, r.Body)
		}
	}
	st := c.Node(0).Status()
	if st.HintMetrics.Overflowed == 0 || st.Hints["n3"].Overflowed == 0 {
		t.Fatalf("overflow not counted: %+v", st.HintMetrics)
	}
	if st.HintMetrics.PendingBytes > 300 {
		t.Fatalf("pending hint bytes %d exceed the budget", st.HintMetrics.PendingBytes)
	}
	body := string(c.Do(0, "GET", "/v1/cluster", nil, nil).Body)
	if !strings.Contains(body, `"overflowed"`) {
		t.Fatalf("/v1/cluster does not show the overflow: %s", body)
	}
	m := string(c.Do(0, "GET", "/metrics", nil, nil).Body)
	if !strings.Contains(m, "quorumkv_handoff_overflowed_total") || strings.Contains(m, "quorumkv_handoff_overflowed_total 0\n") {
		t.Fatalf("/metrics does not show the overflow:\n%s", m)
	}
}

// A write whose first issuer cannot be reached (the request never leaves
// the coordinator) is issued by the next primary at once, before the
// failure detector suspects the first: the transport's ErrNotSent reaches
// the write as quorum.ErrNotApplied. A failure that leaves the outcome open
// would instead fail the write (quorum's TestCoordinatorReissues...).
func TestWriteReissuedWhenTheIssuerWasNotReached(t *testing.T) {
	c := testcluster.Start(t, 5)
	r0 := c.Node(0).Ring()
	var key string
	var pref []string
	for k := 0; ; k++ {
		key = fmt.Sprint("key", k)
		pref, _ = r0.PreferenceList(store.EncodeKey([]byte("b"), []byte(key)), 3)
		if !slices.Contains(pref[:3], "n1") { // n1 coordinates, a primary issues
			break
		}
	}
	c.Net.Block("n1.rpc", pref[0]+".rpc", true) // the first issuer, still trusted
	r := c.Do(0, "PUT", "/v1/kv/b/"+key+"?w=2", []byte("v"), nil)
	c.Net.Block("n1.rpc", pref[0]+".rpc", false)
	if r.Status != 204 {
		t.Fatalf("PUT with the first issuer unreachable: %d %s", r.Status, r.Body)
	}
	var idx int
	fmt.Sscanf(pref[1], "n%d", &idx)
	set := replicaSet(t, c, idx-1, "b", key)
	if dots := set.Dots(); len(dots) != 1 || dots[0].Node == pref[0] {
		t.Fatalf("%s holds %v: want one version, issued by another primary than %s", pref[1], dots, pref[0])
	}
}
