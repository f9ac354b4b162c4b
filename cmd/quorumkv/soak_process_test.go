package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	// The soak names its nodes node.
	nodepkg "github.com/quorumkv/quorumkv/node"
)

// TestProcessSoak is a Jepsen-style soak on real server processes. Clients
// keep a set under each of 20 keys: they read the key with the JSON
// envelope, take the union of the siblings, add an element of their own
// and write the union back with the read's X-Context. Now and then one
// deletes a key with the context of its read, and in the last quarter 5
// keys are deleted for good. Meanwhile a nemesis injects one kind of fault
// per subtest. After the last heal the test waits for the hints, runs
// anti-entropy on every node, polls until the replicas agree, and checks
// the history for acknowledged elements that are gone (lost), elements
// that nobody wrote (phantoms) and deleted keys that came back
// (resurrected). Each subtest logs one row of the RELIABILITY.md table.
//
// It is opt-in; partitions need root (network namespaces):
//
//	QUORUMKV_PROCESS_SOAK=1 QUORUMKV_SOAK_SECONDS=60 go test ./cmd/quorumkv/ -run TestProcessSoak -v -timeout 60m
//
// QUORUMKV_SOAK_NODES lists the cluster sizes (default "3,5"),
// QUORUMKV_SOAK_REPORT names a file the rows are appended to, and
// QUORUMKV_SOAK_SEED fixes the random choices (the fault timing still
// varies from run to run).
func TestProcessSoak(t *testing.T) {
	if os.Getenv("QUORUMKV_PROCESS_SOAK") != "1" {
		t.Skip("set QUORUMKV_PROCESS_SOAK=1 to run the process fault soak")
	}
	secs := envInt(t, "QUORUMKV_SOAK_SECONDS", 60, 10)
	sizes := []int{3, 5}
	if s := os.Getenv("QUORUMKV_SOAK_NODES"); s != "" {
		sizes = nil
		for _, f := range splitList(s) {
			v, err := strconv.Atoi(f)
			if err != nil || v < 3 || v > 9 {
				t.Fatalf("QUORUMKV_SOAK_NODES=%q: want sizes from 3 to 9, such as 3,5", s)
			}
			sizes = append(sizes, v)
		}
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("QUORUMKV_SOAK_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("QUORUMKV_SOAK_SEED=%q: want an unsigned integer", s)
		}
		seed = v
	}
	t.Logf("seed %d (QUORUMKV_SOAK_SEED), %d s per subtest", seed, secs)
	bin := buildBinary(t)
	for _, n := range sizes {
		t.Run(fmt.Sprintf("n%d", n), func(t *testing.T) {
			for i, fault := range []string{"none", "kill9", "pause", "partition"} {
				t.Run(fault, func(t *testing.T) {
					// A run cut off by go test's deadline skips its cleanups.
					if d, ok := t.Deadline(); ok && time.Until(d) < time.Duration(secs)*time.Second+2*soakSettle {
						t.Skipf("%v left before the go test deadline, not enough for %d s and the checks: raise -timeout", time.Until(d).Round(time.Second), secs)
					}
					runSoak(t, bin, soakConfig{
						fault: fault, nodes: n, duration: time.Duration(secs) * time.Second,
						seed: seed ^ uint64(n)<<8 ^ uint64(i),
					})
				})
			}
		})
	}
}

// The workload's shape.
const (
	soakBucket  = "soak"
	soakKeys    = 20
	soakRetired = 5 // keys k00..k04, deleted for good in the last quarter
	soakClients = 8
	// soakPace spaces one client's operations, so that an operation that
	// fails fast (a refused connection) counts no more than one that
	// succeeds: unavailable % is then close to the share of client time
	// lost to the fault.
	soakPace    = 40 * time.Millisecond
	soakDeleteP = 0.05
	// soakOpTimeout is the server-side timeout of a workload request,
	// soakClientTimeout the client's, after which the outcome is unknown.
	soakOpTimeout     = "3s"
	soakClientTimeout = 6 * time.Second
	// soakSettle bounds each wait after the heal: membership, hints,
	// anti-entropy, agreement.
	soakSettle = 60 * time.Second
	soakLabel  = "set-add, 20 keys"
)

// soakProfile is the consistency level of one operation: the query of
// its read and of its write, and how many of the key's 3 replicas each
// needs. A read at R sees a write acknowledged at W when R + W > 3 and
// both counted primaries only.
type soakProfile struct {
	weight      int
	read, write string
	r, w        int
}

// soakProfiles are drawn per operation: mostly the bucket's r=2/w=2.
// n=2 reads and writes the first 2 of the 3 replicas, so its quorum of 2
// still meets any other quorum of 2.
var soakProfiles = []soakProfile{
	{70, "", "", 2, 2},
	{10, "r=all", "w=all", 3, 3},
	{10, "r=one", "w=one", 1, 1},
	{10, "n=2&r=quorum", "n=2&w=quorum", 2, 2},
}

type soakConfig struct {
	fault    string // none, kill9, pause or partition
	nodes    int
	duration time.Duration
	seed     uint64
}

// outcome is what a client knows about an operation.
type outcome int

const (
	outcomeOK outcome = iota
	// outcomeFailed: certainly not applied (the read failed, the
	// connection was refused, or the server rejected the request).
	outcomeFailed
	// outcomeUnknown: may have been applied (a 5xx such as 503
	// quorum_failed or 504, a timeout, a connection lost mid-request).
	outcomeUnknown
)

func (o outcome) String() string {
	return [...]string{"ok", "failed", "indeterminate"}[o]
}

// soakOp is one logical operation: a read and, if the read succeeded, the
// write that depends on it.
type soakOp struct {
	client int
	del    bool
	key    string
	elem   string // the element an add adds
	node   string
	query  string // the profile's parameters

	invoke   time.Time
	sent     time.Time // the write went out; zero if the read failed
	complete time.Time
	seen     []string // the live elements the read returned, sorted
	r, w     int      // the profile's levels
	receipt  string   // the read's: the replicas that answered it
	outcome  outcome
	detail   string // status and code, the receipt, or the transport error
}

// mayApply reports whether the op's write may have taken effect.
func (op *soakOp) mayApply() bool { return !op.sent.IsZero() && op.outcome != outcomeFailed }

func (op *soakOp) saw(elem string) bool {
	_, ok := slices.BinarySearch(op.seen, elem)
	return ok
}

func (op *soakOp) format(start time.Time) string {
	at := func(ts time.Time) string {
		if ts.IsZero() {
			return "-"
		}
		return fmt.Sprintf("%.3fs", ts.Sub(start).Seconds())
	}
	what := "add " + op.elem
	if op.del {
		what = "delete"
	}
	q := op.query
	if q == "" {
		q = "defaults"
	}
	return fmt.Sprintf("c%d %s %s via %s [%s] invoke %s write %s done %s: %s (%s); read (%s) saw %d elements",
		op.client, op.key, what, op.node, q, at(op.invoke), at(op.sent), at(op.complete), op.outcome, op.detail, op.receipt, len(op.seen))
}

// soakNode is one server process of a soak cluster, restarted on the same
// data directory and addresses.
type soakNode struct {
	*proc
	ns  string // network namespace, "" on loopback
	run *soakRun

	mu struct {
		sync.Mutex
		unexpected []string // exits nobody asked for
	}
}

// soakRun is one life of a node's process.
type soakRun struct {
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process has exited
	expected atomic.Bool   // the nemesis or the cleanup ended it
	paused   atomic.Bool
}

func (r *soakRun) alive() bool {
	select {
	case <-r.exited:
		return false
	default:
		return true
	}
}

// soakCluster is a cluster of server processes on loopback, or each in
// its network namespace when lab is set.
type soakCluster struct {
	t      *testing.T
	bin    string
	nodes  []*soakNode
	lab    *netLab
	client *http.Client
}

func newSoakCluster(t *testing.T, bin string, n int, lab *netLab) *soakCluster {
	t.Helper()
	dir := t.TempDir()
	tr := &http.Transport{MaxIdleConnsPerHost: 2 * soakClients, IdleConnTimeout: 30 * time.Second}
	if lab != nil {
		tr.DialContext = lab.dial
	} else {
		tr.DialContext = (&net.Dialer{Timeout: 2 * time.Second}).DialContext
	}
	c := &soakCluster{t: t, bin: bin, lab: lab, client: &http.Client{Transport: tr, Timeout: soakClientTimeout}}
	t.Cleanup(tr.CloseIdleConnections)
	var ports []string
	if lab == nil {
		ports = distinctPorts(t, 3*n)
	}
	for i := 0; i < n; i++ {
		p := &proc{id: fmt.Sprintf("n%d", i+1), data: filepath.Join(dir, fmt.Sprintf("n%d", i+1))}
		node := &soakNode{proc: p}
		if lab != nil {
			// Each namespace has its own ports, so every node uses the same.
			node.ns = lab.ns(i)
			p.http, p.rpc, p.gossip = lab.addr(i)+":8080", lab.addr(i)+":7070", lab.addr(i)+":7946"
		} else {
			p.http, p.rpc, p.gossip = ports[3*i], ports[3*i+1], ports[3*i+2]
		}
		f, err := os.OpenFile(filepath.Join(dir, p.id+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		p.log = f
		c.nodes = append(c.nodes, node)
	}
	// Runs before t.TempDir's removal and the lab's, both registered
	// earlier.
	t.Cleanup(c.shutdown)
	for i := range c.nodes {
		if err := c.start(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.waitReachable(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.waitSettled(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	return c
}

// waitSettled waits until every node reports one committed layout that
// holds every node, with no membership change in progress.
func (c *soakCluster) waitSettled(bound time.Duration) error {
	return c.poll(bound, "the membership to settle", func() error {
		var epoch uint64
		for i, node := range c.nodes {
			v, err := c.status(node)
			if err != nil {
				return err
			}
			if v.Change != nil || v.Epoch == 0 || i > 0 && v.Epoch != epoch {
				return fmt.Errorf("%s: epoch %d, change %s", node.id, v.Epoch, describe(v.Change))
			}
			epoch = v.Epoch
			in := 0
			for _, m := range v.Members {
				if m.InRing {
					in++
				}
			}
			if in != len(c.nodes) {
				return fmt.Errorf("%s has %d of %d nodes in its ring", node.id, in, len(c.nodes))
			}
		}
		return nil
	})
}

// start starts node i, joining the others.
func (c *soakCluster) start(i int) error {
	node := c.nodes[i]
	args := []string{"server", "--id", node.id, "--data", node.data, "--http", node.http,
		"--rpc", node.rpc, "--gossip", node.gossip, "--log-level", "info", "--insecure"}
	var seeds []string
	for j, o := range c.nodes {
		if j != i && (j < i || o.run != nil) {
			seeds = append(seeds, o.gossip)
		}
	}
	if len(seeds) > 0 {
		args = append(args, "--join", strings.Join(seeds, ","))
	}
	var cmd *exec.Cmd
	if node.ns != "" {
		// ip netns exec replaces itself with the server: the PID is the
		// server's, so signals reach it directly.
		cmd = exec.Command("ip", append([]string{"netns", "exec", node.ns, c.bin}, args...)...)
	} else {
		cmd = exec.Command(c.bin, args...)
	}
	cmd.Stdout, cmd.Stderr = node.log, node.log
	setDeathSignal(cmd)
	fmt.Fprintf(node.log, "=== soak: starting %s at %s\n", node.id, time.Now().Format(time.TimeOnly))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", node.id, err)
	}
	run := &soakRun{cmd: cmd, exited: make(chan struct{})}
	node.run = run
	go func() {
		err := cmd.Wait()
		if !run.expected.Load() {
			node.mu.Lock()
			node.mu.unexpected = append(node.mu.unexpected, fmt.Sprintf("%s exited by itself at %s: %v", node.id, time.Now().Format(time.TimeOnly), err))
			node.mu.Unlock()
		}
		close(run.exited)
	}()
	return nil
}

// kill9 kills node i with SIGKILL and waits for it to be gone.
func (c *soakCluster) kill9(i int) error {
	run := c.nodes[i].run
	run.expected.Store(true)
	run.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-run.exited:
		return nil
	case <-time.After(10 * time.Second):
		return fmt.Errorf("%s still running 10 s after SIGKILL", c.nodes[i].id)
	}
}

func (c *soakCluster) pause(i int) {
	c.nodes[i].run.paused.Store(true)
	c.nodes[i].run.cmd.Process.Signal(syscall.SIGSTOP)
}

func (c *soakCluster) resume(i int) {
	c.nodes[i].run.cmd.Process.Signal(syscall.SIGCONT)
	c.nodes[i].run.paused.Store(false)
}

// restart starts node i again on its data and waits until it serves HTTP.
func (c *soakCluster) restart(i int) error {
	if err := c.start(i); err != nil {
		return err
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if code, _, _, err := c.do(c.nodes[i], "GET", "/v1/cluster", nil, ""); err == nil && code == 200 {
			return nil
		}
		if !c.nodes[i].run.alive() {
			return fmt.Errorf("%s exited during its restart", c.nodes[i].id)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s does not serve HTTP 20 s after its restart", c.nodes[i].id)
}

// healAll undoes every fault: cuts, pauses and kills.
func (c *soakCluster) healAll() error {
	var errs []error
	if c.lab != nil {
		errs = append(errs, c.lab.heal())
	}
	for i, node := range c.nodes {
		switch {
		case node.run.paused.Load():
			c.resume(i)
		case !node.run.alive() && node.run.expected.Load():
			errs = append(errs, c.restart(i))
		}
	}
	return errors.Join(errs...)
}

// shutdown stops every process: SIGTERM, then SIGKILL after 10 s.
func (c *soakCluster) shutdown() {
	for _, node := range c.nodes {
		if node.run == nil || !node.run.alive() {
			continue
		}
		node.run.expected.Store(true)
		node.run.cmd.Process.Signal(syscall.SIGCONT)
		node.run.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, node := range c.nodes {
		if node.run == nil {
			continue
		}
		select {
		case <-node.run.exited:
		case <-time.After(10 * time.Second):
			node.run.cmd.Process.Signal(syscall.SIGKILL)
			<-node.run.exited
		}
	}
	for _, node := range c.nodes {
		if c.t.Failed() {
			c.t.Logf("%s log, last lines:\n%s", node.id, logTail(node.log.Name(), 60))
		}
		node.log.Close()
	}
}

// distinctPorts returns k loopback addresses that were free, all
// different: freePort closes its listener at once, so two calls can get
// the same port, and a node then fails to bind. (Another process may
// still take one before the node binds it.)
func distinctPorts(t *testing.T, k int) []string {
	t.Helper()
	var addrs []string
	for i := 0; i < k; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		addrs = append(addrs, l.Addr().String())
	}
	return addrs
}

func logTail(path string, lines int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	ls := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(ls[max(0, len(ls)-lines):], "\n")
}

// unexpectedExits lists the processes that died by themselves.
func (c *soakCluster) unexpectedExits() []string {
	var out []string
	for _, node := range c.nodes {
		node.mu.Lock()
		out = append(out, node.mu.unexpected...)
		node.mu.Unlock()
	}
	return out
}

// do sends one request to node; query is appended to path as is.
func (c *soakCluster) do(node *soakNode, method, path string, hdr map[string]string, body string) (int, string, http.Header, error) {
	ctx, cancel := context.WithTimeout(context.Background(), soakClientTimeout)
	defer cancel()
	return c.doCtx(ctx, node, method, path, hdr, body)
}

func (c *soakCluster) doCtx(ctx context.Context, node *soakNode, method, path string, hdr map[string]string, body string) (int, string, http.Header, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+node.http+path, rd)
	if err != nil {
		return 0, "", nil, err
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, "", nil, err
	}
	return resp.StatusCode, string(b), resp.Header, nil
}

func (c *soakCluster) status(node *soakNode) (nodepkg.ClusterStatus, error) {
	var v nodepkg.ClusterStatus
	code, body, _, err := c.do(node, "GET", "/v1/cluster", nil, "")
	if err != nil {
		return v, err
	}
	if code != 200 {
		return v, fmt.Errorf("GET /v1/cluster on %s: %d %s", node.id, code, body)
	}
	return v, json.Unmarshal([]byte(body), &v)
}

// waitReachable waits until every node trusts every member.
func (c *soakCluster) waitReachable(bound time.Duration) error {
	return c.poll(bound, "every node to see every member reachable", func() error {
		for _, node := range c.nodes {
			v, err := c.status(node)
			if err != nil {
				return err
			}
			up := 0
			for _, m := range v.Members {
				if m.Reachable {
					up++
				}
			}
			if up != len(c.nodes) {
				return fmt.Errorf("%s sees %d of %d members reachable", node.id, up, len(c.nodes))
			}
		}
		return nil
	})
}

// poll retries cond every 100 ms until it returns nil or bound passes.
func (c *soakCluster) poll(bound time.Duration, what string, cond func() error) error {
	deadline := time.Now().Add(bound)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v waiting for %s: %w", bound, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// soakRead is one read of a key through one node.
type soakRead struct {
	node     string
	status   int
	context  string
	live     []string // sorted live elements
	siblings int
	versions string // X-Quorum-Versions
	receipt  string // who answered
	err      error
}

func (r soakRead) ok() bool { return r.err == nil }

// signature is what two replicas must share to agree.
func (r soakRead) signature() string {
	return r.context + "|" + strings.Join(r.live, ",")
}

func (r soakRead) String() string {
	if r.err != nil {
		return fmt.Sprintf("%s: %v", r.node, r.err)
	}
	return fmt.Sprintf("%s: %d, %d siblings, %d live elements, versions %s, %s, context %q", r.node, r.status, r.siblings, len(r.live), r.versions, r.receipt, r.context)
}

type envelope struct {
	Context  string `json:"context"`
	Siblings []struct {
		Value   []byte `json:"value"`
		Deleted bool   `json:"deleted"`
	} `json:"siblings"`
}

// read reads key through node with the JSON envelope.
func (c *soakCluster) read(ctx context.Context, node *soakNode, key, query string) soakRead {
	r := soakRead{node: node.id}
	path := "/v1/kv/" + soakBucket + "/" + key + "?" + joinQuery(query, "timeout="+soakOpTimeout)
	code, body, hdr, err := c.doCtx(ctx, node, "GET", path, map[string]string{"Accept": "application/json"}, "")
	r.status = code
	if err != nil {
		r.err = err
		return r
	}
	if code != 200 && code != 300 && code != 404 {
		r.err = fmt.Errorf("GET %d %s", code, errorCode(body))
		return r
	}
	var env envelope
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		r.err = fmt.Errorf("GET %d: the envelope does not parse: %v: %.200q", code, err, body)
		return r
	}
	r.context, r.siblings, r.versions = env.Context, len(env.Siblings), hdr.Get("X-Quorum-Versions")
	r.receipt = "replicas " + hdr.Get("X-Quorum-Replicas")
	if f := hdr.Get("X-Quorum-Fallbacks"); f != "" {
		r.receipt += " fallbacks " + f
	}
	live := map[string]bool{}
	for _, s := range env.Siblings {
		if s.Deleted {
			continue
		}
		for _, e := range strings.Split(string(s.Value), "\n") {
			if e != "" {
				live[e] = true
			}
		}
	}
	for e := range live {
		r.live = append(r.live, e)
	}
	slices.Sort(r.live)
	return r
}

func joinQuery(parts ...string) string {
	var q []string
	for _, p := range parts {
		if p != "" {
			q = append(q, p)
		}
	}
	return strings.Join(q, "&")
}

func errorCode(body string) string {
	var e struct{ Code string }
	if json.Unmarshal([]byte(body), &e) == nil && e.Code != "" {
		return e.Code
	}
	return fmt.Sprintf("%.80q", body)
}

// classifyWrite turns a write's response into an outcome. A request that
// never reached a server failed; one that may have reached it and got no
// definite answer, or a 5xx, is indeterminate.
func classifyWrite(code int, body string, hdr http.Header, err error) (outcome, string) {
	if err != nil {
		var oe *net.OpError
		if errors.As(err, &oe) && oe.Op == "dial" {
			return outcomeFailed, err.Error()
		}
		return outcomeUnknown, err.Error()
	}
	switch {
	case code == http.StatusNoContent:
		d := "204 replicas " + hdr.Get("X-Quorum-Replicas")
		if f := hdr.Get("X-Quorum-Fallbacks"); f != "" {
			d += " fallbacks " + f
		}
		if h := hdr.Get("X-Quorum-Hinted"); h != "" {
			d += " hinted " + h
		}
		return outcomeOK, d
	case code >= 500:
		return outcomeUnknown, fmt.Sprintf("%d %s", code, errorCode(body))
	default:
		return outcomeFailed, fmt.Sprintf("%d %s", code, errorCode(body))
	}
}

// soakClient is one workload goroutine.
type soakClient struct {
	c    *soakCluster
	id   int
	rng  *rand.Rand
	seq  int
	ops  []*soakOp
	stop <-chan struct{}
}

func (cl *soakClient) profile() soakProfile {
	w := cl.rng.IntN(100)
	for _, p := range soakProfiles {
		if w < p.weight {
			return p
		}
		w -= p.weight
	}
	return soakProfiles[0]
}

// op runs one add or delete of key and records it.
func (cl *soakClient) op(key string, del bool, p soakProfile) {
	readQ, writeQ := p.read, p.write
	node := cl.c.nodes[cl.rng.IntN(len(cl.c.nodes))]
	op := &soakOp{client: cl.id, del: del, key: key, node: node.id, query: joinQuery(readQ, writeQ), r: p.r, w: p.w, invoke: time.Now()}
	cl.ops = append(cl.ops, op)
	if !del {
		cl.seq++
		op.elem = fmt.Sprintf("c%d-%06d", cl.id, cl.seq)
	}
	ctx, cancel := context.WithTimeout(context.Background(), soakClientTimeout)
	defer cancel()
	r := cl.c.read(ctx, node, key, readQ)
	if !r.ok() {
		op.complete, op.outcome, op.detail = time.Now(), outcomeFailed, "read: "+r.err.Error()
		return
	}
	op.seen, op.receipt = r.live, r.receipt
	hdr := map[string]string{}
	if r.context != "" {
		hdr["X-Context"] = r.context
	}
	path := "/v1/kv/" + soakBucket + "/" + key + "?" + joinQuery(writeQ, "timeout="+soakOpTimeout)
	method, body := "DELETE", ""
	if !del {
		method = "PUT"
		hdr["Content-Type"] = "text/plain"
		set := append(slices.Clone(r.live), op.elem)
		slices.Sort(set)
		body = strings.Join(set, "\n")
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), soakClientTimeout)
	defer cancel2()
	op.sent = time.Now()
	code, respBody, respHdr, err := cl.c.doCtx(ctx2, node, method, path, hdr, body)
	op.complete = time.Now()
	op.outcome, op.detail = classifyWrite(code, respBody, respHdr, err)
}

// wait sleeps until next or until stop.
func (cl *soakClient) wait(next time.Time) bool {
	select {
	case <-cl.stop:
		return false
	case <-time.After(time.Until(next)):
		return true
	}
}

func soakKey(i int) string { return fmt.Sprintf("k%02d", i) }

// runWorkload adds and deletes until stop; the retirer deletes keys
// k00..k04 for good once retire is closed.
func (cl *soakClient) runWorkload(retire <-chan struct{}) {
	for next := time.Now(); cl.wait(next); next = next.Add(soakPace) {
		if d := time.Until(next); d < -soakPace {
			next = time.Now() // a slow op does not cause a burst after it
		}
		lo := 0
		select {
		case <-retire:
			lo = soakRetired
		default:
		}
		key := soakKey(lo + cl.rng.IntN(soakKeys-lo))
		cl.op(key, cl.rng.Float64() < soakDeleteP, cl.profile())
	}
}

func (cl *soakClient) runRetirer(retire <-chan struct{}) {
	select {
	case <-retire:
	case <-cl.stop:
		return
	}
	for i := 0; ; i++ {
		p := soakProfiles[0]
		if i%3 == 2 {
			p = soakProfiles[1] // r=all, w=all
		}
		cl.op(soakKey(i%soakRetired), true, p)
		if !cl.wait(time.Now().Add(200 * time.Millisecond)) {
			return
		}
	}
}

// soakNemesis injects cfg.fault until the deadline. It returns the faults
// it injected and when it last healed one.
func soakNemesis(t *testing.T, c *soakCluster, fault string, rng *rand.Rand, start, deadline time.Time) (log []string, lastHeal time.Time) {
	n := len(c.nodes)
	between := func(lo, hi time.Duration) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo))) }
	note := func(format string, a ...any) {
		log = append(log, fmt.Sprintf("%.1fs ", time.Since(start).Seconds())+fmt.Sprintf(format, a...))
	}
	if fault == "none" {
		time.Sleep(time.Until(deadline))
		return log, lastHeal
	}
	modes := []string{"isolate", "split", "one-way", "link"}
	for round := 0; ; round++ {
		quiet := between(1500*time.Millisecond, 2500*time.Millisecond)
		var hold time.Duration
		switch fault {
		case "kill9":
			hold = between(time.Second, 3*time.Second)
		case "pause":
			// Longer than the ~2.1 s the failure detector needs.
			hold = between(2500*time.Millisecond, 4*time.Second)
		case "partition":
			hold = between(3500*time.Millisecond, 5*time.Second)
		}
		if time.Until(deadline) < quiet+hold {
			return log, lastHeal
		}
		time.Sleep(quiet)
		victim := rng.IntN(n)
		switch fault {
		case "kill9":
			if err := c.kill9(victim); err != nil {
				t.Error(err)
			}
			note("kill -9 %s for %v", c.nodes[victim].id, hold.Round(100*time.Millisecond))
			time.Sleep(hold)
			if err := c.restart(victim); err != nil {
				t.Errorf("restart after kill -9: %v", err)
			}
		case "pause":
			c.pause(victim)
			note("SIGSTOP %s for %v", c.nodes[victim].id, hold.Round(100*time.Millisecond))
			time.Sleep(hold)
			c.resume(victim)
		case "partition":
			mode := modes[round%len(modes)]
			desc, err := soakPartition(c, mode, victim, rng)
			if err != nil {
				t.Errorf("partition %s: %v", mode, err)
			}
			note("%s for %v", desc, hold.Round(100*time.Millisecond))
			time.Sleep(hold)
			if err := c.lab.heal(); err != nil {
				t.Errorf("heal: %v", err)
			}
		}
		lastHeal = time.Now()
	}
}

// soakPartition cuts the lab's links as mode says and describes the cut.
func soakPartition(c *soakCluster, mode string, victim int, rng *rand.Rand) (string, error) {
	n := len(c.nodes)
	name := func(ids []int) string {
		var s []string
		for _, i := range ids {
			s = append(s, c.nodes[i].id)
		}
		return strings.Join(s, ",")
	}
	both := func(a, b int) error { return errors.Join(c.lab.cut(a, b), c.lab.cut(b, a)) }
	var errs []error
	switch mode {
	case "isolate": // victim alone against the rest, both ways
		var rest []int
		for i := 0; i < n; i++ {
			if i != victim {
				rest = append(rest, i)
				errs = append(errs, both(victim, i))
			}
		}
		return fmt.Sprintf("isolate %s | %s", c.nodes[victim].id, name(rest)), errors.Join(errs...)
	case "split": // a majority and a minority, 2|1 or 3|2
		perm := rng.Perm(n)
		major, minor := perm[:n/2+1], perm[n/2+1:]
		slices.Sort(major)
		slices.Sort(minor)
		for _, a := range major {
			for _, b := range minor {
				errs = append(errs, both(a, b))
			}
		}
		return fmt.Sprintf("split %s | %s", name(major), name(minor)), errors.Join(errs...)
	case "one-way": // victim's packets to the others are dropped; theirs reach it
		for i := 0; i < n; i++ {
			if i != victim {
				errs = append(errs, c.lab.cut(victim, i))
			}
		}
		return fmt.Sprintf("one-way: %s cannot send to the others, which can send to it", c.nodes[victim].id), errors.Join(errs...)
	case "link": // one link down; both ends still reach everyone else
		other := (victim + 1 + rng.IntN(n-1)) % n
		return fmt.Sprintf("link %s <-> %s cut, others connected to both", c.nodes[victim].id, c.nodes[other].id), both(victim, other)
	}
	return "", fmt.Errorf("unknown partition mode %q", mode)
}

// soakResult is what a subtest reports.
type soakResult struct {
	ops, acked, failed, unknown int
	lost, phantoms, resurrected int
	converged                   bool
	converge                    time.Duration
}

func (r soakResult) row(cfg soakConfig) string {
	unavail := 0.0
	if r.ops > 0 {
		unavail = 100 * float64(r.failed) / float64(r.ops)
	}
	conv := fmt.Sprintf("%.1f s", r.converge.Seconds())
	if !r.converged {
		conv = fmt.Sprintf("not within %.0f s", r.converge.Seconds())
	}
	return fmt.Sprintf("| %s | %s | %d | %d | %d | %d | %d | %d | %.1f%% | %s |",
		soakLabel, cfg.fault, cfg.nodes, r.ops, r.acked, r.lost, r.phantoms, r.resurrected, unavail, conv)
}

const soakHeader = "| workload | fault | nodes | ops | acknowledged | lost | phantoms | resurrected | unavailable % | time to converge |\n" +
	"|---|---|---|---|---|---|---|---|---|---|\n"

func runSoak(t *testing.T, bin string, cfg soakConfig) {
	var lab *netLab
	if cfg.fault == "partition" {
		if err := netLabSupported(); err != nil {
			t.Skipf("partition soak skipped: %v", err)
		}
		lab = newNetLab(t, cfg.nodes)
	}
	c := newSoakCluster(t, bin, cfg.nodes, lab)
	rng := rand.New(rand.NewPCG(cfg.seed, 0))

	start := time.Now()
	deadline := start.Add(cfg.duration)
	stop, retire := make(chan struct{}), make(chan struct{})
	clients := make([]*soakClient, soakClients+1) // the last one is the retirer
	var wg sync.WaitGroup
	for i := range clients {
		cl := &soakClient{c: c, id: i, rng: rand.New(rand.NewPCG(cfg.seed, uint64(i+1))), stop: stop}
		clients[i] = cl
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i == soakClients {
				cl.runRetirer(retire)
			} else {
				cl.runWorkload(retire)
			}
		}()
	}
	retireTimer := time.AfterFunc(cfg.duration*3/4, func() { close(retire) })
	defer retireTimer.Stop()
	faults, lastHeal := soakNemesis(t, c, cfg.fault, rng, start, deadline)
	time.Sleep(time.Until(deadline))
	close(stop)
	wg.Wait()
	if err := c.healAll(); err != nil {
		t.Errorf("final heal: %v", err)
	}
	quiet := time.Now()
	if quiet.Before(lastHeal) {
		quiet = lastHeal
	}
	for _, f := range faults {
		t.Logf("fault at %s", f)
	}

	var ops []*soakOp
	for _, cl := range clients {
		ops = append(ops, cl.ops...)
	}
	slices.SortFunc(ops, func(a, b *soakOp) int { return a.invoke.Compare(b.invoke) })

	converged, took := soakSettleCluster(t, c, quiet)
	finals, perNode := soakFinalReads(t, c)
	res, findings, notes := soakCheck(start, ops, finals, perNode)
	res.converged, res.converge = converged, took
	for _, f := range findings {
		t.Error(f)
	}
	for _, n := range notes {
		t.Log(n)
	}
	t.Logf("failed ops by reason: %s", soakReasons(ops, outcomeFailed))
	t.Logf("indeterminate ops by reason: %s", soakReasons(ops, outcomeUnknown))
	for _, e := range c.unexpectedExits() {
		t.Errorf("unexpected exit: %s", e)
	}

	row := res.row(cfg)
	t.Logf("%d faults; %d ops: %d acknowledged, %d failed, %d indeterminate", len(faults), res.ops, res.acked, res.failed, res.unknown)
	t.Logf("\n%s%s", soakHeader, row)
	if path := os.Getenv("QUORUMKV_SOAK_REPORT"); path != "" {
		if err := appendReport(path, row); err != nil {
			t.Errorf("QUORUMKV_SOAK_REPORT: %v", err)
		}
	}
}

// appendReport appends row to the file at path, with the table's header
// if the file is empty.
func appendReport(path, row string) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.Size() == 0 {
		if _, err := f.WriteString(soakHeader); err != nil {
			return err
		}
	}
	_, err = f.WriteString(row + "\n")
	return err
}

// soakSettleCluster waits for membership and hints, runs anti-entropy on
// every node, and polls until every key reads the same through every node
// at r=one (primaries only) and an r=all read sees one version. It returns
// whether that happened and how long after quiet.
func soakSettleCluster(t *testing.T, c *soakCluster, quiet time.Time) (bool, time.Duration) {
	since := func() string { return time.Since(quiet).Round(100 * time.Millisecond).String() }
	var phases []string
	if err := c.waitReachable(soakSettle); err != nil {
		t.Errorf("after the heal: %v", err)
	}
	phases = append(phases, "all reachable "+since())
	err := c.poll(soakSettle, "hints to drain", func() error {
		for _, node := range c.nodes {
			v, err := c.status(node)
			if err != nil {
				return err
			}
			if v.HintMetrics.PendingHints != 0 {
				return fmt.Errorf("%s has %d pending hints", node.id, v.HintMetrics.PendingHints)
			}
		}
		return nil
	})
	if err != nil {
		t.Errorf("after the heal: %v", err)
	}
	phases = append(phases, "hints drained "+since())
	for _, node := range c.nodes {
		ctx, cancel := context.WithTimeout(context.Background(), soakSettle)
		code, body, _, err := c.doCtx(ctx, node, "POST", "/v1/antientropy/run", nil, "")
		cancel()
		var out struct{ Errors string }
		if err == nil && code == 200 {
			err = json.Unmarshal([]byte(body), &out)
		}
		switch {
		case err != nil || code != 200:
			t.Errorf("anti-entropy on %s: %d %v %.200s", node.id, code, err, body)
		case out.Errors != "":
			t.Logf("anti-entropy on %s reported: %s", node.id, out.Errors)
		}
	}
	phases = append(phases, "anti-entropy run on every node "+since())
	round := 0
	err = c.poll(soakSettle, "the replicas to agree", func() error {
		round++
		ctx, cancel := context.WithTimeout(context.Background(), soakSettle)
		defer cancel()
		for k := 0; k < soakKeys; k++ {
			key := soakKey(k)
			var first soakRead
			for i, node := range c.nodes {
				r := c.read(ctx, node, key, "r=one&sloppy=false")
				if !r.ok() {
					return fmt.Errorf("%s via %s: %v", key, node.id, r.err)
				}
				if i == 0 {
					first = r
				} else if r.signature() != first.signature() {
					return fmt.Errorf("%s differs: %v; %v", key, first, r)
				}
			}
			r := c.read(ctx, c.nodes[round%len(c.nodes)], key, "r=all&sloppy=false")
			if !r.ok() || r.versions != "1" {
				return fmt.Errorf("%s at r=all: %v", key, r)
			}
		}
		return nil
	})
	took := time.Since(quiet)
	t.Logf("after the heal: %s, replicas agree %s", strings.Join(phases, ", "), since())
	if err != nil {
		t.Errorf("no convergence: %v", err)
		return false, took
	}
	return true, took
}

// soakFinalReads reads every key at r=all (primaries only), retrying
// through each node, and through every node at r=one.
func soakFinalReads(t *testing.T, c *soakCluster) (map[string]soakRead, map[string][]soakRead) {
	finals, perNode := map[string]soakRead{}, map[string][]soakRead{}
	ctx, cancel := context.WithTimeout(context.Background(), soakSettle)
	defer cancel()
	for k := 0; k < soakKeys; k++ {
		key := soakKey(k)
		var r soakRead
		for attempt := 0; attempt < 3*len(c.nodes); attempt++ {
			if r = c.read(ctx, c.nodes[attempt%len(c.nodes)], key, "r=all&sloppy=false"); r.ok() {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if !r.ok() {
			t.Errorf("final read of %s failed: %v", key, r)
		}
		finals[key] = r
		for _, node := range c.nodes {
			perNode[key] = append(perNode[key], c.read(ctx, node, key, "r=one&sloppy=false"))
		}
	}
	return finals, perNode
}

// soakCheck counts the outcomes and runs the checkers on the history.
//
//   - lost: an acknowledged add whose element the final r=all read lacks,
//     though no delete that may have applied had read it. A delete
//     replaces what its read saw and nothing else, so only such a delete
//     can remove an element.
//   - phantoms: an element that a read returned (during the run or at
//     the end) but whose write no client ever sent.
//   - resurrected: a key that reads live at the end through some node,
//     though either every element any write may have added was seen by
//     the read of an acknowledged delete (tombstones cover every version
//     the key ever had), or its last acknowledged write is a delete
//     issued after every add had finished whose read missed an element
//     acknowledged at a level it must meet (R + W > 3) and that no delete
//     had read. When the levels need not meet, the miss is a note.
//
// It returns the counts, the evidence of each finding (at most 10 of each
// kind), and notes that are not findings.
func soakCheck(start time.Time, ops []*soakOp, finals map[string]soakRead, perNode map[string][]soakRead) (res soakResult, findings, notes []string) {
	const maxEvidence = 10
	report := func(n int, format string, a ...any) {
		if n <= maxEvidence {
			findings = append(findings, fmt.Sprintf(format, a...))
		}
	}
	adds, dels := map[string][]*soakOp{}, map[string][]*soakOp{}
	sent := map[string]*soakOp{}
	for _, op := range ops {
		res.ops++
		switch op.outcome {
		case outcomeOK:
			res.acked++
		case outcomeFailed:
			res.failed++
		case outcomeUnknown:
			res.unknown++
		}
		if op.del {
			dels[op.key] = append(dels[op.key], op)
		} else {
			adds[op.key] = append(adds[op.key], op)
			if !op.sent.IsZero() {
				sent[op.elem] = op
			}
		}
	}
	history := func(key, elem string) string {
		var b strings.Builder
		if op := sent[elem]; op != nil {
			fmt.Fprintf(&b, "\n    add:    %s", op.format(start))
		}
		for _, d := range dels[key] {
			if d.sent.IsZero() {
				continue
			}
			mark := ""
			if elem != "" {
				mark = "; its read did not see " + elem
				if d.saw(elem) {
					mark = "; its read saw " + elem
				}
			}
			fmt.Fprintf(&b, "\n    delete: %s%s", d.format(start), mark)
		}
		fmt.Fprintf(&b, "\n    final r=all: %v", finals[key])
		for _, r := range perNode[key] {
			fmt.Fprintf(&b, "\n    r=one via %v", r)
		}
		return b.String()
	}

	// seenAfter says which later reads of a's key returned its element.
	seenAfter := func(a *soakOp) string {
		var n int
		var last *soakOp
		for _, op := range ops {
			if op.key == a.key && op != a && op.invoke.After(a.complete) && op.saw(a.elem) {
				n, last = n+1, op
			}
		}
		if n == 0 {
			return "no later read returned it"
		}
		return fmt.Sprintf("%d later reads returned it, the last: %s", n, last.format(start))
	}

	// Lost.
	for k := 0; k < soakKeys; k++ {
		key := soakKey(k)
		final := finals[key]
		if !final.ok() {
			continue // reported by soakFinalReads
		}
		for _, a := range adds[key] {
			if a.outcome != outcomeOK {
				continue
			}
			if _, ok := slices.BinarySearch(final.live, a.elem); ok {
				continue
			}
			covered := false
			for _, d := range dels[key] {
				covered = covered || (d.mayApply() && d.saw(a.elem))
			}
			if covered {
				continue
			}
			res.lost++
			report(res.lost, "lost: %s in %s was acknowledged, no delete read it, and the final read lacks it; %s:%s", a.elem, key, seenAfter(a), history(key, a.elem))
		}
	}

	// Phantoms.
	phantom := map[string]string{}
	check := func(key string, live []string, where func() string) {
		for _, e := range live {
			if a := sent[e]; (a == nil || a.key != key) && phantom[key+" "+e] == "" {
				phantom[key+" "+e] = where()
			}
		}
	}
	for _, op := range ops {
		check(op.key, op.seen, func() string { return "read of " + op.format(start) })
	}
	for key, r := range finals {
		check(key, r.live, func() string { return fmt.Sprintf("final read of %s: %v", key, r) })
	}
	for key, rs := range perNode {
		for _, r := range rs {
			check(key, r.live, func() string { return fmt.Sprintf("read of %s via %v", key, r) })
		}
	}
	res.phantoms = len(phantom)
	n := 0
	for e, where := range phantom {
		n++
		report(n, "phantom: %s, which no client wrote there, in the %s", e, where)
	}

	// Resurrected, in two ways.
	for k := 0; k < soakKeys; k++ {
		key := soakKey(k)
		var okDels []*soakOp
		for _, d := range dels[key] {
			if d.outcome == outcomeOK {
				okDels = append(okDels, d)
			}
		}
		var live []soakRead
		for _, r := range append([]soakRead{finals[key]}, perNode[key]...) {
			if r.ok() && len(r.live) > 0 {
				live = append(live, r)
			}
		}
		if len(okDels) == 0 || len(live) == 0 {
			continue
		}
		// Covered: every element any write may have added was read by an
		// acknowledged delete, so tombstones cover every version the key
		// ever had. No level of consistency excuses a live value.
		covered := true
		for _, a := range adds[key] {
			if !a.mayApply() {
				continue
			}
			seen := false
			for _, d := range okDels {
				seen = seen || d.saw(a.elem)
			}
			covered = covered && seen
		}
		if covered {
			res.resurrected++
			report(res.resurrected, "resurrected: %s reads live (%v), though acknowledged deletes had read every element ever written to it:%s", key, live[0], history(key, ""))
			continue
		}
		// Stale: the last acknowledged write is a delete issued after
		// every add had finished, and an element it did not read is live
		// at the end. That is a resurrection when the delete's read and
		// that element's acknowledged add were quorums that must meet
		// (R + W > 3): the read should have seen it. With weaker levels
		// (w=one, say) it may miss it, and the version it missed survives
		// the delete as a sibling; that is only a note.
		last := okDels[len(okDels)-1]
		after := true
		for _, a := range adds[key] {
			after = after && (!a.mayApply() || a.complete.Before(last.invoke))
		}
		if !after {
			continue
		}
		var strong, weak []*soakOp
		for _, a := range adds[key] {
			if a.outcome != outcomeOK || last.saw(a.elem) || !slices.Contains(live[0].live, a.elem) {
				continue
			}
			removed := false // an earlier delete read it; a concurrent version carries it on
			for _, d := range dels[key] {
				removed = removed || (d.mayApply() && d.saw(a.elem))
			}
			if !removed && a.w+last.r > 3 {
				strong = append(strong, a)
			} else {
				weak = append(weak, a)
			}
		}
		describe := func(head string, missed []*soakOp) string {
			var b strings.Builder
			fmt.Fprintf(&b, "%s\n    delete: %s", head, last.format(start))
			for _, a := range missed[max(0, len(missed)-5):] { // the newest
				carried := ""
				for _, d := range dels[key] {
					if d.mayApply() && d.saw(a.elem) {
						carried = "; an earlier delete read it, and a concurrent version carried it on"
						break
					}
				}
				fmt.Fprintf(&b, "\n    missed: %s%s", a.format(start), carried)
			}
			fmt.Fprintf(&b, "\n    final r=all: %v", finals[key])
			return b.String()
		}
		// With sloppy quorums (a fallback counted toward the delete's read
		// or toward one of those adds), two quorums need not meet: the
		// delete removes what it read, and what it missed survives it as
		// a concurrent version. README: a delete deletes what its context
		// saw. That is a note, not a resurrection.
		sloppy := strings.Contains(last.receipt, "fallbacks")
		for _, a := range strong {
			sloppy = sloppy || strings.Contains(a.detail, "fallbacks")
		}
		if sloppy {
			weak, strong = append(weak, strong...), nil
		}
		switch {
		case len(strong) > 0:
			res.resurrected++
			report(res.resurrected, "%s", describe(fmt.Sprintf("resurrected: %s was deleted after its last add had finished, yet reads live: the delete's read (r=%d) missed %d elements acknowledged at a w that it must meet, and no delete had read them; no fallback counted toward the delete's read or those adds: quorums that must meet did not",
				key, last.r, len(strong)), strong))
		case len(weak) > 0:
			notes = append(notes, describe(fmt.Sprintf("stale delete (allowed): %s was deleted after its last add had finished and reads live: the delete's read (r=%d) missed %d elements that were acknowledged at a lower w or through fallbacks (sloppy quorum), or that a concurrent version carried on after an earlier delete",
				key, last.r, len(weak)), weak))
		}
	}
	return res, findings, notes
}

// soakReasons counts the ops with outcome o by why they ended so, most
// frequent first.
func soakReasons(ops []*soakOp, o outcome) string {
	count := map[string]int{}
	for _, op := range ops {
		if op.outcome == o {
			count[soakReason(op)]++
		}
	}
	var reasons []string
	for r := range count {
		reasons = append(reasons, r)
	}
	slices.SortFunc(reasons, func(a, b string) int {
		if c := count[b] - count[a]; c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	var out []string
	for _, r := range reasons {
		out = append(out, fmt.Sprintf("%s %d", r, count[r]))
	}
	if len(out) == 0 {
		return "none"
	}
	return strings.Join(out, ", ")
}

// soakReason shortens an op's detail to a reason without addresses.
func soakReason(op *soakOp) string {
	d, kind := op.detail, "write"
	if rest, ok := strings.CutPrefix(d, "read: "); ok {
		d, kind = strings.TrimPrefix(rest, "GET "), "read"
	}
	switch {
	case strings.Contains(d, "connection refused"):
		d = "connection refused"
	case strings.Contains(d, "connection reset"):
		d = "connection reset"
	case strings.Contains(d, "Client.Timeout"), strings.Contains(d, "deadline exceeded"), strings.Contains(d, "i/o timeout"):
		d = "client timeout"
	case strings.Contains(d, "EOF"):
		d = "connection closed (EOF)"
	case len(d) > 60:
		d = d[:60] + "..."
	}
	return kind + " " + d
}

// The checkers on a hand-written history: each key holds one case.
func TestSoakCheckers(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	add := func(key, elem string, o outcome, from float64, seen ...string) *soakOp {
		return &soakOp{key: key, elem: elem, invoke: at(from), sent: at(from + 0.1), complete: at(from + 0.2), outcome: o, seen: seen, r: 2, w: 2}
	}
	del := func(key string, o outcome, from float64, seen ...string) *soakOp {
		return &soakOp{key: key, del: true, invoke: at(from), sent: at(from + 0.1), complete: at(from + 0.2), outcome: o, seen: seen, r: 2, w: 2}
	}
	weakAdd := add("k08", "c0-000008", outcomeOK, 1)
	weakAdd.w = 1
	notSent := &soakOp{key: "k07", elem: "c0-000009", invoke: at(1), complete: at(1.1), outcome: outcomeFailed}
	ops := []*soakOp{
		add("k00", "c0-000001", outcomeOK, 1), add("k00", "c0-000002", outcomeOK, 2),
		del("k00", outcomeOK, 2.15, "c0-000001"), // concurrent with the second add, read only the first: the second stays
		add("k01", "c0-000003", outcomeOK, 1),    // acknowledged, never deleted, gone: lost
		add("k02", "c0-000004", outcomeOK, 1),
		del("k02", outcomeUnknown, 2, "c0-000004"), // an indeterminate delete that read it may have removed it
		add("k03", "c0-000005", outcomeOK, 1),
		del("k03", outcomeOK, 2, "c0-000005"), // deleted after reading everything, live again: resurrected
		add("k04", "c0-000006", outcomeOK, 1),
		del("k04", outcomeOK, 2), // a w=2 add finished before an r=2 delete that missed it: resurrected
		weakAdd,
		del("k08", outcomeOK, 2), // an r=2 delete may miss a w=one add: a note
		notSent, add("k07", "c0-000007", outcomeUnknown, 2),
		del("k07", outcomeOK, 2.15), // concurrent with an indeterminate add, which survives
	}
	finals := map[string]soakRead{}
	for k := 0; k < soakKeys; k++ {
		finals[soakKey(k)] = soakRead{node: "n1", status: 404}
	}
	finals["k00"] = soakRead{node: "n1", status: 200, live: []string{"c0-000002"}}
	finals["k03"] = soakRead{node: "n1", status: 200, live: []string{"c0-000005"}}
	finals["k04"] = soakRead{node: "n1", status: 200, live: []string{"c0-000006"}}
	finals["k05"] = soakRead{node: "n1", status: 200, live: []string{"zz-1"}}      // nobody wrote it
	finals["k06"] = soakRead{node: "n1", status: 200, live: []string{"c0-000006"}} // written, but to k04
	finals["k07"] = soakRead{node: "n1", status: 200, live: []string{"c0-000007"}}
	finals["k08"] = soakRead{node: "n1", status: 200, live: []string{"c0-000008"}}

	res, findings, notes := soakCheck(t0, ops, finals, nil)
	if res.ops != 15 || res.acked != 12 || res.failed != 1 || res.unknown != 2 {
		t.Errorf("counts: %+v", res)
	}
	if res.lost != 1 || res.phantoms != 2 || res.resurrected != 2 {
		t.Errorf("lost %d, phantoms %d, resurrected %d; want 1, 2, 2; findings:\n%s", res.lost, res.phantoms, res.resurrected, strings.Join(findings, "\n"))
	}
	all := strings.Join(findings, "\n")
	if len(findings) != 5 || !strings.Contains(all, "lost: c0-000003 in k01") || !strings.Contains(all, "resurrected: k03") || !strings.Contains(all, "resurrected: k04") {
		t.Errorf("findings:\n%s", all)
	}
	if len(notes) != 1 || !strings.HasPrefix(notes[0], "stale delete (allowed): k08") {
		t.Errorf("notes: %q", notes)
	}
}
