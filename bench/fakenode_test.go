package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// fakeNode implements the small part of a quorumkv node's HTTP contract the
// driver's encoding tests need: versions with a context string, siblings
// for writes that do not carry the current context, tombstones, the JSON
// envelope, and injected errors. It stands in for no real behaviour beyond
// that: the integration test runs against real nodes.
type fakeNode struct {
	srv      *httptest.Server
	newConns atomic.Int64

	mu       sync.Mutex // guards the fields below
	keys     map[string]*fakeKey
	requests []fakeRequest
	failNext map[string][]fakeFail // by "METHOD bucket/key"
}

type fakeKey struct {
	version int
	sibs    []fakeSib
}

type fakeSib struct {
	value   []byte
	ctype   string
	deleted bool
}

type fakeFail struct {
	status int
	code   string
}

type fakeRequest struct {
	method, path, bucket, key string
	query                     url.Values
	xctx, accept, ctype       string
}

func newFakeNode(t *testing.T) *fakeNode {
	f := &fakeNode{keys: map[string]*fakeKey{}, failNext: map[string][]fakeFail{}}
	f.srv = httptest.NewUnstartedServer(http.HandlerFunc(f.serve))
	f.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			f.newConns.Add(1)
		}
	}
	f.srv.Start()
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeNode) addr() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeNode) fail(method, bucket, key string, status int, code string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := method + " " + bucket + "/" + key
	f.failNext[k] = append(f.failNext[k], fakeFail{status, code})
}

// addSibling stores value as a concurrent version of key.
func (f *fakeNode) addSibling(bucket, key string, value []byte, deleted bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := f.key(bucket + "/" + key)
	k.version++
	k.sibs = append(k.sibs, fakeSib{value: value, ctype: RecordContentType, deleted: deleted})
}

func (f *fakeNode) key(name string) *fakeKey {
	k := f.keys[name]
	if k == nil {
		k = &fakeKey{}
		f.keys[name] = k
	}
	return k
}

func (f *fakeNode) log() []fakeRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]fakeRequest(nil), f.requests...)
}

func (f *fakeNode) serve(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.EscapedPath(), "/v1/kv/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 2 {
		writeFakeError(w, 400, "bad_path")
		return
	}
	bucket, _ := url.PathUnescape(parts[0])
	key, _ := url.PathUnescape(parts[1])
	body, _ := io.ReadAll(r.Body)

	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, fakeRequest{
		method: r.Method, path: r.URL.EscapedPath(), bucket: bucket, key: key, query: r.URL.Query(),
		xctx: r.Header.Get("X-Context"), accept: r.Header.Get("Accept"), ctype: r.Header.Get("Content-Type"),
	})
	// Like a node, reject parameters that do not apply to the method.
	allowed := map[string]bool{"w": true, "n": true, "timeout": true}
	if r.Method == http.MethodGet {
		allowed = map[string]bool{"r": true, "n": true, "timeout": true}
	}
	for p := range r.URL.Query() {
		if !allowed[p] {
			writeFakeError(w, 400, "bad_parameter")
			return
		}
	}
	fk := r.Method + " " + bucket + "/" + key
	if fails := f.failNext[fk]; len(fails) > 0 {
		f.failNext[fk] = fails[1:]
		writeFakeError(w, fails[0].status, fails[0].code)
		return
	}
	name := bucket + "/" + key
	switch r.Method {
	case http.MethodPut, http.MethodDelete:
		k := f.key(name)
		sib := fakeSib{value: body, ctype: r.Header.Get("Content-Type"), deleted: r.Method == http.MethodDelete}
		if len(k.sibs) > 0 && r.Header.Get("X-Context") == fmt.Sprint("v", k.version) {
			k.sibs = []fakeSib{sib} // supersedes everything it saw
		} else {
			k.sibs = append(k.sibs, sib) // concurrent: a new sibling
		}
		k.version++
		w.Header().Set("X-Context", fmt.Sprint("v", k.version))
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		k := f.keys[name]
		if k == nil {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		xctx := fmt.Sprint("v", k.version)
		w.Header().Set("X-Context", xctx)
		live := 0
		for _, s := range k.sibs {
			if !s.deleted {
				live++
			}
		}
		status := http.StatusOK
		switch {
		case live == 0:
			status = http.StatusNotFound
		case len(k.sibs) > 1:
			status = http.StatusMultipleChoices
		}
		if status == http.StatusOK && r.Header.Get("Accept") != "application/json" {
			w.Header().Set("Content-Type", k.sibs[0].ctype)
			w.WriteHeader(status)
			_, _ = w.Write(k.sibs[0].value)
			return
		}
		if status == http.StatusNotFound && r.Header.Get("Accept") != "application/json" {
			w.WriteHeader(status)
			return
		}
		env := envelope{Context: xctx}
		for _, s := range k.sibs {
			env.Siblings = append(env.Siblings, sibling{Value: s.value, ContentType: s.ctype, Deleted: s.deleted})
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(env)
	default:
		writeFakeError(w, 405, "method_not_allowed")
	}
}

func writeFakeError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": "injected " + code, "code": code})
}
