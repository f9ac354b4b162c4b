package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinary compiles quorumkv once for all the process tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "quorumkv-bin"); binErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(binDir, "quorumkv"), ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, "quorumkv")
}

// envInt returns the whole number in the environment variable name, def
// when it is unset, and fails the test when it is not a number of at
// least least.
func envInt(t *testing.T, name string, def, least int) int {
	t.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < least {
		t.Fatalf("%s=%q: want a whole number, at least %d", name, s, least)
	}
	return v
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

type proc struct {
	id, http, rpc, gossip, data string
	// flags are extra server flags, given at every start.
	flags []string
	cmd   *exec.Cmd
	log   *os.File
	// exited is closed when the process of the last start has exited,
	// with its result in err.
	exited chan struct{}
	err    error
}

// newProc prepares a node with fresh addresses and a data directory and
// log file under dir; the log is printed if the test fails.
func newProc(t *testing.T, dir, id string, flags ...string) *proc {
	t.Helper()
	p := &proc{id: id, http: freePort(t), rpc: freePort(t), gossip: freePort(t), data: filepath.Join(dir, id), flags: flags}
	f, err := os.Create(filepath.Join(dir, id+".log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		f.Close()
		if t.Failed() {
			b, _ := os.ReadFile(f.Name())
			t.Logf("%s log:\n%s", p.id, b)
		}
	})
	p.log = f
	return p
}

// start runs the server, without cluster secrets (--insecure), with join
// as its --join; the test's cleanup kills it if it still runs.
func (p *proc) start(t *testing.T, bin string, join string, flags ...string) {
	t.Helper()
	p.startArgs(t, bin, join, append([]string{"--insecure"}, flags...)...)
}

// startArgs is start without --insecure: the flags say what secrets the
// server has.
func (p *proc) startArgs(t *testing.T, bin string, join string, flags ...string) {
	t.Helper()
	args := []string{"server", "--id", p.id, "--data", p.data, "--http", p.http, "--rpc", p.rpc, "--gossip", p.gossip, "--log-level", "info"}
	if join != "" {
		args = append(args, "--join", join)
	}
	args = append(append(args, p.flags...), flags...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = p.log, p.log
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	p.cmd, p.exited = cmd, exited
	go func() {
		p.err = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
}

// running reports whether the process of the last start still runs.
func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// wait waits up to d for the process to exit by itself and reports its
// result; ok is false if it still runs.
func (p *proc) wait(d time.Duration) (err error, ok bool) {
	select {
	case <-p.exited:
		return p.err, true
	case <-time.After(d):
		return nil, false
	}
}

// stop ends the process with SIGTERM and checks that it exits cleanly.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if !p.running() {
		return
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err, ok := p.wait(15 * time.Second); !ok {
		p.cmd.Process.Kill()
		<-p.exited
		t.Errorf("%s did not stop on SIGTERM", p.id)
	} else if err != nil {
		t.Errorf("%s exited with %v after SIGTERM", p.id, err)
	}
}

// kill9 kills the process with SIGKILL and waits for it to be gone.
func (p *proc) kill9(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGKILL)
	if _, ok := p.wait(10 * time.Second); !ok {
		t.Fatalf("%s still runs 10 s after SIGKILL", p.id)
	}
}

func httpDo(method, url, body string) (int, string, http.Header, error) {
	return httpDoHeader(method, url, body, nil)
}

// httpDoHeader is httpDo with request headers.
func httpDoHeader(method, url, body string, hdr map[string]string) (int, string, http.Header, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := testClient.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, nil
}

// testClient keeps enough idle connections for concurrent loads, which
// would otherwise open a connection per request and run out of ports.
var testClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 30 * time.Second}}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	waitUntil(t, d, what, func() error {
		if cond() {
			return nil
		}
		return errors.New("not yet")
	})
}

// waitUntil polls cond until it returns nil, and fails the test with
// cond's last error after d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	if err := poll(d, cond); err != nil {
		t.Fatalf("timed out after %v waiting for %s: %v", d, what, err)
	}
}

// poll calls cond every 50 ms until it returns nil, and returns its last
// error once d has passed.
func poll(d time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startProcs starts n nodes, n1 first and the others joining it, with
// flags on each, and waits for them to form one settled cluster. The
// others start once n1 has proposed the first layout: a node that joins
// while it is being proposed may miss it and wait for gossip's next
// full-state sync, up to 30 s.
func startProcs(t *testing.T, bin string, n int, flags ...string) []*proc {
	dir := t.TempDir()
	var ps []*proc
	for i := 0; i < n; i++ {
		p := newProc(t, dir, fmt.Sprintf("n%d", i+1), flags...)
		join := ""
		if i > 0 {
			join = ps[0].gossip
		}
		p.start(t, bin, join)
		ps = append(ps, p)
		if i == 0 {
			waitSettled(t, ps, 20*time.Second)
		}
	}
	waitFor(t, 20*time.Second, fmt.Sprintf("all nodes to see %d reachable members", n), func() bool {
		for _, p := range ps {
			code, body, _, err := httpDo("GET", "http://"+p.http+"/v1/cluster", "")
			if err != nil || code != 200 || strings.Count(body, `"reachable": true`) != n {
				return false
			}
		}
		return true
	})
	waitSettled(t, ps, 30*time.Second)
	return ps
}

// waitSettled waits until every node in ps reports the same committed
// layout holding exactly ps and no membership change in progress: a
// cluster formed by --join grows one node at a time, and each join
// streams before it completes.
func waitSettled(t *testing.T, ps []*proc, limit time.Duration) {
	t.Helper()
	waitUntil(t, limit, "the membership to settle", func() error { return settled(ps, 0) })
}

// settled reports why ps is not yet one cluster of exactly ps, at one
// committed epoch above after, with no change in progress.
func settled(ps []*proc, after uint64) error {
	var epoch uint64
	for i, p := range ps {
		st, ok := view(p)
		switch {
		case !ok:
			return fmt.Errorf("%s: no status", p.id)
		case st.Change != nil:
			return fmt.Errorf("%s: epoch %d, change in progress: %s", p.id, st.Epoch, describe(st.Change))
		case st.Epoch <= after:
			return fmt.Errorf("%s: epoch %d, not past %d", p.id, st.Epoch, after)
		case i > 0 && st.Epoch != epoch:
			return fmt.Errorf("%s: epoch %d, %s: %d", p.id, st.Epoch, ps[0].id, epoch)
		}
		epoch = st.Epoch
		var ring []string
		for _, m := range st.Members {
			if m.InRing {
				ring = append(ring, m.ID)
			}
		}
		if len(ring) != len(ps) {
			return fmt.Errorf("%s: ring %v", p.id, ring)
		}
		for _, q := range ps {
			if !slices.Contains(ring, q.id) {
				return fmt.Errorf("%s: ring %v lacks %s", p.id, ring, q.id)
			}
		}
	}
	return nil
}

// Three real server processes join through --join, and a value written
// through one node is read through another.
func TestProcessesJoinAndServe(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := buildBinary(t)
	ps := startProcs(t, bin, 3)
	code, body, hdr, err := httpDo("PUT", "http://"+ps[0].http+"/v1/kv/demo/greeting?w=all", "hello")
	if err != nil || code != 204 {
		t.Fatalf("PUT: %d %s %v", code, body, err)
	}
	if hdr.Get("X-Quorum-Replicas") == "" {
		t.Fatal("no receipt")
	}
	for _, p := range ps[1:] {
		code, body, _, err := httpDo("GET", "http://"+p.http+"/v1/kv/demo/greeting?r=one", "")
		if err != nil || code != 200 || body != "hello" {
			t.Fatalf("GET via %s: %d %q %v", p.id, code, body, err)
		}
	}
	for _, p := range ps {
		p.stop(t)
		// Logs written to a file carry no terminal colour codes, and
		// pebble's own chatter stays at debug level.
		b, err := os.ReadFile(p.log.Name())
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "\x1b[") || !strings.Contains(string(b), "node started") {
			t.Fatalf("%s's log has colour codes, or lacks its start line:\n%.400s", p.id, b)
		}
		if strings.Contains(string(b), "WAL") || strings.Contains(string(b), "[JOB") {
			t.Fatalf("%s's info log shows pebble's internals:\n%.400s", p.id, b)
		}
	}
}
