package main

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/quorumkv/quorumkv/handoff"
	"github.com/quorumkv/quorumkv/node"
)

func TestClientURL(t *testing.T) {
	for _, tc := range []struct {
		name string
		read bool
		args []string
		want string
	}{
		{"defaults", true, nil, "http://h:1/v1/kv/b/k"},
		{"read params", true, []string{"-r", "quorum", "-n", "2", "--timeout", "250ms"}, "http://h:1/v1/kv/b/k?n=2&r=quorum&timeout=250ms"},
		{"strict read", true, []string{"--sloppy=false"}, "http://h:1/v1/kv/b/k?sloppy=false"},
		{"strict write", false, []string{"-w", "all", "--sloppy=false"}, "http://h:1/v1/kv/b/k?sloppy=false&w=all"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f clientFlags
			cmd := &cobra.Command{Use: "x"}
			f.register(cmd, tc.read)
			if err := cmd.Flags().Parse(append([]string{"--node", "http://h:1/"}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			if got := f.url("b", "k"); got != tc.want {
				t.Fatalf("url = %s, want %s", got, tc.want)
			}
		})
	}
}

// run executes the CLI with args and returns what it printed.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	return runCtx(t, context.Background(), args...)
}

// status prints each owner's pending hints as GET /v1/cluster reports them.
func TestStatusPrintsPendingHints(t *testing.T) {
	st := node.ClusterStatus{Node: "n1", Cluster: "c", Partitions: 64,
		Hints: map[string]handoff.HintOwnerStats{"n2": {PendingHints: 7, PendingBytes: 4096, Overflowed: 2}}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(st)
	}))
	defer srv.Close()
	out, err := run(t, "status", "--node", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "hints for n2: 7 (4096 bytes), 2 overflowed") {
		t.Fatalf("status printed %q, want n2's 7 hints of 4096 bytes, 2 overflowed", out)
	}
}

// The admin commands give up after --timeout (plus a short grace) on a node
// that accepts the connection and never answers, and take no key flags.
func TestAdminCommandsTimeOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		_ = ln.Close()
		<-accepted
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	}()
	for _, cmd := range [][]string{{"status"}, {"antientropy"}, {"cluster", "leave", "n1"}, {"cluster", "transfers", "--watch"}} {
		done := make(chan error, 1)
		go func() {
			_, err := run(t, append(cmd, "--node", "http://"+ln.Addr().String(), "--timeout", "100ms")...)
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil {
				t.Fatalf("%s against a silent node succeeded", cmd)
			}
		case <-time.After(clientGrace + 5*time.Second):
			t.Fatalf("%s --timeout 100ms still waits after %v", cmd, clientGrace+5*time.Second)
		}
		if _, err := run(t, append(cmd, "--node", "http://"+ln.Addr().String(), "-r", "all")...); err == nil {
			t.Fatalf("%s accepted -r, a flag of key reads", cmd)
		}
	}
}

func TestDevNeedsANode(t *testing.T) {
	for _, n := range []string{"0", "-1"} {
		if _, err := run(t, "dev", "--nodes", n, "--base-port", "0", "--dir", t.TempDir()); err == nil || !strings.Contains(err.Error(), "at least one node") {
			t.Fatalf("dev --nodes %s: %v, want an error", n, err)
		}
	}
}
