package node_test

import (
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/simcluster"
	"github.com/quorumkv/quorumkv/node"
)

// simDo sends a request to node i of a simulated cluster and fails the
// test if no answer comes: the node is down, or went down while the
// request ran.
func simDo(t testing.TB, c *simcluster.Cluster, i int, method, path string, body []byte, hdr map[string]string) simcluster.Response {
	t.Helper()
	r, ok := c.Do(i, method, path, body, hdr)
	if !ok {
		t.Fatalf("%s %s via %s: no answer, the node is down", method, path, c.ID(i))
	}
	return r
}

// simCluster is a cluster (see clusterVariants) on simulated time. It
// must be used from the synctest bubble that started it.
type simCluster struct {
	t testing.TB
	c *simcluster.Cluster
}

var _ cluster = simCluster{}

func (s simCluster) Size() int             { return s.c.Size() }
func (s simCluster) Node(i int) *node.Node { return s.c.Node(i) }
func (s simCluster) Stop(i int)            { s.c.Stop(i) }
func (s simCluster) AwaitReachable()       { s.c.AwaitReachable() }

func (s simCluster) Do(i int, method, path string, body []byte, hdr map[string]string) simcluster.Response {
	s.t.Helper()
	return simDo(s.t, s.c, i, method, path, body, hdr)
}

// Await walks simulated time in small steps until cond holds.
func (s simCluster) Await(limit time.Duration, what string, cond func() bool) {
	s.t.Helper()
	s.c.Await(limit, what, cond)
}
