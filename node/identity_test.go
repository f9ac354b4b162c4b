package node_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quorumkv/quorumkv/internal/simcluster"
	"github.com/quorumkv/quorumkv/transport"
)

// TestReusedAddressIsNotTheOldNode stops n3 and starts, at its RPC
// address, a transport that serves under another node ID and answers
// every request it runs. The other nodes must never count its answers as
// n3's: their heartbeats to n3 are refused (n3 is suspected as if nobody
// answered), and a write that needs all three replicas is not acked by
// two stores pretending to be three.
func TestReusedAddressIsNotTheOldNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := simcluster.Start(t, simcluster.Options{Nodes: 3})
		c.Stop(2)
		impostor := c.RPC.NewTransport("n3", "n9")
		defer impostor.Close()
		var ran atomic.Int64
		if err := impostor.Serve(func(context.Context, *transport.Request) ([]byte, error) {
			ran.Add(1)
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
		c.Await(time.Minute, "n1 and n2 to suspect n3", func() bool {
			return !c.Node(0).Detector().Available("n3") && !c.Node(1).Detector().Available("n3")
		})
		// Long past the detection time, n3 is still suspected: no
		// heartbeat was taken from the impostor.
		c.Advance(30 * time.Second)
		if c.Node(0).Detector().Available("n3") || c.Node(1).Detector().Available("n3") {
			t.Fatal("n3 trusted again while only an impostor answers at its address")
		}
		r := simDo(t, c, 0, "PUT", "/v1/kv/b/k?w=all&sloppy=false", []byte("v"), nil)
		if r.Status == http.StatusNoContent {
			t.Fatalf("w=all without n3 acknowledged: %d %v", r.Status, r.Header)
		}
		r = simDo(t, c, 0, "PUT", "/v1/kv/b/k2", []byte("v"), nil)
		if r.Status != http.StatusNoContent || !strings.Contains(r.Header.Get("X-Quorum-Hinted"), "n3") {
			t.Fatalf("a write with n3 down is not hinted for n3: %d %v", r.Status, r.Header)
		}
		c.Advance(10 * time.Second) // hint replay would run now, were n3 trusted
		if n := ran.Load(); n != 0 {
			t.Fatalf("the impostor ran %d requests meant for n3", n)
		}
	})
}
