package node

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

// Every pattern the API registers has a role decided on purpose: listed in
// routeRoles or under an admin-only prefix. A new route that is neither
// fails here (and needs admin meanwhile). routeRoles lists nothing that
// is not registered.
func TestEveryRouteHasARole(t *testing.T) {
	mux := (&Node{cfg: Config{Pprof: true}}).routes()
	if len(mux.patterns) < len(routeRoles) {
		t.Fatalf("%d patterns registered, fewer than the %d roles listed", len(mux.patterns), len(routeRoles))
	}
	registered := map[string]bool{}
	for _, p := range mux.patterns {
		registered[p] = true
		if _, listed := routeRoles[p]; !listed && !adminOnly(p) {
			t.Errorf("pattern %q has no role: add it to routeRoles", p)
		}
	}
	for p := range routeRoles {
		if !registered[p] {
			t.Errorf("routeRoles lists %q, which is not registered", p)
		}
	}
}

func TestRoleFor(t *testing.T) {
	for pattern, want := range map[string]Role{
		"GET /v1/kv/{bucket}/{key...}":    RoleRead,
		"PUT /v1/kv/{bucket}/{key...}":    RoleWrite,
		"DELETE /v1/kv/{bucket}/{key...}": RoleWrite,
		"GET /v1/buckets/{bucket}":        RoleRead,
		"PUT /v1/buckets/{bucket}":        RoleAdmin,
		"GET /v1/cluster/plan":            RoleRead,
		"POST /v1/cluster/commit":         RoleAdmin,
		"POST /v1/cluster/remove":         RoleAdmin,
		"POST /v1/antientropy/run":        RoleAdmin,
		"GET /metrics":                    RoleRead,
		"GET /debug/pprof/":               RoleAdmin,
		"/debug/pprof/":                   RoleAdmin,
		// Another part of the API adds gossip key rotation: its every
		// pattern is admin by prefix.
		"POST /v1/cluster/gossip-keys":        RoleAdmin,
		"GET /v1/cluster/gossip-keys":         RoleAdmin,
		"/v1/cluster/gossip-keys/{key}":       RoleAdmin,
		"DELETE /v1/cluster/gossip-keys/{k}":  RoleAdmin,
		"GET /v1/something-new":               RoleAdmin, // default deny
		"":                                    RoleAdmin, // the mux found nothing
		"GET example.com/v1/kv/{b}/{k...}":    RoleAdmin, // not a registered pattern
		"GET /v1/kv/{bucket}/{key...}/extras": RoleAdmin,
	} {
		if got := roleFor(pattern); got != want {
			t.Errorf("roleFor(%q) = %v, want %v", pattern, got, want)
		}
	}
}

// The guard's mux lookup sees the pattern the request will be served by:
// the role follows the method as well as the path.
func TestGuardMatchesTheServedPattern(t *testing.T) {
	mux := (&Node{cfg: Config{Pprof: true}}).routes()
	for _, tc := range []struct {
		method, target string
		want           Role
	}{
		{"GET", "/v1/kv/b/k/with/slashes", RoleRead},
		{"HEAD", "/v1/kv/b/k", RoleRead},
		{"PUT", "/v1/kv/b/k", RoleWrite},
		{"POST", "/v1/kv/b/k", RoleRead}, // 405
		{"PUT", "/v1/buckets/b", RoleAdmin},
		{"GET", "/v1/buckets/b", RoleRead},
		{"POST", "/v1/cluster/leave", RoleAdmin},
		{"GET", "/v1/cluster/leave", RoleRead}, // 405
		{"GET", "/debug/pprof/heap", RoleAdmin},
		{"GET", "/debug/pprof", RoleAdmin}, // redirect to /debug/pprof/
		{"GET", "/nothing/here", RoleRead}, // 404
	} {
		_, pattern := mux.Handler(httptest.NewRequest(tc.method, tc.target, nil))
		if got := roleFor(pattern); got != tc.want {
			t.Errorf("%s %s: pattern %q needs %v, want %v", tc.method, tc.target, pattern, got, tc.want)
		}
	}
}

// BenchmarkGuard measures what the token check adds to a request: the
// hash and comparisons of Lookup; the role comes with the route.
func BenchmarkGuard(b *testing.B) {
	var file strings.Builder
	for i := range 10 {
		fmt.Fprintf(&file, "read token-%02d-0123456789abcdef\n", i)
	}
	ts, err := ParseTokens(strings.NewReader(file.String()))
	if err != nil {
		b.Fatal(err)
	}
	open := &authGuard{log: zerolog.Nop()}
	guarded := &authGuard{log: zerolog.Nop()}
	guarded.tokens.Store(ts)
	mux := func(g *authGuard) http.Handler {
		m := &routes{ServeMux: http.NewServeMux(), guard: g}
		m.HandleFunc("GET /v1/kv/{bucket}/{key...}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) })
		return g.authenticate(m)
	}
	for _, bc := range []struct {
		name string
		h    http.Handler
	}{{"open", mux(open)}, {"10 tokens", mux(guarded)}} {
		b.Run(bc.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", "/v1/kv/b/k", nil)
			req.Header.Set("Authorization", "Bearer token-09-0123456789abcdef")
			w := httptest.NewRecorder()
			b.ReportAllocs()
			for b.Loop() {
				bc.h.ServeHTTP(w, req)
			}
			if w.Code != http.StatusOK {
				b.Fatalf("status %d", w.Code)
			}
		})
	}
}
