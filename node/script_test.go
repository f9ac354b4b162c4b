package node_test

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/quorumkv/quorumkv/internal/simcluster"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

// TestScripts runs the cluster scenarios in testdata/scripts: a whole
// cluster of real nodes on simulated time (internal/simcluster), driven by
// commands that read like an operator's notes. Regenerate the expected
// output with -rewrite. The commands:
//
//	start nodes=N [grace=D] [hint-budget=B] [reap-memory=D] [timeout=D]
//	      [ae-rate=B] [sweep-interval=D] [reap-interval=D]
//	put NODE BUCKET/KEY VALUE [w= n= sloppy= timeout=] [ctx=NAME] [as=NAME]
//	get NODE BUCKET/KEY [r= n= sloppy=] [as=NAME]
//	delete NODE BUCKET/KEY [w= n= sloppy=] [ctx=NAME] [as=NAME]
//	fill NODE... BUCKET/PREFIX keys=N [w=W]      check BUCKET/PREFIX keys=N
//	bucket NODE BUCKET n=N [r=R w=W conflict=lww|siblings]
//	kill NODE | wipe NODE | stop NODE | restart NODE | pause NODE | resume NODE
//	partition NODE... | NODE...      block FROM TO      heal
//	clock NODE DURATION              advance DURATION
//	await reachable | await hints | await suspected NODE [by=(NODE,...)]  [limit=D]
//	antientropy [NODE]   sweep [NODE] BUCKET/KEY   reap [NODE]   strays [NODE]
//	hints                replicas BUCKET/KEY          preflist BUCKET/KEY
//	trees [BUCKET/KEY]   status NODE                  metrics NODE NAME...
//
// and the membership commands (add, leave, remove, replace, commit, clear,
// plan, rings, placed, transfers, disk, await change|left|transfer)
// described in script_membership_test.go. QUORUMKV_SCRIPT_LOG=PATH
// appends every node's log to PATH.
//
// ctx=NAME sends the context saved by an earlier as=NAME. Dots print as
// node.n, where n counts from the first counter a node issues when the
// simulation starts (the fake clock's first reading, in microseconds).
// start's ae-rate is anti-entropy's byte rate (0: no cap), and its
// intervals those of the background tombstone sweeps and reaps. await
// suspected waits until the nodes named by "by" (every other running node
// by default) suspect NODE, as under a partition. fill writes many keys
// and check reads them back from every store; trees prints the Merkle
// trees' agreement and rebuilds, status a node's hint counters from
// /v1/cluster, and metrics the named series of its /metrics.
func TestScripts(t *testing.T) {
	datadriven.Walk(t, "testdata/scripts", func(t *testing.T, path string) {
		synctest.Test(t, func(t *testing.T) {
			s := &script{t: t, ctx: map[string]string{}}
			datadriven.RunTest(t, path, s.run)
		})
	})
}

// dotBase is the first dot counter of a node whose store is created at the
// start of a simulation: synctest's clock starts at 2000-01-01 UTC.
var dotBase = uint64(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro())

type script struct {
	t     *testing.T
	c     *simcluster.Cluster
	ctx   map[string]string // saved contexts by name
	roots map[uint64]string // Merkle roots seen, by name: R1, R2, ...
}

// rootName names a Merkle root by the order in which the script first
// saw it: the roots hash the values' write times, which depend on how
// long the cluster took to form, so a script compares them, not their
// bits.
func (s *script) rootName(h uint64) string {
	if s.roots == nil {
		s.roots = map[uint64]string{}
	}
	if _, ok := s.roots[h]; !ok {
		s.roots[h] = fmt.Sprintf("R%d", len(s.roots)+1)
	}
	return s.roots[h]
}

func (s *script) run(t *testing.T, d *datadriven.TestData) string {
	// Every command starts and ends with the cluster idle: what a request
	// set off in the background (late acks, hints, read repair) is done.
	synctest.Wait()
	defer synctest.Wait()
	out, err := s.do(t, d)
	if err != nil {
		t.Fatalf("%s: %v", d.Pos, err)
	}
	if out == "" {
		return "ok\n"
	}
	return out
}

// arg returns a key=value argument, or def.
func arg(d *datadriven.TestData, key, def string) string {
	for _, a := range d.CmdArgs {
		if a.Key == key && len(a.Vals) > 0 {
			return a.Vals[0]
		}
	}
	return def
}

// positional returns the arguments without a value, in order.
func positional(d *datadriven.TestData) []string {
	var out []string
	for _, a := range d.CmdArgs {
		if len(a.Vals) == 0 {
			out = append(out, a.Key)
		}
	}
	return out
}

func (s *script) node(name string) (int, error) {
	if s.c == nil {
		return 0, fmt.Errorf("no cluster: start one first")
	}
	i := s.c.Index(name)
	if i < 0 {
		return 0, fmt.Errorf("no node %q", name)
	}
	return i, nil
}

func mustDuration(v string) (time.Duration, error) {
	if strings.HasPrefix(v, "+") {
		v = v[1:]
	}
	return time.ParseDuration(v)
}

func (s *script) do(t *testing.T, d *datadriven.TestData) (string, error) {
	pos := positional(d)
	nodeArg := func(k int) (int, error) {
		if len(pos) <= k {
			return 0, fmt.Errorf("%s needs a node", d.Cmd)
		}
		return s.node(pos[k])
	}
	switch d.Cmd {
	case "start":
		return s.start(d)
	case "put", "delete", "get":
		return s.request(d, pos)
	case "bucket":
		i, err := nodeArg(0)
		if err != nil {
			return "", err
		}
		body := map[string]any{}
		for _, k := range []string{"n", "r", "w"} {
			if v := arg(d, k, ""); v != "" {
				n, _ := strconv.Atoi(v)
				body[k] = n
			}
		}
		if v := arg(d, "conflict", ""); v != "" {
			body["conflict"] = v
		}
		b, _ := json.Marshal(body)
		r, ok := s.c.Do(i, "PUT", "/v1/buckets/"+pos[1], b, nil)
		if !ok || r.Status != 200 {
			return "", fmt.Errorf("bucket: %d %s", r.Status, r.Body)
		}
		s.c.Advance(2 * time.Second) // let gossip carry it
		return "", nil
	case "kill", "wipe", "stop", "restart", "pause", "resume":
		i, err := nodeArg(0)
		if err != nil {
			return "", err
		}
		map[string]func(int){
			"kill": s.c.Crash, "wipe": s.c.Wipe, "stop": s.c.Stop,
			"restart": s.c.Restart, "pause": s.c.Pause, "resume": s.c.Resume,
		}[d.Cmd](i)
		return "", nil
	case "partition":
		var groups [][]int
		var cur []int
		for _, a := range pos {
			if a == "|" {
				groups, cur = append(groups, cur), nil
				continue
			}
			i, err := s.node(a)
			if err != nil {
				return "", err
			}
			cur = append(cur, i)
		}
		s.c.Partition(append(groups, cur)...)
		return "", nil
	case "block":
		from, err := nodeArg(0)
		if err != nil {
			return "", err
		}
		to, err := nodeArg(1)
		if err != nil {
			return "", err
		}
		s.c.Block(from, to, true)
		return "", nil
	case "heal":
		s.c.Heal()
		return "", nil
	case "clock":
		i, err := nodeArg(0)
		if err != nil {
			return "", err
		}
		step, err := mustDuration(pos[1])
		if err != nil {
			return "", err
		}
		s.c.StepClock(i, step)
		return "", nil
	case "advance":
		dur, err := mustDuration(pos[0])
		if err != nil {
			return "", err
		}
		s.c.Advance(dur)
		return "", nil
	case "await":
		return s.await(d, pos)
	case "antientropy", "reap", "strays":
		return s.background(d.Cmd, pos)
	case "sweep":
		return s.sweep(pos)
	case "hints":
		return s.hints(), nil
	case "fill":
		return s.fill(d, pos)
	case "check":
		return s.check(d, pos)
	case "trees":
		return s.trees(pos)
	case "status":
		i, err := nodeArg(0)
		if err != nil {
			return "", err
		}
		return s.status(i)
	case "metrics":
		i, err := nodeArg(0)
		if err != nil {
			return "", err
		}
		return s.metrics(i, pos[1:])
	case "preflist":
		k, err := encodedKey(pos[0])
		if err != nil {
			return "", err
		}
		r := s.c.Node(0).Ring()
		pref, err := r.PreferenceList(k, r.Len())
		if err != nil {
			return "", err
		}
		return strings.Join(pref, " ") + "\n", nil
	case "replicas":
		return s.replicas(pos[0])
	case "add", "leave", "remove", "replace", "commit", "clear", "plan", "rings", "placed", "transfers", "disk":
		return s.membership(d, pos)
	}
	return "", fmt.Errorf("unknown command %q", d.Cmd)
}

func (s *script) start(d *datadriven.TestData) (string, error) {
	n, err := strconv.Atoi(arg(d, "nodes", "3"))
	if err != nil {
		return "", err
	}
	var conf []func(*node.Config) error
	dur := func(key string, set func(*node.Config, time.Duration)) {
		if v := arg(d, key, ""); v != "" {
			conf = append(conf, func(c *node.Config) error {
				dd, err := time.ParseDuration(v)
				set(c, dd)
				return err
			})
		}
	}
	dur("grace", func(c *node.Config, v time.Duration) { c.TombstoneGrace = v })
	dur("reap-memory", func(c *node.Config, v time.Duration) { c.ReapMemory = v })
	dur("timeout", func(c *node.Config, v time.Duration) { c.RequestTimeout = v })
	dur("sweep-interval", func(c *node.Config, v time.Duration) { c.AntiEntropy.SweepInterval = v })
	dur("reap-interval", func(c *node.Config, v time.Duration) { c.AntiEntropy.ReapInterval = v })
	number := func(key string, set func(*node.Config, int64)) {
		if v := arg(d, key, ""); v != "" {
			conf = append(conf, func(c *node.Config) error {
				b, err := strconv.ParseInt(v, 10, 64)
				set(c, b)
				return err
			})
		}
	}
	number("hint-budget", func(c *node.Config, v int64) { c.HintBudget = v })
	number("ae-rate", func(c *node.Config, v int64) { c.AntiEntropy.BytesPerSecond = v })
	var cerr error
	var logTo io.Writer
	if path := os.Getenv("QUORUMKV_SCRIPT_LOG"); path != "" {
		// Debugging a script: every node's log, appended to path.
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return "", err
		}
		s.t.Cleanup(func() { f.Close() })
		logTo = f
	}
	s.c = simcluster.Start(s.t, simcluster.Options{Nodes: n, Log: logTo, Configure: func(_ int, cfg *node.Config) {
		for _, f := range conf {
			if err := f(cfg); err != nil {
				cerr = err
			}
		}
	}})
	return "", cerr
}

// request runs put, delete or get. Its output: the status, then for a
// read the siblings, then the receipt with lists sorted (replies arrive in
// any order).
func (s *script) request(d *datadriven.TestData, pos []string) (string, error) {
	if len(pos) < 2 {
		return "", fmt.Errorf("%s NODE BUCKET/KEY", d.Cmd)
	}
	i, err := s.node(pos[0])
	if err != nil {
		return "", err
	}
	method := map[string]string{"put": "PUT", "delete": "DELETE", "get": "GET"}[d.Cmd]
	var body []byte
	if d.Cmd == "put" {
		if len(pos) < 3 {
			return "", fmt.Errorf("put NODE BUCKET/KEY VALUE")
		}
		body = []byte(pos[2])
	}
	var q []string
	for _, k := range []string{"r", "w", "n", "sloppy", "timeout"} {
		if v := arg(d, k, ""); v != "" {
			q = append(q, k+"="+v)
		}
	}
	path := "/v1/kv/" + pos[1]
	if len(q) > 0 {
		path += "?" + strings.Join(q, "&")
	}
	hdr := map[string]string{}
	if name := arg(d, "ctx", ""); name != "" {
		hdr[node.HeaderContext] = s.ctx[name]
	}
	if d.Cmd == "get" {
		hdr["Accept"] = "application/json"
	}
	r, ok := s.c.Do(i, method, path, body, hdr)
	if !ok {
		return "no answer: the node is down\n", nil
	}
	if name := arg(d, "as", ""); name != "" {
		s.ctx[name] = r.Header.Get(node.HeaderContext)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d", r.Status)
	if r.Status >= 400 && r.Status != 404 {
		var e struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(r.Body, &e)
		fmt.Fprintf(&b, " %s", e.Code)
	}
	if d.Cmd == "get" && (r.Status == 200 || r.Status == 300 || r.Status == 404) {
		var env node.Envelope
		if err := json.Unmarshal(r.Body, &env); err == nil {
			var vals []string
			for _, sib := range env.Siblings {
				if sib.Deleted {
					vals = append(vals, "<deleted>")
				} else {
					vals = append(vals, string(sib.Value))
				}
			}
			slices.Sort(vals)
			fmt.Fprintf(&b, " [%s]", strings.Join(vals, " "))
		}
	}
	rc := quorum.ParseReceipt(r.Header)
	if len(rc.Replicas) > 0 {
		fmt.Fprintf(&b, " replicas=%s", sorted(rc.Replicas))
	}
	if len(rc.Fallbacks) > 0 {
		var fs []string
		for f, p := range rc.Fallbacks {
			fs = append(fs, f+"->"+p)
		}
		fmt.Fprintf(&b, " fallbacks=%s", sorted(fs))
	}
	if len(rc.Hinted) > 0 {
		fmt.Fprintf(&b, " hinted=%s", sorted(rc.Hinted))
	}
	if rc.Versions > 0 {
		fmt.Fprintf(&b, " versions=%d", rc.Versions)
	}
	if len(rc.Repaired) > 0 {
		fmt.Fprintf(&b, " repaired=%s", sorted(rc.Repaired))
	}
	b.WriteString("\n")
	return b.String(), nil
}

func sorted(s []string) string {
	s = slices.Clone(s)
	slices.Sort(s)
	return strings.Join(s, ",")
}

func (s *script) await(d *datadriven.TestData, pos []string) (string, error) {
	limit := 30 * time.Second
	if v := arg(d, "limit", ""); v != "" {
		l, err := time.ParseDuration(v)
		if err != nil {
			return "", err
		}
		limit = l
	}
	switch pos[0] {
	case "reachable":
		s.c.Await(limit, "failure detectors to agree", s.c.Agreed)
	case "hints":
		s.c.Await(limit, "every hint handed off", func() bool { return s.pendingHints() == 0 })
	case "suspected":
		if len(pos) < 2 {
			return "", fmt.Errorf("await suspected NODE [by=(NODE,...)]")
		}
		target, err := s.node(pos[1])
		if err != nil {
			return "", err
		}
		var by []int
		for _, a := range d.CmdArgs {
			if a.Key != "by" {
				continue
			}
			if by, err = s.targets(a.Vals); err != nil {
				return "", err
			}
		}
		if by == nil {
			all, _ := s.targets(nil)
			by = slices.DeleteFunc(all, func(i int) bool { return i == target })
		}
		s.c.Await(limit, pos[1]+" to be suspected", func() bool {
			for _, i := range by {
				if n := s.c.Node(i); n == nil || n.Detector().Available(pos[1]) {
					return false
				}
			}
			return true
		})
	case "change":
		return s.awaitChange(limit)
	case "left":
		if len(pos) < 2 {
			return "", fmt.Errorf("await left NODE")
		}
		i, err := s.node(pos[1])
		if err != nil {
			return "", err
		}
		s.awaitLeft(i, limit)
	case "transfer":
		if len(pos) < 2 {
			return "", fmt.Errorf("await transfer NODE partitions=K")
		}
		i, err := s.node(pos[1])
		if err != nil {
			return "", err
		}
		k, err := strconv.Atoi(arg(d, "partitions", ""))
		if err != nil {
			return "", fmt.Errorf("await transfer: partitions=K: %v", err)
		}
		s.c.Await(limit, pos[1]+" to finish "+strconv.Itoa(k)+" partitions", func() bool {
			n := s.c.Node(i)
			return n != nil && n.Status().Transfers.Done >= k
		})
	default:
		return "", fmt.Errorf("await reachable|hints|suspected|change|left|transfer")
	}
	return "", nil
}

func (s *script) pendingHints() int64 {
	var n int64
	for i := range s.c.Size() {
		if nd := s.c.Node(i); nd != nil {
			n += nd.Status().HintMetrics.PendingHints
		}
	}
	return n
}

// targets returns the running nodes named, or all running nodes.
func (s *script) targets(names []string) ([]int, error) {
	if len(names) == 0 {
		var all []int
		for i := range s.c.Size() {
			if s.c.Running(i) {
				all = append(all, i)
			}
		}
		return all, nil
	}
	var out []int
	for _, n := range names {
		i, err := s.node(n)
		if err != nil {
			return nil, err
		}
		out = append(out, i)
	}
	return out, nil
}

// background runs anti-entropy, a reap or a stray hand-off now, on the
// named nodes or all running ones, and prints what changed.
func (s *script) background(cmd string, names []string) (string, error) {
	nodes, err := s.targets(names)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, i := range nodes {
		ae := s.c.Node(i).AntiEntropy()
		switch cmd {
		case "antientropy":
			rep, _ := ae.RunOnce(s.t.Context())
			fmt.Fprintf(&b, "%s: pushed=%d pulled=%d failed=%d\n", s.c.ID(i), rep.KeysPushed, rep.KeysPulled, rep.Failed)
		case "reap":
			n, err := ae.Reap()
			if err != nil {
				return "", err
			}
			fmt.Fprintf(&b, "%s: reaped=%d\n", s.c.ID(i), n)
		case "strays":
			total := 0
			for p := range s.c.Node(i).Ring().PartitionCount() {
				rep, err := ae.HandOffStrays(s.t.Context(), p)
				if err != nil {
					return "", err
				}
				total += rep.HandedOff
			}
			fmt.Fprintf(&b, "%s: handed-off=%d\n", s.c.ID(i), total)
		}
	}
	return b.String(), nil
}

func (s *script) sweep(pos []string) (string, error) {
	if len(pos) == 0 {
		return "", fmt.Errorf("sweep [NODE...] BUCKET/KEY")
	}
	k, err := encodedKey(pos[len(pos)-1])
	if err != nil {
		return "", err
	}
	nodes, err := s.targets(pos[:len(pos)-1])
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, i := range nodes {
		n := s.c.Node(i)
		rep, err := n.AntiEntropy().Sweep(s.t.Context(), n.Ring().Partition(k))
		fmt.Fprintf(&b, "%s: tombstones=%d marked=%d told=%d", s.c.ID(i), rep.Tombstones, rep.Marked, rep.Notified)
		if err != nil {
			b.WriteString(" (some nodes did not answer)")
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

func encodedKey(bk string) ([]byte, error) {
	bucket, key, ok := strings.Cut(bk, "/")
	if !ok {
		return nil, fmt.Errorf("%q is not BUCKET/KEY", bk)
	}
	return store.EncodeKey([]byte(bucket), []byte(key)), nil
}

// hints prints each running node's pending hints by owner.
func (s *script) hints() string {
	var b strings.Builder
	for i := range s.c.Size() {
		n := s.c.Node(i)
		if n == nil {
			continue
		}
		st := n.Store()
		var parts []string
		for _, owner := range st.HintOwners() {
			parts = append(parts, fmt.Sprintf("%s=%d", owner, st.HintCount(owner)))
		}
		if len(parts) == 0 {
			parts = []string{"none"}
		}
		fmt.Fprintf(&b, "%s: %s\n", s.c.ID(i), strings.Join(parts, " "))
	}
	return b.String()
}

// replicas prints what every running node stores for a key: its record
// (or "reaped" for a reaped key's memory, "none" if absent) and every
// hint it keeps for it.
func (s *script) replicas(bk string) (string, error) {
	k, err := encodedKey(bk)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for i := range s.c.Size() {
		n := s.c.Node(i)
		if n == nil {
			fmt.Fprintf(&b, "%s: down\n", s.c.ID(i))
			continue
		}
		st := n.Store()
		set, err := st.Get(k)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s: %s", s.c.ID(i), fmtSet(set))
		for _, owner := range st.HintOwners() {
			h, err := st.Hint(owner, k)
			if err != nil {
				return "", err
			}
			if !h.IsEmpty() {
				fmt.Fprintf(&b, " hint-for-%s=%s", owner, fmtSet(h))
			}
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

// fmtDot prints a dot as its node's ID, with the parts of the actor name
// that say something (a store made anew after a lost disk, an actor epoch,
// the fallback actor "h"), then the counter from dotBase: n1.3, n3~h.7.
func fmtDot(d version.Dot) string {
	parts := strings.Split(d.Node, "~")
	name := parts[0]
	for i, p := range parts[1:] {
		if i == 0 && p == strconv.FormatUint(dotBase, 36) {
			continue // the first life of the node's disk
		}
		name += "~" + p
	}
	if d.Counter >= dotBase {
		return fmt.Sprintf("%s.%d", name, d.Counter-dotBase)
	}
	return name + ":" + strconv.FormatUint(d.Counter, 10)
}

func fmtSet(set version.Set) string {
	switch {
	case set.IsEmpty():
		return "none"
	case len(set.Siblings) == 0:
		return "reaped"
	}
	var parts []string
	for _, sib := range set.Siblings {
		v := string(sib.Value)
		if sib.Deleted {
			v = "<deleted>"
		}
		parts = append(parts, fmtDot(sib.Dot)+"="+v)
	}
	return "{" + strings.Join(parts, " ") + "}"
}

// fill writes keys=N keys BUCKET/PREFIX0, BUCKET/PREFIX1, ... with the
// values v0, v1, ..., one after the other, through the named nodes in
// turn, and prints how many writes got each status.
func (s *script) fill(d *datadriven.TestData, pos []string) (string, error) {
	if len(pos) < 2 {
		return "", fmt.Errorf("fill NODE... BUCKET/PREFIX keys=N [w=W]")
	}
	nodes, err := s.targets(pos[:len(pos)-1])
	if err != nil {
		return "", err
	}
	keys, err := strconv.Atoi(arg(d, "keys", ""))
	if err != nil {
		return "", fmt.Errorf("fill: keys=N: %v", err)
	}
	q := ""
	if w := arg(d, "w", ""); w != "" {
		q = "?w=" + w
	}
	statuses := map[int]int{}
	for k := range keys {
		path := fmt.Sprintf("/v1/kv/%s%d%s", pos[len(pos)-1], k, q)
		r, ok := s.c.Do(nodes[k%len(nodes)], "PUT", path, fmt.Appendf(nil, "v%d", k), nil)
		if !ok {
			return "", fmt.Errorf("fill: %s is down", s.c.ID(nodes[k%len(nodes)]))
		}
		statuses[r.Status]++
	}
	var b strings.Builder
	for _, st := range slices.Sorted(maps.Keys(statuses)) {
		fmt.Fprintf(&b, "%d: %d writes\n", st, statuses[st])
	}
	return b.String(), nil
}

// check reads the keys fill wrote straight from every running node's
// store. It prints, for each node, how many hold the value written and
// nothing else (as-written), how many nothing (missing) and how many
// something else (other); then how many keys every running node holds
// identically.
func (s *script) check(d *datadriven.TestData, pos []string) (string, error) {
	if len(pos) != 1 {
		return "", fmt.Errorf("check BUCKET/PREFIX keys=N")
	}
	keys, err := strconv.Atoi(arg(d, "keys", ""))
	if err != nil {
		return "", fmt.Errorf("check: keys=N: %v", err)
	}
	nodes, _ := s.targets(nil)
	type tally struct{ written, missing, other int }
	tallies := make([]tally, len(nodes))
	same := 0
	for k := range keys {
		key, err := encodedKey(fmt.Sprintf("%s%d", pos[0], k))
		if err != nil {
			return "", err
		}
		var first version.Set
		agree := true
		for j, i := range nodes {
			set, err := s.c.Node(i).Store().Get(key)
			if err != nil {
				return "", err
			}
			switch {
			case set.IsEmpty():
				tallies[j].missing++
			case len(set.Siblings) == 1 && !set.Siblings[0].Deleted && string(set.Siblings[0].Value) == fmt.Sprint("v", k):
				tallies[j].written++
			default:
				tallies[j].other++
			}
			if j == 0 {
				first = set
			} else if !set.Equal(first) {
				agree = false
			}
		}
		if agree {
			same++
		}
	}
	var b strings.Builder
	for j, i := range nodes {
		t := tallies[j]
		fmt.Fprintf(&b, "%s: as-written=%d missing=%d other=%d\n", s.c.ID(i), t.written, t.missing, t.other)
	}
	fmt.Fprintf(&b, "identical on every node: %d of %d\n", same, keys)
	return b.String(), nil
}

// trees prints how many partitions' Merkle roots differ between the
// running nodes among the partition's first three (the default n)
// primaries, then for each running node the trees it rebuilt from the
// store since it started, the partitions it queued first for
// anti-entropy, and whether a snapshot of its trees saved at a clean
// shutdown is waiting in its store. With BUCKET/KEY, it also prints each
// node's root of that key's partition.
func (s *script) trees(pos []string) (string, error) {
	nodes, _ := s.targets(nil)
	if len(nodes) == 0 {
		return "", fmt.Errorf("trees: no node is running")
	}
	r := s.c.Node(nodes[0]).Ring()
	differing := 0
	for p := range r.PartitionCount() {
		pref, err := r.PartitionPreference(p, 3)
		if err != nil {
			return "", err
		}
		var roots []uint64
		for _, id := range pref {
			if n := s.c.Node(s.c.Index(id)); n != nil {
				roots = append(roots, n.AntiEntropy().Forest().Root(p))
			}
		}
		if len(slices.Compact(roots)) > 1 {
			differing++
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "partitions differing: %d\n", differing)
	part := -1
	if len(pos) > 0 {
		k, err := encodedKey(pos[0])
		if err != nil {
			return "", err
		}
		part = r.Partition(k)
	}
	for _, i := range nodes {
		n := s.c.Node(i)
		ae := n.AntiEntropy()
		saved := "no"
		if v, err := n.Store().GetMeta("antientropy.trees"); err == nil && len(v) > 0 {
			saved = "yes"
		}
		fmt.Fprintf(&b, "%s: rebuilds=%d prioritized=%d saved=%s", s.c.ID(i), ae.Metrics().TreeRebuilds, len(ae.Prioritized()), saved)
		if part >= 0 {
			fmt.Fprintf(&b, " root=%s", s.rootName(ae.Forest().Root(part)))
		}
		b.WriteString("\n")
	}
	return b.String(), nil
}

// status prints the hint counters GET /v1/cluster reports on node i:
// the totals, then each owner's.
func (s *script) status(i int) (string, error) {
	r, ok := s.c.Do(i, "GET", "/v1/cluster", nil, nil)
	if !ok || r.Status != 200 {
		return "", fmt.Errorf("status: %d %s", r.Status, r.Body)
	}
	var st node.ClusterStatus
	if err := json.Unmarshal(r.Body, &st); err != nil {
		return "", err
	}
	var b strings.Builder
	t := st.HintMetrics
	fmt.Fprintf(&b, "hints: pending=%d bytes=%d stored=%d overflowed=%d delivered=%d\n",
		t.PendingHints, t.PendingBytes, t.Stored, t.Overflowed, t.Delivered)
	for _, owner := range slices.Sorted(maps.Keys(st.Hints)) {
		o := st.Hints[owner]
		fmt.Fprintf(&b, "hints for %s: pending=%d bytes=%d stored=%d overflowed=%d delivered=%d\n",
			owner, o.PendingHints, o.PendingBytes, o.Stored, o.Overflowed, o.Delivered)
	}
	return b.String(), nil
}

// metrics prints the series of the named metrics that GET /metrics
// serves on node i, in the order served (by name, then labels), and
// "NAME absent" for a name it does not serve.
func (s *script) metrics(i int, names []string) (string, error) {
	r, ok := s.c.Do(i, "GET", "/metrics", nil, nil)
	if !ok || r.Status != 200 {
		return "", fmt.Errorf("metrics: %d %s", r.Status, r.Body)
	}
	lines := strings.Split(string(r.Body), "\n")
	var b strings.Builder
	for _, name := range names {
		found := false
		for _, l := range lines {
			if l == name || strings.HasPrefix(l, name+" ") || strings.HasPrefix(l, name+"{") {
				b.WriteString(l + "\n")
				found = true
			}
		}
		if !found {
			fmt.Fprintf(&b, "%s absent\n", name)
		}
	}
	return b.String(), nil
}
