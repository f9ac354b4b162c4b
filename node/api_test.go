package node_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/quorumkv/quorumkv/internal/simcluster"
	"github.com/quorumkv/quorumkv/internal/testcluster"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/store"
)

func envelopeOf(t *testing.T, b []byte) node.Envelope {
	t.Helper()
	var e node.Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("body is not a JSON envelope: %v\n%s", err, b)
	}
	return e
}

func errorCode(t *testing.T, b []byte) string {
	t.Helper()
	var e struct{ Error, Code string }
	if err := json.Unmarshal(b, &e); err != nil || e.Code == "" || e.Error == "" {
		t.Fatalf("body is not a JSON error: %v\n%s", err, b)
	}
	return e.Code
}

func TestAPISingleNode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := simcluster.Start(t, simcluster.Options{Nodes: 1, Configure: func(_ int, cfg *node.Config) {
			cfg.Limits.MaxSiblings = 3
			cfg.Limits.MaxValueSize = 1024
			cfg.Limits.MaxKeyLen = 16
		}})
		do := func(method, path string, body []byte, hdr map[string]string) simcluster.Response {
			t.Helper()
			return simDo(t, c, 0, method, path, body, hdr)
		}
		const path = "/v1/kv/b/k"

		// PUT then GET: value, content type and context.
		r := do("PUT", path, []byte("hello"), map[string]string{"Content-Type": "text/plain"})
		if r.Status != http.StatusNoContent || r.Header.Get("X-Context") == "" {
			t.Fatalf("PUT: %d ctx=%q %s", r.Status, r.Header.Get("X-Context"), r.Body)
		}
		r = do("GET", path, nil, nil)
		if r.Status != 200 || string(r.Body) != "hello" || r.Header.Get("Content-Type") != "text/plain" || r.Header.Get("X-Context") == "" {
			t.Fatalf("GET: %d %q %v", r.Status, r.Body, r.Header)
		}
		if r.Header.Get("X-Quorum-Replicas") != "n1" {
			t.Fatalf("receipt replicas = %q", r.Header.Get("X-Quorum-Replicas"))
		}
		readCtx := r.Header.Get("X-Context")

		// HEAD answers like GET. That it has no body is the HTTP server's
		// doing, so TestAPIHeadOverHTTP checks it on a real connection.
		if h := do("HEAD", path, nil, nil); h.Status != 200 {
			t.Fatalf("HEAD: %d %q", h.Status, h.Body)
		}

		// A blind write becomes a sibling: 300 with the envelope.
		do("PUT", path, []byte("blind"), map[string]string{"Content-Type": "text/plain"})
		r = do("GET", path, nil, nil)
		if r.Status != http.StatusMultipleChoices {
			t.Fatalf("after a blind write: %d, want 300", r.Status)
		}
		e := envelopeOf(t, r.Body)
		if len(e.Siblings) != 2 || e.Context != r.Header.Get("X-Context") {
			t.Fatalf("envelope %+v", e)
		}
		vals := []string{string(e.Siblings[0].Value), string(e.Siblings[1].Value)}
		if !(vals[0] == "hello" && vals[1] == "blind" || vals[0] == "blind" && vals[1] == "hello") {
			t.Fatalf("siblings %v", vals)
		}

		// A write with the first read's context replaces only "hello".
		r = do("PUT", path, []byte("edit"), map[string]string{"X-Context": readCtx})
		if r.Status != 204 {
			t.Fatalf("PUT with context: %d %s", r.Status, r.Body)
		}
		e = envelopeOf(t, do("GET", path, nil, map[string]string{"Accept": "application/json"}).Body)
		if len(e.Siblings) != 2 {
			t.Fatalf("context write should replace exactly one sibling: %+v", e)
		}
		// Resolving with the merged context leaves one value.
		r = do("PUT", path, []byte("final"), map[string]string{"X-Context": e.Context})
		if r.Status != 204 {
			t.Fatal(r.Status)
		}
		if r = do("GET", path, nil, nil); r.Status != 200 || string(r.Body) != "final" {
			t.Fatalf("after resolving: %d %q", r.Status, r.Body)
		}

		// DELETE: 404 with a context, and a JSON envelope with a tombstone.
		if r = do("DELETE", path, nil, map[string]string{"X-Context": r.Header.Get("X-Context")}); r.Status != 204 {
			t.Fatalf("DELETE: %d %s", r.Status, r.Body)
		}
		r = do("GET", path, nil, nil)
		if r.Status != 404 || r.Header.Get("X-Context") == "" || errorCode(t, r.Body) != "not_found" {
			t.Fatalf("GET deleted: %d ctx=%q %s", r.Status, r.Header.Get("X-Context"), r.Body)
		}
		r = do("GET", path, nil, map[string]string{"Accept": "application/json"})
		if e = envelopeOf(t, r.Body); r.Status != 404 || len(e.Siblings) != 1 || !e.Siblings[0].Deleted {
			t.Fatalf("GET deleted as JSON: %d %+v", r.Status, e)
		}
		// A key never written: 404 without a context.
		r = do("GET", "/v1/kv/b/never", nil, nil)
		if r.Status != 404 || r.Header.Get("X-Context") != "" {
			t.Fatalf("absent key: %d ctx=%q", r.Status, r.Header.Get("X-Context"))
		}

		// The sibling cap: the fourth blind write gets 409.
		for i := 0; i < 3; i++ {
			if r = do("PUT", "/v1/kv/b/cap", []byte{byte('a' + i)}, nil); r.Status != 204 {
				t.Fatalf("blind write %d: %d %s", i, r.Status, r.Body)
			}
		}
		if r = do("PUT", "/v1/kv/b/cap", []byte("x"), nil); r.Status != http.StatusConflict || errorCode(t, r.Body) != "too_many_siblings" {
			t.Fatalf("past the sibling cap: %d %s", r.Status, r.Body)
		}
	})
}

// TestAPIHeadOverHTTP checks that HEAD answers like GET, without a body,
// on a real connection. The handler writes the value for a HEAD too, and
// the net/http server drops it: in-process requests (TestAPISingleNode)
// see the body, so this part stays on internal/testcluster.
func TestAPIHeadOverHTTP(t *testing.T) {
	c := testcluster.StartWith(t, testcluster.Options{Nodes: 1})
	const path = "/v1/kv/b/k"
	if r := c.Do(0, "PUT", path, []byte("hello"), map[string]string{"Content-Type": "text/plain"}); r.Status != http.StatusNoContent {
		t.Fatalf("PUT: %d %s", r.Status, r.Body)
	}
	get := c.Do(0, "GET", path, nil, nil)
	h := c.Do(0, "HEAD", path, nil, nil)
	if h.Status != 200 || len(h.Body) != 0 {
		t.Fatalf("HEAD: %d %q", h.Status, h.Body)
	}
	for _, k := range []string{"Content-Type", "Content-Length", "X-Context"} {
		if h.Header.Get(k) != get.Header.Get(k) {
			t.Fatalf("HEAD's %s is %q, GET's %q", k, h.Header.Get(k), get.Header.Get(k))
		}
	}
}

func TestAPIErrors(t *testing.T) {
	// Each case runs in a bubble of its own, on a node of its own: a
	// bubble's test may not start subtests.
	start := func(t *testing.T) *simcluster.Cluster {
		return simcluster.Start(t, simcluster.Options{Nodes: 1, Configure: func(_ int, cfg *node.Config) {
			cfg.Limits.MaxValueSize = 1024
			cfg.Limits.MaxKeyLen = 16
		}})
	}
	tests := []struct {
		name, method, path string
		body               []byte
		hdr                map[string]string
		status             int
		code               string
		mention            string
	}{
		{"unknown parameter", "GET", "/v1/kv/b/k?q=1", nil, nil, 400, "bad_parameter", "allowed parameters: r, n, timeout, sloppy"},
		{"w on a read", "GET", "/v1/kv/b/k?w=1", nil, nil, 400, "bad_parameter", "allowed parameters"},
		// Pairs a lenient parser would drop, running the request with
		// weaker options than it asked for.
		{"semicolon separator", "PUT", "/v1/kv/b/k?w=all;sloppy=false", []byte("v"), nil, 400, "bad_parameter", "query"},
		{"bad escape in a value", "PUT", "/v1/kv/b/k?w=al%zz", []byte("v"), nil, 400, "bad_parameter", "query"},
		{"bad escape in a name", "GET", "/v1/kv/b/k?r=1&bogus%zz=1", nil, nil, 400, "bad_parameter", "query"},
		{"r=0", "GET", "/v1/kv/b/k?r=0", nil, nil, 400, "bad_parameter", "r="},
		{"r word", "GET", "/v1/kv/b/k?r=most", nil, nil, 400, "bad_parameter", "one, quorum or all"},
		{"r above n", "GET", "/v1/kv/b/k?r=2", nil, nil, 400, "bad_parameter", "r=2"},
		{"n above cluster", "PUT", "/v1/kv/b/k?n=2", []byte("v"), nil, 400, "bad_parameter", "n=2"},
		{"bad timeout", "GET", "/v1/kv/b/k?timeout=soon", nil, nil, 400, "bad_parameter", "Go duration"},
		{"repeated parameter", "GET", "/v1/kv/b/k?r=1&r=1", nil, nil, 400, "bad_parameter", "2 times"},
		{"bad sloppy", "PUT", "/v1/kv/b/k?sloppy=maybe", []byte("v"), nil, 400, "bad_parameter", "true or false"},
		{"key too long", "PUT", "/v1/kv/b/" + strings.Repeat("k", 17), []byte("v"), nil, 400, "bad_key", "1 to 16 bytes"},
		{"bad context", "PUT", "/v1/kv/b/k", []byte("v"), map[string]string{"X-Context": "%%%"}, 400, "bad_context", "X-Context"},
		{"value too large", "PUT", "/v1/kv/b/k", make([]byte, 1025), nil, 413, "value_too_large", "1024"},
		{"method", "POST", "/v1/kv/b/k", nil, nil, 405, "method_not_allowed", "GET, HEAD, PUT, DELETE"},
		{"no such endpoint", "GET", "/v2/x", nil, nil, 404, "not_found", "/v1/kv"},
		{"bad bucket props", "PUT", "/v1/buckets/b", []byte(`{"n":2,"r":3}`), nil, 400, "bad_parameter", "r"},
		{"unknown bucket field", "PUT", "/v1/buckets/b", []byte(`{"n":2,"q":3}`), nil, 400, "bad_body", "unknown field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := simDo(t, start(t), 0, tt.method, tt.path, tt.body, tt.hdr)
				if r.Status != tt.status {
					t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
				}
				if got := errorCode(t, r.Body); got != tt.code {
					t.Fatalf("code %q, want %q: %s", got, tt.code, r.Body)
				}
				if !strings.Contains(string(r.Body), tt.mention) {
					t.Fatalf("error does not mention %q: %s", tt.mention, r.Body)
				}
				if tt.status == 405 && r.Header.Get("Allow") == "" {
					t.Fatal("405 without Allow")
				}
			})
		})
	}
	synctest.Test(t, func(t *testing.T) {
		c := start(t)
		// Bucket properties round trip.
		r := simDo(t, c, 0, "PUT", "/v1/buckets/lww", []byte(`{"n":1,"r":1,"w":1,"conflict":"lww"}`), nil)
		if r.Status != 200 {
			t.Fatalf("PUT bucket: %d %s", r.Status, r.Body)
		}
		r = simDo(t, c, 0, "GET", "/v1/buckets/lww", nil, nil)
		if !strings.Contains(string(r.Body), `"conflict": "lww"`) {
			t.Fatalf("GET bucket: %s", r.Body)
		}
		// In an lww bucket a blind write replaces instead of adding a sibling.
		simDo(t, c, 0, "PUT", "/v1/kv/lww/k", []byte("one"), nil)
		simDo(t, c, 0, "PUT", "/v1/kv/lww/k", []byte("two"), nil)
		if r = simDo(t, c, 0, "GET", "/v1/kv/lww/k", nil, nil); r.Status != 200 || string(r.Body) != "two" {
			t.Fatalf("lww bucket: %d %q", r.Status, r.Body)
		}
	})
}

// FuzzAPIRequest stays on internal/testcluster, outside any synctest
// bubble. A bubble lasts one synctest.Test call on a *testing.T, and the
// fuzzing engine calls the fuzz function once per input, so one simulated
// node could not serve every input: its channels and timers belong to the
// bubble that made them, and touching them from outside it is a fatal
// error. A node per input would pay for opening Pebble and memberlist on
// every input and would forget what earlier inputs left behind (siblings
// up to the cap, bucket properties), through which later inputs reach
// more of the handler. The target calls the handler in process and never
// waits, so the wall clock plays no part once the node is up.
func FuzzAPIRequest(f *testing.F) {
	c := testcluster.StartWith(f, testcluster.Options{Nodes: 1})
	h := c.Node(0).Handler()
	f.Add("PUT", "/v1/kv/b/k?w=1&timeout=1s", "", "v")
	f.Add("GET", "/v1/kv/b/k?r=all", "AQ", "")
	f.Add("PUT", "/v1/kv/b/k", "Ag7KPPMhobxZgaF2gaJuMQE", "v") // demo/color's context
	f.Add("DELETE", "/v1/kv/b/%2F?n=one&sloppy=false", "", "")
	f.Add("PUT", "/v1/buckets/b", "", `{"n":1}`)
	f.Fuzz(func(t *testing.T, method, target, ctx, body string) {
		switch method {
		case "GET", "PUT", "DELETE", "HEAD", "POST":
		default:
			return
		}
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " \r\n\t#") {
			return
		}
		req, err := http.NewRequest(method, "http://fuzz"+target, strings.NewReader(body))
		if err != nil {
			return
		}
		if ctx != "" && !strings.ContainsAny(ctx, "\r\n") {
			req.Header.Set("X-Context", ctx)
		}
		w := &recorder{header: http.Header{}}
		h.ServeHTTP(w, req)
		if w.status >= 500 && w.status != 503 && w.status != 504 {
			t.Fatalf("%s %s: status %d: %s", method, target, w.status, w.body.String())
		}
		if w.status >= 400 {
			var e struct{ Code string }
			if err := json.Unmarshal([]byte(w.body.String()), &e); err != nil || e.Code == "" {
				t.Fatalf("%s %s: %d without a JSON error: %q", method, target, w.status, w.body.String())
			}
		}
	})
}

type recorder struct {
	header http.Header
	status int
	body   strings.Builder
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = 200
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(s int) {
	if r.status == 0 {
		r.status = s
	}
}

// The byte cap per key: blind writes of large values pile up as siblings
// until their bytes together would pass the cap; the next gets 409
// key_too_large through any coordinator, no replica keeps more than the
// cap, and a write with the context of a read resolves them.
func TestAPIKeyByteCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := simcluster.Start(t, simcluster.Options{Nodes: 3, Configure: func(_ int, cfg *node.Config) {
			cfg.Limits.MaxValueSize = 1000
			cfg.Limits.MaxKeyBytes = 2500
		}})
		const path = "/v1/kv/b/big"
		val := func(b byte) []byte { return bytes.Repeat([]byte{b}, 1000) }
		for i := range 2 {
			if r := simDo(t, c, i, "PUT", path+"?w=all", val(byte('a'+i)), nil); r.Status != 204 {
				t.Fatalf("blind write %d: %d %s", i, r.Status, r.Body)
			}
		}
		for i := range 3 {
			r := simDo(t, c, i, "PUT", path+"?w=all", val('z'), nil)
			if r.Status != http.StatusConflict || errorCode(t, r.Body) != "key_too_large" {
				t.Fatalf("past the byte cap via n%d: %d %s", i+1, r.Status, r.Body)
			}
		}
		ek := store.EncodeKey([]byte("b"), []byte("big"))
		for i := range 3 {
			set, err := c.Node(i).Store().Get(ek)
			if err != nil {
				t.Fatal(err)
			}
			size := 0
			for _, s := range set.Siblings {
				size += len(s.Value)
			}
			if len(set.Siblings) != 2 || size > 2500 {
				t.Fatalf("n%d keeps %d siblings of %d bytes", i+1, len(set.Siblings), size)
			}
		}
		r := simDo(t, c, 1, "GET", path+"?r=all", nil, nil)
		if r.Status != http.StatusMultipleChoices {
			t.Fatalf("GET: %d", r.Status)
		}
		if r = simDo(t, c, 2, "PUT", path+"?w=all", val('r'), map[string]string{"X-Context": r.Header.Get("X-Context")}); r.Status != 204 {
			t.Fatalf("resolving write: %d %s", r.Status, r.Body)
		}
		if r = simDo(t, c, 0, "GET", path+"?r=all", nil, nil); r.Status != 200 || !bytes.Equal(r.Body, val('r')) {
			t.Fatalf("after resolving: %d", r.Status)
		}
	})
}
