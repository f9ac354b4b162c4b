package main

import (
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorumkv/quorumkv/internal/testcluster"
	"github.com/quorumkv/quorumkv/node"
)

// The CLI sends --token (or $QUORUMKV_TOKEN) to a node that requires
// tokens; a missing, wrong or too weak token is a one-line error that
// says the node refused it and never shows the token.
func TestCLITokens(t *testing.T) {
	const (
		writeTok = "cli-write-token-0123456789"
		readTok  = "cli-read-token-0123456789"
		wrongTok = "cli-wrong-token-0123456789"
	)
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte("write "+writeTok+" cli\nread "+readTok+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := testcluster.StartWith(t, testcluster.Options{Nodes: 1, Configure: func(_ int, cfg *node.Config) { cfg.TokenFile = path }})
	url := c.URL(0)
	t.Setenv(envToken, "")

	if out, err := run(t, "put", "b", "k", "v1", "--node", url, "--token", writeTok); err != nil {
		t.Fatalf("put with the write token: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name  string
		args  []string
		inErr string
	}{
		{"no token", []string{"put", "b", "k", "v2"}, "pass --token or set QUORUMKV_TOKEN"},
		{"wrong token", []string{"get", "b", "k", "--token", wrongTok}, "does not know the bearer token"},
		{"read token writes", []string{"delete", "b", "k", "--token", readTok}, "needs write"},
		{"write token runs anti-entropy", []string{"antientropy", "--token", writeTok}, "needs admin"},
		{"write token commits", []string{"cluster", "commit", "--token", writeTok}, "needs admin"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := run(t, append(tc.args, "--node", url)...)
			if err == nil {
				t.Fatal("the node accepted the request")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, "the node refused the token: ") || !strings.Contains(msg, tc.inErr) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q, want one line: the node refused the token ... %s", msg, tc.inErr)
			}
			for _, tok := range []string{writeTok, readTok, wrongTok} {
				if strings.Contains(msg, tok) {
					t.Fatalf("error %q shows a token", msg)
				}
			}
		})
	}
	// The environment's token when no --token is given.
	t.Setenv(envToken, readTok)
	out, err := run(t, "get", "b", "k", "--node", url)
	if err != nil || !strings.HasSuffix(out, "v1") {
		t.Fatalf("get with $QUORUMKV_TOKEN: %v\n%s", err, out)
	}
	if _, err := run(t, "status", "--node", url); err != nil {
		t.Fatalf("status with a read token: %v", err)
	}
	// --token wins over the environment.
	if _, err := run(t, "put", "b", "k2", "v3", "--node", url, "--token", writeTok); err != nil {
		t.Fatalf("put with --token over $QUORUMKV_TOKEN: %v", err)
	}
	if out, err := run(t, "get", "b", "k2", "--node", url); err != nil || !strings.HasSuffix(out, "v3") {
		t.Fatalf("after the put: %v\n%s", err, out)
	}
}

// --help does not show the token of the environment.
func TestCLITokenNotInHelp(t *testing.T) {
	const tok = "help-token-0123456789"
	t.Setenv(envToken, tok)
	for _, cmd := range [][]string{{"get", "--help"}, {"status", "--help"}, {"bench", "run", "--help"}} {
		out, err := run(t, cmd...)
		if err != nil || !strings.Contains(out, "--token") || strings.Contains(out, tok) {
			t.Fatalf("%v: %v; --token listed: %v; token shown: %v", cmd, err, strings.Contains(out, "--token"), strings.Contains(out, tok))
		}
	}
}

// --cacert (or $QUORUMKV_CACERT) verifies an https:// node; without it the
// test server's certificate is refused.
func TestCLICACert(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(node.ClusterStatus{Node: "n1", Cluster: "tls"})
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(envCACert, "")
	if _, err := run(t, "status", "--node", srv.URL); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("status without --cacert: %v, want a certificate error", err)
	}
	if out, err := run(t, "status", "--node", srv.URL, "--cacert", ca); err != nil || !strings.Contains(out, "cluster tls") {
		t.Fatalf("status --cacert: %v\n%s", err, out)
	}
	t.Setenv(envCACert, ca)
	if out, err := run(t, "status", "--node", srv.URL); err != nil || !strings.Contains(out, "cluster tls") {
		t.Fatalf("status with $QUORUMKV_CACERT: %v\n%s", err, out)
	}
}
