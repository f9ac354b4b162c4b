package node_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/internal/simcluster"
	"github.com/quorumkv/quorumkv/node"
)

// readyz returns node i's GET /readyz status and body.
func readyz(t *testing.T, c *simcluster.Cluster, i int) (int, node.Readiness) {
	t.Helper()
	r := simDo(t, c, i, "GET", "/readyz", nil, nil)
	var body node.Readiness
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatalf("GET /readyz: %d %q: %v", r.Status, r.Body, err)
	}
	return r.Status, body
}

// /healthz answers while the process serves and /readyz while the node
// has its store, has joined and reaches a majority of the ring; both are
// open without a token, and /readyz says what is missing when it is not
// ready. On simulated time.
func TestHealthAndReadiness(t *testing.T) {
	tokens := tokenFile(t)
	synctest.Test(t, func(t *testing.T) {
		c := simcluster.Start(t, simcluster.Options{Nodes: 3, Configure: func(_ int, cfg *node.Config) {
			cfg.TokenFile = tokens
		}})
		if r := simDo(t, c, 0, "GET", "/healthz", nil, nil); r.Status != 200 || !strings.Contains(string(r.Body), `"ok"`) {
			t.Fatalf("GET /healthz without a token: %d %s", r.Status, r.Body)
		}
		if r := simDo(t, c, 0, "GET", "/v1/cluster", nil, nil); r.Status != 401 {
			t.Fatalf("GET /v1/cluster without a token: %d, want 401 (the health endpoints alone are open)", r.Status)
		}
		if r := simDo(t, c, 0, "GET", "/metrics", nil, bearerHeader(readSecret)); r.Status != 200 || !strings.Contains(string(r.Body), `quorumkv_build_info{commit="`) {
			t.Fatalf("GET /metrics has no quorumkv_build_info: %d", r.Status)
		}
		for i := range 3 {
			status, body := readyz(t, c, i)
			if status != 200 || !body.Ready || len(body.Missing) != 0 || len(body.Checks) != 3 {
				t.Fatalf("node %d /readyz: %d %+v", i, status, body)
			}
		}
		// Two of three down: no quorum of the ring is reachable.
		c.Stop(1)
		c.Stop(2)
		took := c.Await(20*time.Second, "n1 to miss its quorum", func() bool {
			status, body := readyz(t, c, 0)
			return status == 503 && !body.Ready && slices.Equal(body.Missing, []string{"quorum"})
		})
		t.Logf("n1 not ready %v (simulated) after two of three stopped", took)
		_, body := readyz(t, c, 0)
		if q := body.Checks[2]; q.Name != "quorum" || !strings.Contains(q.Detail, "1 of 3 ring members reachable, 2 needed") {
			t.Fatalf("quorum check: %+v", q)
		}
		if r := simDo(t, c, 0, "GET", "/healthz", nil, nil); r.Status != 200 {
			t.Fatalf("GET /healthz without a quorum: %d", r.Status)
		}
		c.Restart(1)
		c.Await(20*time.Second, "n1 ready again with n2 back", func() bool {
			status, _ := readyz(t, c, 0)
			return status == 200
		})
	})
}
