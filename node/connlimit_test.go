package node_test

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/testcluster"
	"github.com/quorumkv/quorumkv/node"
)

// Past Limits.MaxHTTPConns a new client connection gets 503 with
// Retry-After at once, and the node serves again once connections close.
func TestHTTPConnectionCap(t *testing.T) {
	c := testcluster.StartWith(t, testcluster.Options{Nodes: 1, Configure: func(_ int, cfg *node.Config) {
		cfg.Limits.MaxHTTPConns = 2
	}})
	checkConnectionCap(t, c, func() (net.Conn, error) { return net.Dial("tcp", c.Node(0).HTTPAddr()) })
}

// Over HTTPS the refusal past the cap is a 503 inside TLS, which a client
// can read, not bytes that break its handshake.
func TestHTTPSConnectionCap(t *testing.T) {
	c := testcluster.StartWith(t, testcluster.Options{Nodes: 1, TCP: true, TLS: true, Configure: func(_ int, cfg *node.Config) {
		cfg.Limits.MaxHTTPConns = 2
	}})
	tlsCfg := c.Client.Transport.(*http.Transport).TLSClientConfig.Clone()
	tlsCfg.ServerName = "127.0.0.1"
	checkConnectionCap(t, c, func() (net.Conn, error) { return tls.Dial("tcp", c.Node(0).HTTPAddr(), tlsCfg) })
}

// checkConnectionCap holds two connections from dial (the cap), checks
// that a third is answered 503 with Retry-After by the listener itself,
// without the client sending anything, and that the node serves again
// once the two close.
func checkConnectionCap(t *testing.T, c *testcluster.Cluster, dial func() (net.Conn, error)) {
	t.Helper()
	var held []net.Conn
	for range 2 {
		conn, err := dial()
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		held = append(held, conn)
	}
	extra, err := dial()
	if err != nil {
		t.Fatalf("past the cap: %v", err)
	}
	defer extra.Close()
	_ = extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(extra), nil)
	if err != nil {
		t.Fatalf("no answer past the cap: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("past the cap: %d %v", resp.StatusCode, resp.Header)
	}
	for _, conn := range held {
		conn.Close()
	}
	c.Eventually(5*time.Second, "the node to serve again", func() bool {
		return c.Do(0, "PUT", "/v1/kv/b/k", []byte("v"), nil).Status == http.StatusNoContent
	})
}
