package node_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/internal/devcert"
	"github.com/quorumkv/quorumkv/internal/testcluster"
	"github.com/quorumkv/quorumkv/node"
)

// joinerConfig is a node configuration like the test cluster's, joining
// it through n1, with TLS files from dir.
func joinerConfig(t *testing.T, c *testcluster.Cluster, id, dir string) node.Config {
	cfg := node.DefaultConfig()
	cfg.ID = id
	cfg.DataDir = t.TempDir()
	cfg.HTTPAddr, cfg.RPCAddr, cfg.GossipAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	cfg.FastGossip = true
	cfg.HeartbeatInterval = 50 * time.Millisecond
	cfg.TransferSettle = 2 * time.Second
	cfg.MembershipInterval = 100 * time.Millisecond
	cfg.AntiEntropy.Interval = 24 * time.Hour
	cfg.ShutdownTimeout = 2 * time.Second
	cfg.TLSCertFile, cfg.TLSKeyFile = devcert.NodeFiles(dir, id)
	cfg.TLSCAFile = filepath.Join(dir, devcert.CAFile)
	cfg.Join = []string{c.Node(0).GossipAddr()}
	return cfg
}

// members lists the IDs node i's status shows.
func members(c *testcluster.Cluster, i int) []string {
	var ids []string
	for _, m := range c.Node(i).Status().Members {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	return ids
}

// A node whose certificate comes from another CA cannot join: the seed
// vets it over mutual TLS and refuses the join, no member's table or ring
// takes it in, and the data stays as it was. A node with a certificate
// from the cluster's CA joins the same way and is admitted, so the
// refusal is the certificate's.
func TestTLSNodeWithForeignCertificateNotAdmitted(t *testing.T) {
	c := testcluster.StartWith(t, testcluster.Options{Nodes: 3, TCP: true, TLS: true})
	for _, k := range []string{"a", "b", "c"} {
		if r := c.Do(0, "PUT", "/v1/kv/b/"+k+"?w=all", []byte("v-"+k), nil); r.Status != 204 {
			t.Fatalf("PUT %s: %d %s", k, r.Status, r.Body)
		}
	}

	// The rogue trusts the cluster's CA, so it vets the cluster's nodes
	// and asks to join; its own certificate comes from another CA, so the
	// members must refuse it.
	ca, err := devcert.ReadCA(c.TLSDir)
	if err != nil {
		t.Fatal(err)
	}
	rogueDir := t.TempDir()
	rogueCA, err := devcert.NewCA("rogue CA", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := devcert.WriteCA(rogueDir, ca); err != nil {
		t.Fatal(err)
	}
	if _, _, err := devcert.WriteNode(rogueDir, rogueCA, "n4", nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	rogue, err := node.Open(joinerConfig(t, c, "n4", rogueDir), zerolog.Nop())
	if err == nil {
		defer rogue.Close()
	} else if rogue != nil {
		rogue.Close()
	}
	t.Logf("the rogue's start: %v", err)
	want := []string{"n1", "n2", "n3"}
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		for i := range c.Size() {
			if got := members(c, i); !slices.Equal(got, want) {
				t.Fatalf("node %d's members are %v with a rogue certificate about, want %v", i, got, want)
			}
			if n := c.Node(i).Ring().Len(); n != 3 {
				t.Fatalf("node %d's ring has %d members", i, n)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A certificate from the cluster's CA: admitted.
	goodDir := t.TempDir()
	if err := devcert.WriteCA(goodDir, ca); err != nil {
		t.Fatal(err)
	}
	if _, _, err := devcert.WriteNode(goodDir, ca, "n5", nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	good, err := node.Open(joinerConfig(t, c, "n5", goodDir), zerolog.Nop())
	if err != nil {
		t.Fatalf("a node with the cluster's certificate could not join: %v", err)
	}
	defer good.Close()
	c.Eventually(20*time.Second, "n5 in every member table", func() bool {
		for i := range c.Size() {
			if !slices.Contains(members(c, i), "n5") || slices.Contains(members(c, i), "n4") {
				return false
			}
		}
		return true
	})

	// With a member down (dead to gossip), a node with a good certificate
	// still joins: only live nodes are vetted.
	c.Stop(2)
	c.Eventually(20*time.Second, "n3 to be dead to gossip", func() bool {
		for _, m := range c.Node(0).Status().Members {
			if m.ID == "n3" {
				return m.Gossip != "alive"
			}
		}
		return false
	})
	if _, _, err := devcert.WriteNode(goodDir, ca, "n6", nil, time.Hour); err != nil {
		t.Fatal(err)
	}
	late, err := node.Open(joinerConfig(t, c, "n6", goodDir), zerolog.Nop())
	if err != nil {
		t.Fatalf("with n3 down, a node with the cluster's certificate could not join: %v", err)
	}
	defer late.Close()
	c.Eventually(20*time.Second, "n6 in the live members' tables", func() bool {
		return slices.Contains(members(c, 0), "n6") && slices.Contains(members(c, 1), "n6")
	})
	for i := range 2 {
		for _, k := range []string{"a", "b", "c"} {
			if r := c.Do(i, "GET", "/v1/kv/b/"+k, nil, nil); r.Status != 200 || string(r.Body) != "v-"+k {
				t.Fatalf("GET %s on node %d: %d %q", k, i, r.Status, r.Body)
			}
		}
	}
}
