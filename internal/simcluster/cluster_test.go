package simcluster

import (
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A cluster starts, serves, survives a kill -9 and a restart, and shuts
// down leaving nothing behind, all in simulated time.
func TestClusterSmoke(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		c := Start(t, Options{Nodes: 3})
		t.Logf("started in %v of simulated time", time.Since(start))
		put := func(i int, path, v string, want int) {
			t.Helper()
			r, ok := c.Do(i, "PUT", path, []byte(v), nil)
			if !ok || r.Status != want {
				t.Fatalf("PUT %s via n%d: %d %s (ok %v), want %d", path, i+1, r.Status, r.Body, ok, want)
			}
		}
		get := func(i int, path, want string) {
			t.Helper()
			r, ok := c.Do(i, "GET", path, nil, nil)
			if !ok || r.Status != 200 || string(r.Body) != want {
				t.Fatalf("GET %s via n%d: %d %q, want %q", path, i+1, r.Status, r.Body, want)
			}
		}
		put(0, "/v1/kv/b/k?w=all", "v1", 204)
		get(1, "/v1/kv/b/k?r=all", "v1")
		c.Crash(2)
		took := c.AwaitReachable()
		t.Logf("n3 suspected %v after the crash", took)
		put(0, "/v1/kv/b/k2?w=2", "v2", 204)
		put(0, "/v1/kv/b/k3?w=all", "x", 503)
		c.Restart(2)
		c.AwaitReachable()
		c.Await(10*time.Second, "hints handed back", func() bool {
			return c.Node(0).Status().HintMetrics.PendingHints == 0 && c.Node(1).Status().HintMetrics.PendingHints == 0
		})
		c.Stop(0)
		c.Stop(1)
		c.AwaitReachable()
		get(2, "/v1/kv/b/k?r=one", "v1")
		get(2, "/v1/kv/b/k2?r=one", "v2")
	})
}
