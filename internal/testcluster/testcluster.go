// Package testcluster runs a quorumkv cluster of real nodes inside one test
// process: in-memory internode RPC (with partitions, drops and delays) or
// real TCP on loopback, memberlist gossip on loopback (memberlist's mock
// network cannot shut down cleanly), and Pebble on an in-memory filesystem
// that survives node restarts. Every cluster test uses it.
package testcluster

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/transport"
)

// Options shape a test cluster.
type Options struct {
	// Nodes is the cluster size.
	Nodes int
	// TCP uses real TCP RPC and real memberlist networking on 127.0.0.1
	// instead of the in-memory networks.
	TCP bool
	// TLS gives each node a certificate from a CA made for the test
	// (internal/devcert, files in Cluster.TLSDir): internode RPC over TCP
	// is mutual TLS, the HTTP API is HTTPS, and Client trusts the CA.
	TLS bool
	// Configure adjusts each node's configuration before it starts.
	Configure func(i int, cfg *node.Config)
	// Log receives node logs; nil discards them.
	Log io.Writer
}

// Cluster is a running test cluster. Its methods are safe for use from the
// test goroutine; Close runs automatically at test cleanup.
type Cluster struct {
	t     testing.TB
	opts  Options
	Net   *transport.Network
	cfgs  []node.Config
	fs    []vfs.FS
	nodes []*node.Node
	// Client is an HTTP client with keep-alives for talking to the nodes.
	Client *http.Client
	// TLSDir holds the CA and node certificates when Options.TLS is set
	// (devcert.ReadCA reads the CA back, to issue more).
	TLSDir string
}

// Start runs n nodes over the in-memory networks and waits until every
// node sees all of them on its ring.
func Start(t testing.TB, n int) *Cluster {
	return StartWith(t, Options{Nodes: n})
}

// StartWith runs a cluster with options.
func StartWith(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t, opts: opts, Net: transport.NewNetwork(clock.Real()),
		Client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	t.Cleanup(c.Close)
	ca := c.makeCA()
	for i := 0; i < opts.Nodes; i++ {
		cfg := node.DefaultConfig()
		cfg.ID = fmt.Sprintf("n%d", i+1)
		if ca != nil {
			c.certify(ca, &cfg)
		}
		cfg.DataDir = "/data/" + cfg.ID
		cfg.HTTPAddr = "127.0.0.1:0"
		cfg.RPCAddr = "127.0.0.1:0"
		cfg.GossipAddr = "127.0.0.1:0"
		cfg.FastGossip = true
		cfg.HeartbeatInterval = 50 * time.Millisecond
		cfg.Detector.FirstHeartbeatEstimate = 50 * time.Millisecond
		// Suspect a silent peer after about 1.3 s: quick enough for
		// failure tests, tolerant of a loaded machine under -race.
		cfg.Detector.MinStdDev = 50 * time.Millisecond
		cfg.Detector.AcceptablePause = time.Second
		cfg.RequestTimeout = 2 * time.Second
		// The cluster forms by joins, each a membership change: settle
		// for as long as a request may take, and look often.
		cfg.TransferSettle = cfg.RequestTimeout
		cfg.MembershipInterval = 100 * time.Millisecond
		cfg.AntiEntropy.Interval = 24 * time.Hour // tests run anti-entropy on demand
		cfg.ShutdownTimeout = 2 * time.Second
		if opts.Configure != nil {
			opts.Configure(i, &cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
		c.fs = append(c.fs, vfs.NewMem())
		c.nodes = append(c.nodes, nil)
	}
	for i := range c.cfgs {
		c.startNode(i)
	}
	c.WaitRing()
	c.WaitReachable()
	return c
}

func (c *Cluster) startNode(i int) {
	c.t.Helper()
	cfg := c.cfgs[i]
	if cfg.FS == nil {
		cfg.FS = c.fs[i]
	}
	if !c.opts.TCP {
		cfg.Transport = c.Net.NewTransport(cfg.ID+".rpc", cfg.ID)
	}
	cfg.Join = nil
	for j, n := range c.nodes {
		if j != i && n != nil {
			cfg.Join = append(cfg.Join, n.GossipAddr())
		}
	}
	log := zerolog.Nop()
	if c.opts.Log != nil {
		log = zerolog.New(c.opts.Log).With().Timestamp().Logger()
	}
	n, err := node.Open(cfg, log)
	if err != nil {
		c.t.Fatalf("start %s: %v", cfg.ID, err)
	}
	c.nodes[i] = n
}

// Node returns node i (0-based); nil while it is stopped.
func (c *Cluster) Node(i int) *node.Node { return c.nodes[i] }

// Size returns the number of nodes, running or not.
func (c *Cluster) Size() int { return len(c.nodes) }

// HTTPAddrs returns the HTTP addresses of the running nodes.
func (c *Cluster) HTTPAddrs() []string {
	var out []string
	for _, n := range c.nodes {
		if n != nil {
			out = append(out, n.HTTPAddr())
		}
	}
	return out
}

// URL returns the base URL of node i.
func (c *Cluster) URL(i int) string {
	if c.opts.TLS {
		return "https://" + c.nodes[i].HTTPAddr()
	}
	return "http://" + c.nodes[i].HTTPAddr()
}

// Stop stops node i, as a crash would from the cluster's point of view
// (its data stays on its filesystem).
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	if c.nodes[i] == nil {
		return
	}
	if err := c.nodes[i].Close(); err != nil {
		c.t.Logf("stop %s: %v", c.cfgs[i].ID, err)
	}
	c.nodes[i] = nil
}

// Restart starts a stopped node i again with the same ID and data.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	c.startNode(i)
}

// Close stops every node.
func (c *Cluster) Close() {
	for i := range c.nodes {
		if c.nodes[i] != nil {
			c.nodes[i].Close()
			c.nodes[i] = nil
		}
	}
	c.Client.CloseIdleConnections()
}

// Eventually polls cond every 10 ms until it holds or d passes.
func (c *Cluster) Eventually(d time.Duration, what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitRing waits until every running node has every node on its ring.
func (c *Cluster) WaitRing() {
	c.t.Helper()
	c.Eventually(60*time.Second, "every node to see the whole ring", func() bool {
		for _, n := range c.nodes {
			if n != nil && (n.Ring() == nil || n.Ring().Len() != len(c.nodes)) {
				return false
			}
		}
		return true
	})
}

// WaitReachable waits until every running node's failure detector has
// heard from and trusts every other running node, and suspects the stopped
// ones.
func (c *Cluster) WaitReachable() {
	c.t.Helper()
	c.Eventually(10*time.Second, "failure detectors to agree on who is up", func() bool {
		for _, n := range c.nodes {
			if n == nil {
				continue
			}
			heard := map[string]bool{}
			for _, p := range n.Detector().Snapshot() {
				heard[p.Peer] = p.Samples > 0
			}
			for j, m := range c.nodes {
				if m != nil && c.cfgs[j].ID != n.ID() && !heard[c.cfgs[j].ID] {
					return false
				}
			}
			for j, m := range c.nodes {
				id := c.cfgs[j].ID
				if id == n.ID() {
					continue
				}
				if n.Detector().Available(id) != (m != nil) {
					return false
				}
			}
		}
		return true
	})
}

// Response is a finished HTTP exchange.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends a request to node i.
func (c *Cluster) Do(i int, method, path string, body []byte, header map[string]string) Response {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.URL(i)+path, strings.NewReader(string(body)))
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := c.Client.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s on node %d: %v", method, path, i, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}
