package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/quorumkv/quorumkv/node"
)

// runIn executes the CLI with args and stdin, and returns what it printed.
func runIn(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetIn(strings.NewReader(stdin))
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

func TestGossipKeyGenerate(t *testing.T) {
	seen := map[string]bool{}
	for range 2 {
		out, err := run(t, "gossip-key", "generate")
		if err != nil {
			t.Fatal(err)
		}
		k, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(out, "\n"))
		if err != nil || len(k) != 32 {
			t.Fatalf("generate printed %q: %d bytes, %v; want one line of base64 of 32 bytes", out, len(k), err)
		}
		if _, err := node.ParseGossipKeys([]byte(out)); err != nil {
			t.Fatalf("a generated key is not a key file line: %v", err)
		}
		seen[out] = true
	}
	if len(seen) != 2 {
		t.Fatal("two generated keys are equal")
	}
}

// Each rotation step posts the key (from the argument or stdin) to its
// endpoint, with --force where it has one, and prints every member's keys;
// a key that is not one is refused before anything is sent.
func TestGossipKeyCommands(t *testing.T) {
	key := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))
	answer := node.GossipKeys{Op: "use", Key: "0f1e2d3c", Nodes: []node.NodeGossipKeys{
		{Node: "n1", Primary: "0f1e2d3c", Keys: []string{"0f1e2d3c", "aabbccdd"}},
		{Node: "n2", Error: "connection refused"},
	}}
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		path  string
		force bool
	}{
		{"install from the argument", "", []string{"install", key}, "/v1/cluster/gossip-keys/install", false},
		{"use from stdin", key + "\n", []string{"use", "-"}, "/v1/cluster/gossip-keys/use", false},
		{"remove forced", "", []string{"remove", key, "--force"}, "/v1/cluster/gossip-keys/remove", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fn := newFakeNode(t, http.StatusOK, always(answer))
			out, err := runIn(t, tc.stdin, append(append([]string{"gossip-key"}, tc.args...), "--node", fn.URL)...)
			if err != nil {
				t.Fatal(err)
			}
			reqs := fn.requests()
			if len(reqs) != 1 || reqs[0].Method != http.MethodPost || reqs[0].Path != tc.path || reqs[0].ContentType != "application/json" {
				t.Fatalf("requests %+v, want one JSON POST to %s", reqs, tc.path)
			}
			var body struct {
				Key   string
				Force bool
			}
			if err := json.Unmarshal(reqs[0].Body, &body); err != nil || body.Key != key || body.Force != tc.force {
				t.Fatalf("body %s (%v), want the key and force=%v", reqs[0].Body, err, tc.force)
			}
			for _, want := range []string{"n1           0f1e2d3c  0f1e2d3c,aabbccdd", "n2           ?         error: connection refused"} {
				if !strings.Contains(out, want) {
					t.Fatalf("printed\n%s\nwant a line %q", out, want)
				}
			}
			if strings.Contains(out, key) {
				t.Fatal("the key was printed")
			}
		})
	}

	fn := newFakeNode(t, http.StatusOK, always(answer))
	for _, args := range [][]string{
		{"install", "not-a-key"},
		{"use", base64.StdEncoding.EncodeToString(make([]byte, 20))},
		{"install", "-"}, // stdin is empty
		{"install", "--force", key},
	} {
		if _, err := runIn(t, "", append(append([]string{"gossip-key"}, args...), "--node", fn.URL)...); err == nil {
			t.Fatalf("gossip-key %v succeeded", args)
		}
	}
	if n := len(fn.requests()); n != 0 {
		t.Fatalf("%d requests sent for keys refused locally", n)
	}
}

// list prints every member's keys; a 502 from a change shows the node's
// message naming the members that failed.
func TestGossipKeyListAndIncomplete(t *testing.T) {
	fn := newFakeNode(t, http.StatusOK, always(node.GossipKeys{Nodes: []node.NodeGossipKeys{{Node: "n1", Primary: "01234567", Keys: []string{"01234567"}}}}))
	out, err := run(t, "gossip-key", "list", "--node", fn.URL)
	if err != nil || !strings.Contains(out, "n1           01234567  01234567") {
		t.Fatalf("list printed %q, %v", out, err)
	}
	if reqs := fn.requests(); reqs[0].Method != http.MethodGet || reqs[0].Path != "/v1/cluster/gossip-keys" {
		t.Fatalf("list sent %+v", reqs[0])
	}
	bad := newFakeNode(t, http.StatusBadGateway, always(node.GossipKeys{Code: node.CodeGossipKeyIncomplete, Error: "gossip key install 01234567 failed on 1 of 3 members (n3: timeout)"}))
	key := base64.StdEncoding.EncodeToString(make([]byte, 16))
	if _, err := run(t, "gossip-key", "install", key, "--node", bad.URL); err == nil || !strings.Contains(err.Error(), "n3: timeout") {
		t.Fatalf("install against a 502: %v, want the failing member named", err)
	}
}
