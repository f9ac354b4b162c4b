package node_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/internal/testcluster"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/transport"
)

// The internode RPC handler, fed any method and body by a member: it
// answers every one (an error is fine) without panicking or hanging, and
// the node still serves clients afterwards.
func FuzzServeRPC(f *testing.F) {
	c := testcluster.StartWith(f, testcluster.Options{Nodes: 1})
	n := c.Node(0)
	key := store.EncodeKey([]byte("b"), []byte("k"))
	for i := range node.RPCMethods {
		f.Add(uint8(i), []byte(nil))
		f.Add(uint8(i), []byte{0x93, 0x01, 0xa1, 0x78, 0xc0})
	}
	for _, r := range []quorum.Request{
		{Kind: quorum.KindRead, Key: key},
		{Kind: quorum.KindApply, Key: key, Write: &quorum.WriteRequest{Value: []byte("v")}},
		{Kind: quorum.KindMerge, Key: key, HintFor: "n9"},
	} {
		b, err := msgpack.Marshal(&r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(0), b)
	}
	f.Cleanup(func() {
		if r := c.Do(0, "PUT", "/v1/kv/b/after-fuzz", []byte("v"), nil); r.Status != 204 {
			f.Errorf("the node stopped serving after the fuzzed RPCs: %d %s", r.Status, r.Body)
		}
	})
	f.Fuzz(func(t *testing.T, method uint8, body []byte) {
		m := node.RPCMethods[int(method)%len(node.RPCMethods)]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		_, err := n.ServeRPC(ctx, &transport.Request{From: "n1", To: "n1", Method: m, Body: body})
		if d := time.Since(start); d > 10*time.Second {
			t.Fatalf("%s with %d bytes took %v", m, len(body), d)
		}
		if errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s with %d bytes ran into its deadline: %v", m, len(body), err)
		}
	})
}
