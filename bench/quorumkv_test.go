package bench

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestDriver(t *testing.T, mod func(*Config), nodes ...*fakeNode) *QuorumKV {
	t.Helper()
	cfg := DefaultConfig()
	for _, n := range nodes {
		cfg.Endpoints = append(cfg.Endpoints, n.addr())
	}
	cfg.Threads = 4
	if mod != nil {
		mod(&cfg)
	}
	d, err := NewQuorumKV(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestQuorumKVInsertRead(t *testing.T) {
	node := newFakeNode(t)
	d := newTestDriver(t, func(c *Config) {
		c.R, c.W, c.N, c.ServerTimeout = "quorum", "2", "3", 1500*time.Millisecond
	}, node)
	ctx := context.Background()
	rec := ycsbRecord("user 1/a", 3, 10)
	if err := d.Insert(ctx, "usertable", "user 1/a", rec); err != nil {
		t.Fatal(err)
	}
	got, err := d.Read(ctx, "usertable", "user 1/a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.EqualFunc(got, rec, bytes.Equal) {
		t.Fatalf("read %v, want %v", got, rec)
	}
	got, err = d.Read(ctx, "usertable", "user 1/a", []string{"field1", "nope"})
	if err != nil || len(got) != 1 || !bytes.Equal(got["field1"], rec["field1"]) {
		t.Fatalf("projected read %v, %v", got, err)
	}

	reqs := node.log()
	put := reqs[0]
	if put.method != "PUT" || put.path != "/v1/kv/usertable/user%201%2Fa" || put.key != "user 1/a" {
		t.Fatalf("put request %+v", put)
	}
	if put.xctx != "" || put.ctype != RecordContentType {
		t.Fatalf("insert sent context %q, content type %q", put.xctx, put.ctype)
	}
	for _, r := range reqs {
		want := "n=3&timeout=1.5s&w=2"
		if r.method == "GET" {
			want = "n=3&r=quorum&timeout=1.5s"
		}
		if got := r.query.Encode(); got != want {
			t.Fatalf("%s query %s, want %s", r.method, got, want)
		}
	}
	if reqs[1].method != "GET" || reqs[1].accept != "" {
		t.Fatalf("read request %+v", reqs[1])
	}
}

func TestQuorumKVNoParamsByDefault(t *testing.T) {
	node := newFakeNode(t)
	d := newTestDriver(t, nil, node)
	_ = d.Insert(context.Background(), "t", "k", map[string][]byte{"f": []byte("v")})
	if q := node.log()[0].query; len(q) != 0 {
		t.Fatalf("query %v, want none", q)
	}
}

func TestQuorumKVUpdateCarriesContext(t *testing.T) {
	node := newFakeNode(t)
	d := newTestDriver(t, nil, node)
	ctx := context.Background()
	base := ycsbRecord("k", 3, 4)
	if err := d.Insert(ctx, "t", "k", base); err != nil {
		t.Fatal(err)
	}
	if err := d.Update(ctx, "t", "k", map[string][]byte{"field1": []byte("new!")}); err != nil {
		t.Fatal(err)
	}
	reqs := node.log()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want insert, get, put", len(reqs))
	}
	get, put := reqs[1], reqs[2]
	if get.method != "GET" || get.accept != "" { // a plain read: the raw value unless siblings
		t.Fatalf("update read %+v", get)
	}
	if put.method != "PUT" || put.xctx != "v1" {
		t.Fatalf("update write %+v, want context v1 of the read", put)
	}
	// The write superseded the insert: one version, the merged record.
	got, err := d.Read(ctx, "t", "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := maps.Clone(base)
	want["field1"] = []byte("new!")
	if !maps.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("after update %v, want %v", got, want)
	}
	if m := d.Metrics(); m.SiblingReads != 0 || m.Gets != 2 || m.Puts != 2 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestQuorumKVUpdateOfMissingKey(t *testing.T) {
	node := newFakeNode(t)
	d := newTestDriver(t, nil, node)
	if err := d.Update(context.Background(), "t", "fresh", map[string][]byte{"f": []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if reqs := node.log(); reqs[1].method != "PUT" || reqs[1].xctx != "" {
		t.Fatalf("write of a missing key %+v", reqs[1])
	}
}

// A read-modify-write reuses its read: one GET, one PUT with its context.
// An update of a deleted key writes with the tombstone's context, which a
// 404 carries in X-Context, so the tombstone does not stay as a sibling.
func TestQuorumKVUpdateOverTombstone(t *testing.T) {
	node := newFakeNode(t)
	d := newTestDriver(t, nil, node)
	ctx := context.Background()
	if err := d.Insert(ctx, "t", "k", ycsbRecord("k", 2, 3)); err != nil {
		t.Fatal(err)
	}
	if err := d.Delete(ctx, "t", "k"); err != nil {
		t.Fatal(err)
	}
	if err := d.Update(ctx, "t", "k", map[string][]byte{"f": []byte("back")}); err != nil {
		t.Fatal(err)
	}
	reqs := node.log()
	put := reqs[len(reqs)-1]
	if put.method != "PUT" || put.xctx != "v2" {
		t.Fatalf("update over a tombstone %+v, want context v2 of the delete", put)
	}
	got, err := d.Read(ctx, "t", "k", nil)
	if err != nil || string(got["f"]) != "back" || len(got) != 1 {
		t.Fatalf("read after update over tombstone = %v, %v", got, err)
	}
	if m := d.Metrics(); m.SiblingReads != 0 {
		t.Fatalf("tombstone left a sibling: %+v", m)
	}
}

func TestQuorumKVReadModifyWriteReusesRead(t *testing.T) {
	node := newFakeNode(t)
	d := newTestDriver(t, nil, node)
	ctx := context.Background()
	_ = d.Insert(ctx, "t", "k", map[string][]byte{"a": []byte("1"), "b": []byte("2")})
	tx := &txn{}
	tctx := withTxn(ctx, tx)
	if _, err := d.Read(tctx, "t", "k", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if err := d.Update(tctx, "t", "k", map[string][]byte{"a": []byte("9")}); err != nil {
		t.Fatal(err)
	}
	reqs := node.log()
	if len(reqs) != 3 || reqs[1].method != "GET" || reqs[2].method != "PUT" || reqs[2].xctx != "v1" {
		t.Fatalf("requests %+v", reqs)
	}
	got, _ := d.Read(ctx, "t", "k", nil)
	if string(got["a"]) != "9" || string(got["b"]) != "2" {
		t.Fatalf("record %q", got)
	}
	// A second update in the same transaction reads again.
	if err := d.Update(tctx, "t", "k", map[string][]byte{"b": []byte("8")}); err != nil {
		t.Fatal(err)
	}
	if reqs := node.log(); reqs[len(reqs)-2].method != "GET" {
		t.Fatalf("stale read reused: %+v", reqs[len(reqs)-2:])
	}
}

// A read answered with siblings merges them and writes the merge back with
// the siblings' context, which collapses them.
func TestQuorumKVReadResolvesSiblings(t *testing.T) {
	node := newFakeNode(t)
	d := newTestDriver(t, nil, node)
	ctx := context.Background()
	node.addSibling("t", "k", EncodeRecord(nil, map[string][]byte{"a": []byte("1"), "b": []byte("x")}), false)
	node.addSibling("t", "k", EncodeRecord(nil, map[string][]byte{"a": []byte("2"), "c": []byte("y")}), false)
	node.addSibling("t", "k", nil, true) // a tombstone among them
	got, err := d.Read(ctx, "t", "k", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"a": []byte("2"), "b": []byte("x"), "c": []byte("y")}
	if !maps.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("merged %q, want %q", got, want)
	}
	reqs := node.log()
	if len(reqs) != 2 || reqs[1].method != "PUT" || reqs[1].xctx != "v3" {
		t.Fatalf("write-back %+v, want a PUT with context v3", reqs)
	}
	m := d.Metrics()
	if m.SiblingReads != 1 || m.SiblingResolutions != 1 || m.WritebackErrors != 0 {
		t.Fatalf("metrics %+v", m)
	}
	// Resolved: the next read sees one version.
	if _, err := d.Read(ctx, "t", "k", nil); err != nil {
		t.Fatal(err)
	}
	if m := d.Metrics(); m.SiblingReads != 1 {
		t.Fatalf("siblings survived the write-back: %+v", m)
	}
}

func TestQuorumKVUpdateResolvesSiblings(t *testing.T) {
	node := newFakeNode(t)
	d := newTestDriver(t, nil, node)
	node.addSibling("t", "k", EncodeRecord(nil, map[string][]byte{"a": []byte("1")}), false)
	node.addSibling("t", "k", EncodeRecord(nil, map[string][]byte{"b": []byte("2")}), false)
	node.fail("PUT", "t", "k", 503, "quorum_failed")
	err := d.Update(context.Background(), "t", "k", map[string][]byte{"c": []byte("3")})
	if ClassifyError(err) != KindQuorum {
		t.Fatalf("update error %v, want a quorum failure", err)
	}
	if err := d.Update(context.Background(), "t", "k", map[string][]byte{"c": []byte("3")}); err != nil {
		t.Fatal(err)
	}
	got, _ := d.Read(context.Background(), "t", "k", nil)
	if len(got) != 3 {
		t.Fatalf("record %q, want fields a, b, c", got)
	}
	if m := d.Metrics(); m.SiblingReads != 2 || m.SiblingResolutions != 1 || m.WritebackErrors != 1 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestQuorumKVErrors(t *testing.T) {
	node := newFakeNode(t)
	d := newTestDriver(t, nil, node)
	ctx := context.Background()
	_, err := d.Read(ctx, "t", "missing", nil)
	if !errors.Is(err, ErrNotFound) || ClassifyError(err) != KindNotFound {
		t.Fatalf("missing key: %v", err)
	}
	_ = d.Insert(ctx, "t", "gone", map[string][]byte{"f": nil})
	if err := d.Delete(ctx, "t", "gone"); err != nil {
		t.Fatal(err)
	}
	if reqs := node.log(); reqs[len(reqs)-1].method != "DELETE" || reqs[len(reqs)-1].xctx != "v1" {
		t.Fatalf("delete %+v", reqs[len(reqs)-1])
	}
	if _, err := d.Read(ctx, "t", "gone", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted key: %v", err)
	}

	tests := []struct {
		method string
		status int
		code   string
		kind   ErrorKind
	}{
		{"GET", 503, "quorum_failed", KindQuorum},
		{"GET", 504, "timeout", KindTimeout},
		{"GET", 409, "too_many_siblings", KindClient},
		{"PUT", 400, "bad_request", KindClient},
		{"PUT", 500, "internal", KindOther},
	}
	for _, tt := range tests {
		node.fail(tt.method, "t", "e", tt.status, tt.code)
		var err error
		if tt.method == "GET" {
			_, err = d.Read(ctx, "t", "e", nil)
		} else {
			err = d.Insert(ctx, "t", "e", map[string][]byte{})
		}
		var he *HTTPError
		if !errors.As(err, &he) || he.Status != tt.status || he.Code != tt.code || ClassifyError(err) != tt.kind {
			t.Errorf("%s %d: error %v, kind %s", tt.method, tt.status, err, ClassifyError(err))
		}
	}
	// A value that is not a record.
	node.addSibling("t", "junk", []byte("hello"), false)
	if _, err := d.Read(ctx, "t", "junk", nil); !errors.Is(err, ErrBadRecord) {
		t.Fatalf("junk value: %v", err)
	}
}

func TestQuorumKVClientTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	cfg := DefaultConfig()
	cfg.Endpoints = []string{srv.URL}
	cfg.RequestTimeout = 50 * time.Millisecond
	d, err := NewQuorumKV(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = d.Read(context.Background(), "t", "k", nil)
	if ClassifyError(err) != KindTimeout {
		t.Fatalf("error %v classified %s, want timeout", err, ClassifyError(err))
	}
}

func TestQuorumKVScan(t *testing.T) {
	node := newFakeNode(t)
	d := newTestDriver(t, func(c *Config) { c.ScanParallelism = 3 }, node)
	ctx := context.Background()
	for i := range 20 {
		if i == 13 {
			continue // a hole
		}
		key := fmt.Sprintf("user%03d", i)
		_ = d.Insert(ctx, "t", key, map[string][]byte{"k": []byte(key)})
	}
	recs, err := d.Scan(ctx, "t", "user010", 8, []string{"k"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range recs {
		got = append(got, string(r["k"]))
	}
	want := []string{"user010", "user011", "user012", "user014", "user015", "user016", "user017"}
	if !slices.Equal(got, want) {
		t.Fatalf("scan %v, want %v", got, want)
	}
	if m := d.Metrics(); m.ScanReads != 8 || m.ScanMisses != 1 {
		t.Fatalf("metrics %+v", m)
	}
	if _, err := d.Scan(ctx, "t", "nodigits", 3, nil); !errors.Is(err, ErrScanUnsupported) {
		t.Fatalf("scan from a key without a number: %v", err)
	}
	node.fail("GET", "t", "user001", 503, "quorum_failed")
	if _, err := d.Scan(ctx, "t", "user000", 5, nil); ClassifyError(err) != KindQuorum {
		t.Fatalf("scan over a failing read: %v", err)
	}
}

func TestSplitRecordKey(t *testing.T) {
	tests := []struct {
		key    string
		prefix string
		n      int64
		width  int
		ok     bool
	}{
		{"user42", "user", 42, 2, true},
		{"user0042", "user", 42, 4, true},
		{"7", "", 7, 1, true},
		{"user", "", 0, 0, false},
		{"user99999999999999999999", "", 0, 0, false},
	}
	for _, tt := range tests {
		p, n, w, ok := splitRecordKey(tt.key)
		if p != tt.prefix || n != tt.n || w != tt.width || ok != tt.ok {
			t.Errorf("splitRecordKey(%q) = %q %d %d %v", tt.key, p, n, w, ok)
		}
	}
}

// Threads stick to their endpoint and reuse pooled connections.
func TestQuorumKVConnectionPool(t *testing.T) {
	a, b := newFakeNode(t), newFakeNode(t)
	const threads = 4
	d := newTestDriver(t, func(c *Config) { c.Threads = threads }, a, b)
	var wg sync.WaitGroup
	for id := range threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := d.InitThread(context.Background(), id, threads)
			for i := range 50 {
				key := fmt.Sprintf("t%d-%d", id, i)
				if err := d.Insert(ctx, "t", key, map[string][]byte{"f": []byte("v")}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if na, nb := len(a.log()), len(b.log()); na != 100 || nb != 100 {
		t.Fatalf("requests per node %d and %d, want 100 each", na, nb)
	}
	// Two threads per node. net/http hands a finished connection back to
	// the idle pool from its read loop, so a thread's next request can
	// occasionally race it and dial once more; keep-alive shows as a
	// handful of connections for 100 requests per node, not one each.
	if ca, cb := a.newConns.Load(), b.newConns.Load(); ca > 4 || cb > 4 {
		t.Fatalf("new connections %d and %d for 200 requests: keep-alive is not working", ca, cb)
	}
}

func TestNewQuorumKVRejects(t *testing.T) {
	for _, mod := range []func(*Config){
		func(c *Config) { c.Endpoints = nil },
		func(c *Config) { c.Endpoints = []string{"http://"} },
		func(c *Config) { c.R = "most" },
		func(c *Config) { c.N = "0" },
	} {
		cfg := DefaultConfig()
		cfg.Endpoints = []string{"127.0.0.1:1"}
		mod(&cfg)
		if _, err := NewQuorumKV(cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("NewQuorumKV(%+v) = %v", cfg, err)
		}
	}
}

// The driver sends Config.Token to an https:// node verified by
// Config.CAFile; a refused token is a 401 HTTPError that says so and does
// not show the token.
func TestQuorumKVTokenAndCA(t *testing.T) {
	const secret = "bench-secret-0123456789"
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+secret {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"this node does not know the bearer token","code":"unauthorized"}`))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	open := func(token string) *QuorumKV {
		cfg := DefaultConfig()
		cfg.Endpoints, cfg.Token, cfg.CAFile = []string{srv.URL}, token, ca
		d, err := NewQuorumKV(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	rec := map[string][]byte{"f": []byte("v")}
	if err := open(secret).Insert(context.Background(), "t", "k", rec); err != nil {
		t.Fatalf("with the token: %v", err)
	}
	err := open("wrong-secret-0123456789").Insert(context.Background(), "t", "k", rec)
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized || !strings.Contains(err.Error(), "refused the token") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("with a wrong token: %v", err)
	}
	cfg := DefaultConfig()
	cfg.Endpoints, cfg.Token = []string{srv.URL}, secret
	d, err := NewQuorumKV(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.Insert(context.Background(), "t", "k", rec); err == nil || strings.Contains(err.Error(), secret) {
		t.Fatalf("without the CA the test server's certificate was trusted, or the error shows the token: %v", err)
	}
	cfg.Token = "bad token"
	if _, err := NewQuorumKV(cfg); !errors.Is(err, ErrInvalidConfig) {
		t.Fatalf("a token with a space: %v", err)
	}
}
