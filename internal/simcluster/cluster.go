package simcluster

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/gossip"
	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/transport"
)

// Options shape a simulated cluster.
type Options struct {
	// Nodes is the cluster size. Nodes are named n1, n2, ...
	Nodes int
	// Configure adjusts each node's configuration (from NodeConfig)
	// before it first starts.
	Configure func(i int, cfg *node.Config)
	// Log receives the nodes' logs; nil discards them.
	Log io.Writer
	// Fate, if set, decides every RPC's fate (see transport.Network).
	Fate func(from, to, method string, body []byte) transport.Fate
	// PacketFate, if set, decides every gossip packet's fate.
	PacketFate func(from, to string, b []byte) gossip.PacketFate
	// CrashRand, if set, picks which unsynced writes a crash keeps (up to
	// half of them, as a disk might); nil loses them all.
	CrashRand *rand.Rand
	// WrapFS, if set, wraps node i's disk at every start, for example to
	// inject I/O errors (internal/faultfs).
	WrapFS func(i int, fs vfs.FS) vfs.FS
}

// Cluster is a running simulated cluster. Its methods may be called from
// any goroutine of the bubble.
type Cluster struct {
	t      testing.TB
	opts   Options
	log    zerolog.Logger
	RPC    *transport.Network
	Gossip *gossip.MemNetwork

	mu sync.Mutex // guards members' fields that change, and blocks

	// members holds the nodes, replaced whole (copy on write) by Add, so
	// that reading it needs no lock while nodes are added.
	members atomic.Pointer[[]*member]
	blocks  map[[2]int]bool
}

// member is one node slot: its configuration, disk and clock outlive the
// node.Node of each life.
type member struct {
	cfg    node.Config
	fs     *vfs.MemFS
	clk    *clock.Skewed
	n      *node.Node
	h      http.Handler
	life   int // incremented by every stop, crash and wipe
	paused bool
}

// NodeConfig returns the configuration simulated nodes start from: small
// caches and partitions (a node opens in milliseconds), and otherwise the
// defaults: heartbeats, gossip and the failure detector at their real
// rhythm (simulated time makes waiting free, but every message costs). Anti-entropy's background exchanges are
// off (tests run them on demand); the nemesis simulation turns them on.
func NodeConfig(i int) node.Config {
	cfg := node.DefaultConfig()
	cfg.ID = fmt.Sprintf("n%d", i+1)
	cfg.DataDir = "/data/" + cfg.ID
	cfg.Partitions = 16
	cfg.RowCacheSize = 1 << 20
	cfg.RequestTimeout = 2 * time.Second
	cfg.AntiEntropy.Interval = 24 * time.Hour
	cfg.AntiEntropy.LeavesPerPartition = 64
	cfg.ShutdownTimeout = time.Second
	return cfg
}

// Start runs opts.Nodes nodes and waits until each has every node on its
// ring and trusts every other. It must be called inside a synctest bubble;
// the cluster is closed at the end of the test.
func Start(t testing.TB, opts Options) *Cluster {
	t.Helper()
	c := &Cluster{t: t, opts: opts, RPC: transport.NewNetwork(clock.Real()), Gossip: gossip.NewMemNetwork(), blocks: map[[2]int]bool{}}
	c.log = zerolog.Nop()
	c.members.Store(new([]*member))
	if opts.Log != nil {
		c.log = zerolog.New(opts.Log).With().Timestamp().Logger()
	}
	c.RPC.SetFate(opts.Fate)
	c.Gossip.SetPacketFate(opts.PacketFate)
	t.Cleanup(c.Close)
	var all []*member
	for i := range opts.Nodes {
		cfg := NodeConfig(i)
		if opts.Configure != nil {
			opts.Configure(i, &cfg)
		}
		all = append(all, &member{cfg: cfg, fs: vfs.NewCrashableMem(), clk: clock.NewSkewed(clock.Real())})
	}
	c.members.Store(&all)
	for i := range c.all() {
		c.Restart(i)
	}
	c.AwaitReachable()
	return c
}

// Add starts one more node, named n<k> after the k nodes so far, joining
// the running nodes, and returns its index. configure, if set, adjusts its
// configuration (from NodeConfig and Options.Configure) first, for
// example to stage it. It fails the test if the node cannot start.
func (c *Cluster) Add(configure func(cfg *node.Config)) int {
	c.t.Helper()
	i, err := c.TryAdd(configure)
	if err != nil {
		c.t.Fatal(err)
	}
	return i
}

// TryAdd is Add that returns the error of a node that cannot start (it
// reaches none of the others); the node is then one of the cluster, down,
// and TryRestart starts it later.
func (c *Cluster) TryAdd(configure func(cfg *node.Config)) (int, error) {
	c.mu.Lock()
	i := len(c.all())
	cfg := NodeConfig(i)
	if c.opts.Configure != nil {
		c.opts.Configure(i, &cfg)
	}
	if configure != nil {
		configure(&cfg)
	}
	all := append(slices.Clone(c.all()), &member{cfg: cfg, fs: vfs.NewCrashableMem(), clk: clock.NewSkewed(clock.Real())})
	c.members.Store(&all)
	c.mu.Unlock()
	return i, c.TryRestart(i)
}

// Size returns the number of nodes, running or not.
func (c *Cluster) Size() int { return len(c.all()) }

// ID returns node i's ID.
func (c *Cluster) ID(i int) string { return c.all()[i].cfg.ID }

// Index returns the index of the node with ID id, or -1.
func (c *Cluster) Index(id string) int {
	for i, m := range c.all() {
		if m.cfg.ID == id {
			return i
		}
	}
	return -1
}

// rpcAddr and gossipAddr are node i's addresses on the two networks.
func (c *Cluster) rpcAddr(i int) string    { return c.all()[i].cfg.ID }
func (c *Cluster) gossipAddr(i int) string { return fmt.Sprintf("10.0.0.%d:7946", i+1) }

// Node returns node i, nil while it is down.
func (c *Cluster) Node(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.all()[i].n
}

// Running reports whether node i is up (a paused node is up).
func (c *Cluster) Running(i int) bool { return c.Node(i) != nil }

// Clock returns node i's clock.
func (c *Cluster) Clock(i int) *clock.Skewed { return c.all()[i].clk }

// Life returns how many times node i was stopped, crashed or wiped: an
// answer from node i is from one life only if Life did not change while
// the request ran.
func (c *Cluster) Life(i int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.all()[i].life
}

// Response is a finished HTTP exchange.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Do sends an HTTP request to node i's API, in process. ok is false when
// node i is down, or stopped or crashed while the request ran: the answer
// then came from a process that no longer exists, as if the connection
// had been reset, and says nothing reliable.
func (c *Cluster) Do(i int, method, path string, body []byte, header map[string]string) (resp Response, ok bool) {
	c.mu.Lock()
	m := c.all()[i]
	h, life := m.h, m.life
	c.mu.Unlock()
	if h == nil {
		return Response{}, false
	}
	req := httptest.NewRequest(method, "http://"+m.cfg.ID+path, bytes.NewReader(body))
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if c.Life(i) != life {
		return Response{}, false
	}
	return Response{Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}, true
}

// Restart starts node i (again) on its disk, joining the running nodes,
// and fails the test if it cannot start.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if err := c.TryRestart(i); err != nil {
		c.t.Fatal(err)
	}
}

// TryRestart is Restart that returns the error: a node with an empty disk
// cannot start while it reaches none of the others (the server exits, and
// its operator starts it again later).
func (c *Cluster) TryRestart(i int) error {
	c.mu.Lock()
	m := c.all()[i]
	if m.n != nil {
		c.mu.Unlock()
		return fmt.Errorf("restart %s: it is running", m.cfg.ID)
	}
	cfg := m.cfg
	cfg.FS, cfg.Clock = m.fs, m.clk
	if c.opts.WrapFS != nil {
		cfg.FS = c.opts.WrapFS(i, m.fs)
	}
	cfg.Join = nil
	for j, o := range c.all() {
		if j != i && o.n != nil {
			cfg.Join = append(cfg.Join, c.gossipAddr(j))
		}
	}
	c.mu.Unlock()
	cfg.Transport = c.RPC.NewTransport(c.rpcAddr(i), cfg.ID)
	gt, err := c.Gossip.NewTransport(c.gossipAddr(i))
	if err != nil {
		_ = cfg.Transport.Close()
		return fmt.Errorf("start %s: %w", cfg.ID, err)
	}
	cfg.GossipTransport = gt
	cfg.HTTPListener = newIdleListener(cfg.ID + ":http")
	n, err := node.Open(cfg, c.log)
	if err != nil {
		_ = gt.Shutdown() // idempotent if the node shut it down
		return fmt.Errorf("start %s: %w", cfg.ID, err)
	}
	c.mu.Lock()
	m.n, m.h = n, n.Handler()
	c.mu.Unlock()
	return nil
}

// down takes node i out of the cluster and returns it, nil if it was not
// running. Its addresses are cut off first, so nothing it does from here
// on reaches anyone.
func (c *Cluster) down(i int) *node.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.all()[i]
	n := m.n
	if n == nil {
		return nil
	}
	m.n, m.h = nil, nil
	m.life++
	if m.paused {
		m.paused = false
		c.RPC.Hold(c.rpcAddr(i), false)
	}
	return n
}

// Stop stops node i cleanly: its data stays.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	if n := c.down(i); n != nil {
		if err := n.Close(); err != nil {
			c.t.Logf("stop %s: %v", c.ID(i), err)
		}
	}
}

// Crash kills node i as kill -9 would: what it had not fsynced is lost
// (all of it, or a random part with Options.CrashRand), and nothing it
// does after the crash reaches the network.
func (c *Cluster) Crash(i int) {
	c.t.Helper()
	c.RPC.Down(c.rpcAddr(i))
	c.Gossip.Down(c.gossipAddr(i))
	n := c.down(i)
	if n == nil {
		c.RPC.Up(c.rpcAddr(i))
		c.Gossip.Up(c.gossipAddr(i))
		return
	}
	m := c.all()[i]
	cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: 0}
	if r := c.opts.CrashRand; r != nil {
		cfg.UnsyncedDataPercent = r.IntN(51)
		cfg.RNG = rand.New(rand.NewPCG(r.Uint64(), r.Uint64()))
	}
	clone := m.fs.CrashClone(cfg)
	_ = n.Close() // the dead process's last writes go to the old disk
	c.mu.Lock()
	m.fs = clone
	c.mu.Unlock()
	c.RPC.Up(c.rpcAddr(i))
	c.Gossip.Up(c.gossipAddr(i))
}

// Wipe crashes node i and loses its disk: it restarts empty.
func (c *Cluster) Wipe(i int) {
	c.t.Helper()
	c.Crash(i)
	c.mu.Lock()
	c.all()[i].fs = vfs.NewCrashableMem()
	c.mu.Unlock()
}

// Pause stops node i as SIGSTOP would: messages to, from and within it
// wait (transport.Network.Hold), and gossip does not hear from it.
// Resume continues it: the messages that waited are delivered late.
func (c *Cluster) Pause(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.all()[i]; m.n != nil && !m.paused {
		m.paused = true
		c.RPC.Hold(c.rpcAddr(i), true)
		c.Gossip.Down(c.gossipAddr(i))
	}
}

// Resume continues a paused node.
func (c *Cluster) Resume(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if m := c.all()[i]; m.paused {
		m.paused = false
		c.RPC.Hold(c.rpcAddr(i), false)
		c.Gossip.Up(c.gossipAddr(i))
	}
}

// Partition splits both networks into groups of node indices; nodes in
// no group form one more group.
func (c *Cluster) Partition(groups ...[]int) {
	var rpc, gsp [][]string
	for _, g := range groups {
		var r, s []string
		for _, i := range g {
			r, s = append(r, c.rpcAddr(i)), append(s, c.gossipAddr(i))
		}
		rpc, gsp = append(rpc, r), append(gsp, s)
	}
	c.RPC.Partition(rpc...)
	c.Gossip.Partition(gsp...)
}

// Block cuts (on) or restores the traffic from node i to node j, one way.
func (c *Cluster) Block(i, j int, on bool) {
	c.mu.Lock()
	if on {
		c.blocks[[2]int{i, j}] = true
	} else {
		delete(c.blocks, [2]int{i, j})
	}
	c.mu.Unlock()
	c.RPC.Block(c.rpcAddr(i), c.rpcAddr(j), on)
	c.Gossip.Block(c.gossipAddr(i), c.gossipAddr(j), on)
}

// Heal removes every partition and one-way block.
func (c *Cluster) Heal() {
	c.mu.Lock()
	blocks := c.blocks
	c.blocks = map[[2]int]bool{}
	c.mu.Unlock()
	for b := range blocks {
		c.RPC.Block(c.rpcAddr(b[0]), c.rpcAddr(b[1]), false)
	}
	c.RPC.Heal()
	c.Gossip.Heal()
}

// StepClock steps node i's clock by d (negative: back).
func (c *Cluster) StepClock(i int, d time.Duration) { c.all()[i].clk.Step(d) }

// Advance lets d of simulated time pass, then waits until every goroutine
// of the bubble is blocked.
func (c *Cluster) Advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// Await advances simulated time in steps of 50 ms until cond holds, and
// fails the test if it does not within limit. It reports how long it took.
func (c *Cluster) Await(limit time.Duration, what string, cond func() bool) time.Duration {
	c.t.Helper()
	start := time.Now()
	synctest.Wait()
	for !cond() {
		if time.Since(start) >= limit {
			c.t.Fatalf("%s: not within %v of simulated time", what, limit)
		}
		c.Advance(50 * time.Millisecond)
	}
	return time.Since(start)
}

// AwaitReachable waits until every running node has every node on its
// ring, trusts every other running node and suspects the others.
func (c *Cluster) AwaitReachable() time.Duration {
	c.t.Helper()
	return c.Await(30*time.Second, "failure detectors to agree on who is up", c.Agreed)
}

// Agreed reports whether every running node has every node on its ring,
// trusts every other running node and suspects the others.
func (c *Cluster) Agreed() bool {
	for i := range c.all() {
		n := c.Node(i)
		if n == nil {
			continue
		}
		if r := n.Ring(); r == nil || r.Len() != len(c.all()) {
			return false
		}
		for j := range c.all() {
			if j != i && n.Detector().Available(c.ID(j)) != (c.Running(j) && !c.paused(j)) {
				return false
			}
		}
	}
	return true
}

func (c *Cluster) paused(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.all()[i].paused
}

// Close stops every node, then lets simulated time run so that what
// memberlist leaves behind after its shutdown (probes waiting on their
// timers) finishes inside the bubble.
func (c *Cluster) Close() {
	for i := range c.all() {
		c.Resume(i)
		c.Stop(i)
	}
	time.Sleep(time.Minute)
}

// all returns the nodes.
func (c *Cluster) all() []*member { return *c.members.Load() }
