package node_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/internal/devcert"
	"github.com/quorumkv/quorumkv/internal/testcluster"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/transport"
	"github.com/quorumkv/quorumkv/version"
)

// rpcClient is an RPC transport for node id holding a certificate for
// certID from the cluster's CA.
func rpcClient(t *testing.T, c *testcluster.Cluster, id, certID string) *transport.TCP {
	t.Helper()
	ca, err := devcert.ReadCA(c.TLSDir)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue(certID, nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tcfg := transport.DefaultTCPConfig()
	tcfg.NodeID = id
	if tcfg.TLS, err = transport.MutualTLSPEM(cert, key, ca.CertPEM()); err != nil {
		t.Fatal(err)
	}
	tr, err := transport.NewTCP(tcfg, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

// sendKV sends req to node i as a replica request.
func sendKV(t *testing.T, c *testcluster.Cluster, tr *transport.TCP, i int, req *quorum.Request) error {
	t.Helper()
	body, err := msgpack.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n := c.Node(i)
	_, err = tr.CallNode(ctx, n.ID(), n.RPCAddr(), "kv", body)
	return err
}

// forge returns cur with its live siblings superseded by a write of value
// (or a tombstone) issued by node.
func forge(t *testing.T, cur version.Set, node string, value []byte, deleted bool) version.Set {
	t.Helper()
	s := cur.Clone()
	if _, err := s.Update(version.Write{Node: node, Context: cur.Context, Value: value, Deleted: deleted, WriteTime: time.Now().UnixNano()}); err != nil {
		t.Fatal(err)
	}
	return s
}

// A program holding a valid certificate from the cluster's CA, but for a
// node that is not a member, sends replica writes, merges, tombstones and
// hints over mutual TLS: every one is refused, and every key reads back
// unchanged over HTTPS. The same requests from a member's certificate do
// apply, so the refusals are the membership check, not malformed requests.
func TestTLSNonMemberRPCRefused(t *testing.T) {
	c := testcluster.StartWith(t, testcluster.Options{Nodes: 3, TCP: true, TLS: true})
	keys := []string{"a", "b", "c", "d"}
	for _, k := range keys {
		if r := c.Do(0, "PUT", "/v1/kv/b/"+k+"?w=all", []byte("good-"+k), nil); r.Status != 204 {
			t.Fatalf("PUT %s over HTTPS: %d %s", k, r.Status, r.Body)
		}
	}
	cur := replicaSet(t, c, 1, "b", "a")
	if len(cur.Live()) != 1 {
		t.Fatalf("replica set of a: %+v", cur)
	}

	rogue := rpcClient(t, c, "n9", "n9")
	enc := func(k string) []byte { return store.EncodeKey([]byte("b"), []byte(k)) }
	attacks := []struct {
		name string
		req  quorum.Request
	}{
		{"replica write", quorum.Request{Kind: quorum.KindApply, Key: enc("a"), Write: &quorum.WriteRequest{Context: cur.Context, Value: []byte("evil")}}},
		{"replica delete", quorum.Request{Kind: quorum.KindApply, Key: enc("b"), Write: &quorum.WriteRequest{Deleted: true}}},
		{"merge", quorum.Request{Kind: quorum.KindMerge, Key: enc("a"), Set: forge(t, cur, "n9", []byte("evil"), false)}},
		{"forged tombstone", quorum.Request{Kind: quorum.KindMerge, Key: enc("c"), Set: forge(t, replicaSet(t, c, 1, "b", "c"), "n9", nil, true)}},
		{"hint", quorum.Request{Kind: quorum.KindMerge, Key: enc("d"), HintFor: "n3", Set: forge(t, replicaSet(t, c, 1, "b", "d"), "n9", []byte("evil"), false)}},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			for i := range c.Size() {
				err := sendKV(t, c, rogue, i, &a.req)
				if !errors.Is(err, transport.ErrUnauthenticated) {
					t.Fatalf("node %d answered a non-member's %s with %v, want ErrUnauthenticated", i, a.name, err)
				}
			}
		})
	}

	// A member's certificate and name: the same kind of merge applies.
	member := rpcClient(t, c, "n1", "n1")
	ctl := "control"
	if r := c.Do(0, "PUT", "/v1/kv/b/"+ctl+"?w=all", []byte("before"), nil); r.Status != 204 {
		t.Fatalf("PUT control: %d", r.Status)
	}
	forged := forge(t, replicaSet(t, c, 1, "b", ctl), "n1", []byte("after"), false)
	if err := sendKV(t, c, member, 1, &quorum.Request{Kind: quorum.KindMerge, Key: enc(ctl), Set: forged}); err != nil {
		t.Fatalf("a member's merge: %v", err)
	}
	if got := replicaSet(t, c, 1, "b", ctl).Live(); len(got) != 1 || !bytes.Equal(got[0].Value, []byte("after")) {
		t.Fatalf("a member's merge did not apply: %+v", got)
	}

	for i := range c.Size() {
		if n := c.Node(i).Status().HintMetrics.PendingHints; n != 0 {
			t.Fatalf("node %d keeps %d hints", i, n)
		}
		for _, k := range keys {
			r := c.Do(i, "GET", "/v1/kv/b/"+k+"?r=all", nil, nil)
			if r.Status != 200 || string(r.Body) != "good-"+k {
				t.Fatalf("GET %s on node %d over HTTPS: %d %q, want 200 %q", k, i, r.Status, r.Body, "good-"+k)
			}
		}
	}
}
