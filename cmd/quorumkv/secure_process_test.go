package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/devcert"
	"github.com/quorumkv/quorumkv/internal/httpclient"
	"github.com/quorumkv/quorumkv/node"
)

// secureFlags are the secret flags of node id with the files of dir.
func secureFlags(dir, id string) []string {
	cert, key := devcert.NodeFiles(dir, id)
	return []string{"--gossip-key-file", filepath.Join(dir, certsGossipFile), "--token-file", filepath.Join(dir, certsTokenFile),
		"--tls-cert", cert, "--tls-key", key, "--tls-ca", filepath.Join(dir, certsCAFile)}
}

// roleTokens reads the token file quorumkv certs wrote: role -> token.
func roleTokens(t *testing.T, dir string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, certsTokenFile))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && !strings.HasPrefix(f[0], "#") {
			out[f[0]] = f[1]
		}
	}
	return out
}

// secureDo sends a request over HTTPS with the CA of dir and token (none
// when empty).
func secureDo(t *testing.T, dir, token, method, url, body string) (int, string) {
	t.Helper()
	c, err := httpclient.New(httpclient.Config{Token: token, CAFile: filepath.Join(dir, certsCAFile), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseIdleConnections()
	req, err := http.NewRequestWithContext(context.Background(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// secureRing returns the ring members node p reports, over HTTPS.
func secureRing(t *testing.T, dir, token string, p *proc) ([]string, []string, error) {
	code, body := secureDo(t, dir, token, "GET", "https://"+p.http+"/v1/cluster", "")
	if code != 200 {
		return nil, nil, fmt.Errorf("%s: GET /v1/cluster: %d %s", p.id, code, body)
	}
	var st node.ClusterStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		return nil, nil, err
	}
	if st.Change != nil {
		return nil, nil, fmt.Errorf("%s: a change is in progress", p.id)
	}
	var ring, members []string
	for _, m := range st.Members {
		members = append(members, m.ID)
		if m.InRing {
			ring = append(ring, m.ID)
		}
	}
	slices.Sort(ring)
	slices.Sort(members)
	return ring, members, nil
}

// Three real server processes started with the secrets of quorumkv certs
// form a cluster over mutual TLS and encrypted gossip and serve HTTPS
// with tokens. A node with a wrong gossip key, and a node whose
// certificate comes from another CA, are not admitted; requests without
// a token, with a wrong one or with too small a role are refused; and
// the data and bucket properties read back unchanged afterwards.
func TestProcessSecureCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	sdir := filepath.Join(dir, "secrets")
	if _, err := writeSecrets(secretsSpec{dir: sdir, nodes: []string{"n1", "n2", "n3"}, hosts: devcert.DefaultHosts(), validity: time.Hour}, rand.Reader); err != nil {
		t.Fatal(err)
	}
	tok := roleTokens(t, sdir)
	var ps []*proc
	want := []string{}
	for i := 1; i <= 3; i++ {
		id := fmt.Sprintf("n%d", i)
		p := newProc(t, dir, id, secureFlags(sdir, id)...)
		// newProc's start adds --insecure for the plain clusters; this
		// test starts its servers itself, without it.
		join := ""
		if i > 1 {
			join = ps[0].gossip
		}
		p.startArgs(t, bin, join)
		ps = append(ps, p)
		want = append(want, id)
		waitUntil(t, 40*time.Second, id+" in every ring", func() error {
			for _, q := range ps {
				ring, _, err := secureRing(t, sdir, tok["read"], q)
				if err != nil {
					return err
				}
				if !slices.Equal(ring, want) {
					return fmt.Errorf("%s: ring %v, want %v", q.id, ring, want)
				}
			}
			return nil
		})
	}

	url := func(p *proc, path string) string { return "https://" + p.http + path }
	values := map[string]string{}
	for i := range 20 {
		k := fmt.Sprintf("k%02d", i)
		values[k] = "value-" + k
		if code, body := secureDo(t, sdir, tok["write"], "PUT", url(ps[i%3], "/v1/kv/sec/"+k+"?w=all"), values[k]); code != 204 {
			t.Fatalf("PUT %s with the write token: %d %s", k, code, body)
		}
	}
	if code, body := secureDo(t, sdir, tok["admin"], "PUT", url(ps[0], "/v1/buckets/sec"), `{"n":3,"r":2,"w":2}`); code != 204 && code != 200 {
		t.Fatalf("PUT bucket props with the admin token: %d %s", code, body)
	}

	// Refused requests, each with the status it must get.
	for _, c := range []struct {
		what, token, method, path, body string
		status                          int
	}{
		{"no token", "", "GET", "/v1/kv/sec/k00", "", 401},
		{"a wrong token", "not-a-token-of-this-cluster", "GET", "/v1/kv/sec/k00", "", 401},
		{"no token, write", "", "PUT", "/v1/kv/sec/k00", "evil", 401},
		{"a read token, write", tok["read"], "PUT", "/v1/kv/sec/k00", "evil", 403},
		{"a read token, delete", tok["read"], "DELETE", "/v1/kv/sec/k01", "", 403},
		{"a write token, bucket props", tok["write"], "PUT", "/v1/buckets/sec", `{"n":1,"r":1,"w":1}`, 403},
		{"a write token, remove", tok["write"], "POST", "/v1/cluster/remove", `{"node":"n3"}`, 403},
		{"a write token, gossip keys", tok["write"], "POST", "/v1/cluster/gossip-keys/install", `{"key":"` + base64.StdEncoding.EncodeToString(make([]byte, 32)) + `"}`, 403},
	} {
		if code, body := secureDo(t, sdir, c.token, c.method, url(ps[1], c.path), c.body); code != c.status {
			t.Fatalf("%s: %s %s got %d %s, want %d", c.what, c.method, c.path, code, body, c.status)
		}
	}
	// Plain HTTP reaches no API.
	if code, _, _, err := httpDo("GET", "http://"+ps[0].http+"/v1/kv/sec/k00", ""); err == nil && code < 400 {
		t.Fatalf("plain HTTP GET answered %d", code)
	}

	// A node with a wrong gossip key, and one whose certificate comes from
	// another CA (trusting the cluster's), try to join.
	wrongKey := filepath.Join(dir, "wrong-gossip.key")
	if err := os.WriteFile(wrongKey, []byte(base64.StdEncoding.EncodeToString(make([]byte, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := writeSecrets(secretsSpec{dir: sdir, nodes: []string{"n4"}, hosts: devcert.DefaultHosts(), validity: time.Hour}, rand.Reader); err != nil {
		t.Fatal(err)
	}
	n4 := newProc(t, dir, "n4", slices.Concat(secureFlags(sdir, "n4"), []string{"--gossip-key-file", wrongKey})...)
	n4.startArgs(t, bin, ps[0].gossip)
	rogueDir := filepath.Join(dir, "rogue")
	if _, err := writeSecrets(secretsSpec{dir: rogueDir, nodes: []string{"n5"}, hosts: devcert.DefaultHosts(), validity: time.Hour}, rand.Reader); err != nil {
		t.Fatal(err)
	}
	n5flags := secureFlags(rogueDir, "n5")
	n5flags = slices.Concat(n5flags, []string{"--gossip-key-file", filepath.Join(sdir, certsGossipFile), "--tls-ca", filepath.Join(sdir, certsCAFile)})
	n5 := newProc(t, dir, "n5", n5flags...)
	n5.startArgs(t, bin, ps[0].gossip)
	deadline := time.Now().Add(8 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range ps {
			ring, members, err := secureRing(t, sdir, tok["read"], p)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(ring, want) || !slices.Equal(members, want) {
				t.Fatalf("%s: ring %v, members %v with intruders about, want %v", p.id, ring, members, want)
			}
		}
		time.Sleep(250 * time.Millisecond)
	}

	for i, p := range ps {
		for k, v := range values {
			if code, body := secureDo(t, sdir, tok["read"], "GET", url(p, "/v1/kv/sec/"+k+"?r=all"), ""); code != 200 || body != v {
				t.Fatalf("GET %s on n%d: %d %q, want %q", k, i+1, code, body, v)
			}
		}
		code, body := secureDo(t, sdir, tok["read"], "GET", url(p, "/v1/buckets/sec"), "")
		var props struct{ N, R, W int }
		if err := json.Unmarshal([]byte(body), &props); code != 200 || err != nil || props.N != 3 || props.R != 2 || props.W != 2 {
			t.Fatalf("bucket props on n%d: %d %s (%v)", i+1, code, body, err)
		}
	}
	// The CLI passes its token and CA through.
	out, err := run(t, "get", "sec", "k03", "--node", url(ps[2], ""), "--token", tok["read"], "--cacert", filepath.Join(sdir, certsCAFile))
	if err != nil || !strings.Contains(out, "value-k03") {
		t.Fatalf("quorumkv get over HTTPS: %q %v", out, err)
	}
	if _, err := run(t, "get", "sec", "k03", "--node", url(ps[2], ""), "--token", "", "--cacert", filepath.Join(sdir, certsCAFile)); err == nil || !strings.Contains(err.Error(), "refused the token") {
		t.Fatalf("quorumkv get without a token: %v, want the node's refusal", err)
	}
}
