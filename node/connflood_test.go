package node_test

import (
	"bufio"
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/testcluster"
)

// metricValue reads one sample of a metric from node i's /metrics.
func metricValue(t *testing.T, c *testcluster.Cluster, i int, name string) float64 {
	t.Helper()
	r := c.Do(i, "GET", "/metrics", nil, nil)
	if r.Status != 200 {
		t.Fatalf("GET /metrics: %d", r.Status)
	}
	sc := bufio.NewScanner(strings.NewReader(string(r.Body)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == name {
			v, err := strconv.ParseFloat(f[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

// The connection flood of the issue: thousands of idle connections to a
// node's RPC port, from six loopback addresses, no longer exhaust its file
// descriptors. The node admits 2,048 (512 from one address) and closes the
// rest at once, keeps serving HTTP throughout, its heap stays bounded
// (about 70 MiB for the 2,048 it holds; 500 MiB before inbound buffers
// were cut to what an inbound connection needs),
// and once the flood is gone its peers reach it again.
func TestRPCConnectionFlood(t *testing.T) {
	if testing.Short() {
		t.Skip("opens thousands of connections")
	}
	c := testcluster.StartWith(t, testcluster.Options{Nodes: 2, TCP: true})
	target := c.Node(0).RPCAddr()
	before := heapAfterGC()

	const sources, perSource = 6, 600 // 3,600 connections, past both caps
	var flood []net.Conn
	defer func() {
		for _, conn := range flood {
			conn.Close()
		}
	}()
	for s := range sources {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+s))}, Timeout: 5 * time.Second}
		for range perSource {
			conn, err := d.Dial("tcp", target)
			if err != nil {
				t.Fatalf("dial from 127.0.0.%d: %v", 2+s, err)
			}
			flood = append(flood, conn)
		}
	}
	refused := func() float64 { return metricValue(t, c, 0, "quorumkv_transport_conns_refused_total") }
	c.Eventually(20*time.Second, "the connections past the caps to be refused", func() bool {
		return refused() >= sources*perSource-2048
	})
	// The node serves clients while the flood stays open.
	for i := range 50 {
		k := fmt.Sprint("k", i)
		if r := c.Do(0, "PUT", "/v1/kv/b/"+k+"?w=all", []byte(k), nil); r.Status != 204 {
			t.Fatalf("PUT %s during the flood: %d %s", k, r.Status, r.Body)
		}
		if r := c.Do(0, "GET", "/v1/kv/b/"+k, nil, nil); r.Status != 200 || string(r.Body) != k {
			t.Fatalf("GET %s during the flood: %d %q", k, r.Status, r.Body)
		}
	}
	during := heapAfterGC()
	t.Logf("%d connections, %.0f refused; heap %d KiB before, %d KiB during (both ends of every connection are in this process)",
		len(flood), refused(), before>>10, during>>10)
	if grown := int64(during) - int64(before); grown > 128<<20 {
		t.Fatalf("the heap grew by %d MiB under an idle connection flood", grown>>20)
	}
	if got := refused(); got > sources*perSource-2048+64 {
		t.Fatalf("%.0f refused, more than the connections past the caps", got)
	}
	for _, conn := range flood {
		conn.Close()
	}
	flood = nil
	// Node 2 writes through node 1 (an internode call to it) again.
	for i := range 20 {
		k := fmt.Sprint("after", i)
		if r := c.Do(1, "PUT", "/v1/kv/b/"+k+"?w=all", []byte(k), nil); r.Status != 204 {
			t.Fatalf("PUT %s after the flood: %d %s", k, r.Status, r.Body)
		}
	}
}
