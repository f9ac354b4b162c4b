package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	cmd                         *exec.Cmd
	log                         *os.File
}

func (p *proc) start(t *testing.T, bin string, join string) {
	t.Helper()
	args := []string{"server", "--id", p.id, "--data", p.data, "--http", p.http, "--rpc", p.rpc, "--gossip", p.gossip, "--log-level", "info"}
	if join != "" {
		args = append(args, "--join", join)
	}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
}

func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("%s exited with %v after SIGTERM", p.id, err)
		}
	case <-time.After(15 * time.Second):
		p.cmd.Process.Kill()
		<-done
		t.Errorf("%s did not stop on SIGTERM", p.id)
	}
}

func httpDo(method, url, body string) (int, string, http.Header, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, "", nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header, nil
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func startProcs(t *testing.T, bin string, n int) []*proc {
	dir := t.TempDir()
	var ps []*proc
	for i := 0; i < n; i++ {
		p := &proc{id: fmt.Sprintf("n%d", i+1), http: freePort(t), rpc: freePort(t), gossip: freePort(t), data: filepath.Join(dir, fmt.Sprintf("n%d", i+1))}
		f, err := os.Create(filepath.Join(dir, p.id+".log"))
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
		join := ""
		if i > 0 {
			join = ps[0].gossip
		}
		p.start(t, bin, join)
		ps = append(ps, p)
	}
	waitFor(t, 20*time.Second, "all nodes to see 3 reachable members", func() bool {
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
// layout holding all of ps and no membership change in progress: a
// cluster formed by --join grows one node at a time, and each join
// streams before it completes.
func waitSettled(t *testing.T, ps []*proc, limit time.Duration) {
	t.Helper()
	waitFor(t, limit, "the membership to settle", func() bool {
		var epoch uint64
		for i, p := range ps {
			st, ok := view(t, p)
			if !ok || st.Change != nil || st.Epoch == 0 || i > 0 && st.Epoch != epoch {
				return false
			}
			epoch = st.Epoch
			in := map[string]bool{}
			for _, m := range st.Members {
				in[m.ID] = m.InRing
			}
			for _, q := range ps {
				if !in[q.id] {
					return false
				}
			}
		}
		return true
	})
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
	}
}
