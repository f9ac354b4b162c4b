package node_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/internal/simcluster"
	"github.com/quorumkv/quorumkv/internal/testcluster"
	"github.com/quorumkv/quorumkv/node"
)

const wrongSecret = "wrong-secret-0123456789"

// tokenFile writes a token file with one token of each role and returns
// its path.
func tokenFile(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokens")
	body := "# test tokens\nread " + readSecret + " reader\nwrite " + writeSecret + " writer\nadmin " + adminSecret + " operator\n"
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func bearerHeader(secret string) map[string]string {
	if secret == "" {
		return nil
	}
	return map[string]string{"Authorization": "Bearer " + secret}
}

// lockedBuffer collects the nodes' logs, written from many goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// An endpoint of each role, with a request that would change something
// if it were let through, and the status it answers with the right token.
var authRoutes = []struct {
	need         node.Role
	method, path string
	body         string
	ok           int
}{
	{node.RoleRead, "GET", "/v1/kv/b/k", "", http.StatusOK},
	{node.RoleRead, "HEAD", "/v1/kv/b/k", "", http.StatusOK},
	{node.RoleRead, "GET", "/v1/buckets/b", "", http.StatusOK},
	{node.RoleRead, "GET", "/v1/cluster", "", http.StatusOK},
	{node.RoleRead, "GET", "/v1/cluster/plan", "", http.StatusOK},
	{node.RoleRead, "GET", "/v1/cluster/transfers", "", http.StatusOK},
	{node.RoleRead, "GET", "/metrics", "", http.StatusOK},
	{node.RoleWrite, "PUT", "/v1/kv/b/k", "overwritten", http.StatusNoContent},
	{node.RoleWrite, "DELETE", "/v1/kv/b/k2", "", http.StatusNoContent},
	{node.RoleAdmin, "PUT", "/v1/buckets/b", `{"n":1,"r":1,"w":1}`, http.StatusOK},
	{node.RoleAdmin, "POST", "/v1/antientropy/run", "", http.StatusOK},
	{node.RoleAdmin, "POST", "/v1/cluster/leave", `{"node":"n2","stage":true,"force":true}`, http.StatusOK},
	{node.RoleAdmin, "POST", "/v1/cluster/clear", "", http.StatusOK},
	{node.RoleAdmin, "GET", "/debug/pprof/", "", http.StatusOK},
}

// Requests without a token, with a wrong one, or with one whose role is
// too small are refused with 401 or 403 and change nothing: every key,
// the bucket's properties and the staged membership read back as they
// were. The right token then succeeds. No token shows up in the logs.
func TestAuthRefusesAndChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs lockedBuffer
		path := tokenFile(t)
		c := simcluster.Start(t, simcluster.Options{Nodes: 2, Log: &logs, Configure: func(_ int, cfg *node.Config) {
			cfg.TokenFile = path
			cfg.Pprof = true
		}})
		do := func(secret, method, path, body string) simcluster.Response {
			t.Helper()
			return simDo(t, c, 0, method, path, []byte(body), bearerHeader(secret))
		}
		for _, kv := range [][2]string{{"k", "v1"}, {"k2", "v2"}} {
			if r := do(adminSecret, "PUT", "/v1/kv/b/"+kv[0], kv[1]); r.Status != http.StatusNoContent {
				t.Fatalf("seeding %s: %d %s", kv[0], r.Status, r.Body)
			}
		}
		// state is what the refused requests must leave alone: each key's
		// value and context (a new write changes it), the bucket and the
		// staged intents.
		state := func() string {
			t.Helper()
			var b strings.Builder
			for _, k := range []string{"k", "k2"} {
				r := do(adminSecret, "GET", "/v1/kv/b/"+k, "")
				fmt.Fprintf(&b, "%s=%d %q ctx=%s\n", k, r.Status, r.Body, r.Header.Get("X-Context"))
			}
			r := do(adminSecret, "GET", "/v1/buckets/b", "")
			fmt.Fprintf(&b, "bucket=%d %s", r.Status, r.Body)
			r = do(adminSecret, "GET", "/v1/cluster/plan", "")
			var p node.Plan
			if err := json.Unmarshal(r.Body, &p); err != nil {
				t.Fatalf("plan: %d %s", r.Status, r.Body)
			}
			fmt.Fprintf(&b, "staged=%v", p.Staged)
			return b.String()
		}
		before := state()

		var want node.AuthMetrics
		for _, rt := range authRoutes {
			refusals := []struct {
				secret string
				status int
				count  *uint64
			}{
				{"", http.StatusUnauthorized, &want.Missing},
				{wrongSecret, http.StatusUnauthorized, &want.Unknown},
				{adminSecret[:len(adminSecret)-1], http.StatusUnauthorized, &want.Unknown},
			}
			if rt.need >= node.RoleWrite {
				refusals = append(refusals, struct {
					secret string
					status int
					count  *uint64
				}{readSecret, http.StatusForbidden, &want.Forbidden})
			}
			if rt.need == node.RoleAdmin {
				refusals = append(refusals, struct {
					secret string
					status int
					count  *uint64
				}{writeSecret, http.StatusForbidden, &want.Forbidden})
			}
			for _, ref := range refusals {
				r := do(ref.secret, rt.method, rt.path, rt.body)
				*ref.count++
				if r.Status != ref.status {
					t.Fatalf("%s %s with token %q: %d %s, want %d", rt.method, rt.path, redact(ref.secret), r.Status, r.Body, ref.status)
				}
				if r.Status == http.StatusUnauthorized && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), `Bearer realm="quorumkv"`) {
					t.Fatalf("%s %s: 401 with WWW-Authenticate %q", rt.method, rt.path, r.Header.Get("WWW-Authenticate"))
				}
				if rt.method != "HEAD" {
					code := map[int]string{401: node.CodeUnauthorized, 403: node.CodeForbidden}[ref.status]
					if got := errorCode(t, r.Body); got != code {
						t.Fatalf("%s %s: code %q, want %q", rt.method, rt.path, got, code)
					}
				}
			}
		}
		if after := state(); after != before {
			t.Fatalf("refused requests changed the data:\nbefore %s\nafter  %s", before, after)
		}
		if got := c.Node(0).AuthMetrics(); got != want {
			t.Fatalf("auth metrics %+v, want %+v", got, want)
		}
		m := do(readSecret, "GET", "/metrics", "")
		for reason, n := range map[string]uint64{"missing": want.Missing, "unknown": want.Unknown, "forbidden": want.Forbidden} {
			line := fmt.Sprintf("quorumkv_http_auth_failures_total{reason=%q} %d", reason, n)
			if !bytes.Contains(m.Body, []byte(line)) {
				t.Fatalf("/metrics lacks %s", line)
			}
		}

		// The right token, or a stronger one, gets through.
		for _, rt := range authRoutes {
			secret := map[node.Role]string{node.RoleRead: readSecret, node.RoleWrite: writeSecret, node.RoleAdmin: adminSecret}[rt.need]
			if r := do(secret, rt.method, rt.path, rt.body); r.Status != rt.ok {
				t.Fatalf("%s %s with a %v token: %d %s, want %d", rt.method, rt.path, rt.need, r.Status, r.Body, rt.ok)
			}
			if rt.need == node.RoleRead {
				if r := do(adminSecret, rt.method, rt.path, rt.body); r.Status != rt.ok {
					t.Fatalf("%s %s with an admin token: %d", rt.method, rt.path, r.Status)
				}
			}
		}
		if after := state(); after == before {
			t.Fatal("the allowed requests changed nothing either: the state check sees nothing")
		}
		for _, secret := range []string{readSecret, writeSecret, adminSecret, wrongSecret, adminSecret[:len(adminSecret)-1]} {
			if strings.Contains(logs.String(), secret) {
				t.Fatalf("the log shows the token %s", redact(secret))
			}
		}
		for _, want := range []string{`"token":"operator"`, `"token":"reader"`, `"token":"writer"`} {
			if !strings.Contains(logs.String(), want) {
				t.Fatalf("the log does not name the token by its name: no %s", want)
			}
		}
	})
}

// redact shows a token's first characters only, for failure messages.
func redact(secret string) string {
	if len(secret) < 4 {
		return secret
	}
	return secret[:4] + "..."
}

// The bucket-properties attack of issue 14: a client with a write token
// cannot make every write to a bucket durable on one replica.
func TestAuthBucketPropsNeedAdmin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := tokenFile(t)
		c := simcluster.Start(t, simcluster.Options{Nodes: 3, Configure: func(_ int, cfg *node.Config) { cfg.TokenFile = path }})
		attack := []byte(`{"n":1,"r":1,"w":1}`)
		for i := range 3 {
			r := simDo(t, c, i, "PUT", "/v1/buckets/b", attack, bearerHeader(writeSecret))
			if r.Status != http.StatusForbidden || errorCode(t, r.Body) != node.CodeForbidden {
				t.Fatalf("write token via n%d: %d %s", i+1, r.Status, r.Body)
			}
		}
		for i := range 3 {
			r := simDo(t, c, i, "GET", "/v1/buckets/b", nil, bearerHeader(readSecret))
			var p struct{ N, R, W int }
			if err := json.Unmarshal(r.Body, &p); err != nil || p.N != 3 || p.R != 2 || p.W != 2 {
				t.Fatalf("n%d: bucket b is %d %s, want the defaults n=3 r=2 w=2", i+1, r.Status, r.Body)
			}
		}
	})
}

// Only "Authorization: Bearer <token>" carries a token; the scheme is
// case-insensitive.
func TestAuthBearerHeader(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := tokenFile(t)
		c := simcluster.Start(t, simcluster.Options{Nodes: 1, Configure: func(_ int, cfg *node.Config) { cfg.TokenFile = path }})
		for hdr, want := range map[string]int{
			"Bearer " + readSecret:         http.StatusOK,
			"bearer " + readSecret:         http.StatusOK,
			"Bearer  " + readSecret + " ":  http.StatusOK,
			"Basic " + readSecret:          http.StatusUnauthorized,
			readSecret:                     http.StatusUnauthorized,
			"Bearer":                       http.StatusUnauthorized,
			"Bearer ":                      http.StatusUnauthorized,
			"Bearer " + readSecret + "x":   http.StatusUnauthorized,
			"Bearer " + readSecret + " x ": http.StatusUnauthorized,
		} {
			r := simDo(t, c, 0, "GET", "/v1/cluster", nil, map[string]string{"Authorization": hdr})
			if r.Status != want {
				t.Errorf("Authorization %q: %d, want %d", redact(hdr), r.Status, want)
			}
		}
	})
}

// ReloadTokens takes a changed file's tokens from the next request on;
// a broken file leaves the tokens in use.
func TestAuthReloadTokens(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := tokenFile(t)
		c := simcluster.Start(t, simcluster.Options{Nodes: 1, Configure: func(_ int, cfg *node.Config) { cfg.TokenFile = path }})
		get := func(secret string) int {
			return simDo(t, c, 0, "GET", "/v1/cluster", nil, bearerHeader(secret)).Status
		}
		const newSecret = "rotated-secret-0123456789"
		if err := os.WriteFile(path, []byte("admin "+adminSecret+"\nread "+newSecret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := c.Node(0).ReloadTokens(); err != nil {
			t.Fatal(err)
		}
		if get(readSecret) != http.StatusUnauthorized || get(newSecret) != http.StatusOK {
			t.Fatalf("after reload: old read token %d, new %d", get(readSecret), get(newSecret))
		}
		if err := os.WriteFile(path, []byte("read short\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := c.Node(0).ReloadTokens(); err == nil {
			t.Fatal("a broken token file was accepted")
		}
		if get(newSecret) != http.StatusOK {
			t.Fatal("a failed reload dropped the tokens in use")
		}
	})
}

// A node with a bad token file does not start, and says which line.
func TestAuthBadTokenFileStopsOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte("read "+readSecret+"\nsuper "+adminSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := node.DefaultConfig()
	cfg.ID, cfg.DataDir, cfg.TokenFile = "n1", t.TempDir(), path
	cfg.HTTPAddr, cfg.RPCAddr, cfg.GossipAddr = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1:0"
	n, err := node.Open(cfg, zerolog.Nop())
	if err == nil {
		n.Close()
		t.Fatal("a node opened with a bad token file")
	}
	if !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), adminSecret) {
		t.Fatalf("err = %v", err)
	}
}

// FuzzAuthHeader: whatever the Authorization header, method and path, a
// request whose header is not "Bearer <a known token>" gets 401 with the
// JSON error, a known token's request needs the role of what it reaches
// (401 never), and no answer repeats the header. Like FuzzAPIRequest it
// runs one node outside synctest.
func FuzzAuthHeader(f *testing.F) {
	path := filepath.Join(f.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte("read "+readSecret+"\nwrite "+writeSecret+"\nadmin "+adminSecret+"\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	c := testcluster.StartWith(f, testcluster.Options{Nodes: 1, Configure: func(_ int, cfg *node.Config) { cfg.TokenFile = path }})
	h := c.Node(0).Handler()
	known := map[string]bool{readSecret: true, writeSecret: true, adminSecret: true}
	f.Add("GET", "/v1/kv/b/k", "Bearer "+readSecret)
	f.Add("PUT", "/v1/buckets/b", "Bearer "+writeSecret)
	f.Add("POST", "/v1/cluster/remove", "Bearer "+adminSecret)
	f.Add("GET", "/v1/cluster", "Basic "+readSecret)
	f.Add("DELETE", "/v1/kv/b/k", "bearer "+wrongSecret)
	f.Add("GET", "/debug/pprof/", "")
	f.Add("GET", "//v1/kv/b/k", "") // the mux redirects it: still 401 without a token
	f.Add("GET", "/healthz", "")
	f.Fuzz(func(t *testing.T, method, target, authz string) {
		switch method {
		case "GET", "PUT", "DELETE", "HEAD", "POST":
		default:
			return
		}
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t#") || strings.ContainsAny(authz, "\r\n") {
			return
		}
		req, err := http.NewRequest(method, "http://fuzz"+target, strings.NewReader(`{"node":"n9"}`))
		if err != nil {
			return
		}
		req.Header.Set("Authorization", authz)
		w := &recorder{header: http.Header{}}
		h.ServeHTTP(w, req)
		scheme, tok, _ := strings.Cut(authz, " ")
		valid := strings.EqualFold(scheme, "Bearer") && known[strings.TrimSpace(tok)]
		// The documented open endpoints answer without a token; every
		// other request (one the mux only redirects included) needs one.
		open := req.URL.Path == "/healthz" || req.URL.Path == "/readyz" || req.URL.Path == "/v1/ready"
		if !open && valid == (w.status == http.StatusUnauthorized) || open && w.status == http.StatusUnauthorized {
			t.Fatalf("%s %s with Authorization %q: %d %s", method, target, authz, w.status, w.body.String())
		}
		if w.status == http.StatusUnauthorized || w.status == http.StatusForbidden {
			var e struct{ Code string }
			if err := json.Unmarshal([]byte(w.body.String()), &e); err != nil || e.Code == "" {
				t.Fatalf("%d without a JSON error: %q", w.status, w.body.String())
			}
		}
		if len(authz) >= node.MinTokenLen && strings.Contains(w.body.String(), authz) {
			t.Fatalf("the answer repeats the Authorization header: %q", w.body.String())
		}
	})
}
