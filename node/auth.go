package node

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/rs/zerolog"
)

// Bearer token authentication of the HTTP API (Config.TokenFile). Every
// request names a token in "Authorization: Bearer <token>"; the route it
// matches needs a role (routeRoles). No token, or one the node does not
// know: 401. A known token whose role is too small: 403. Tokens are never
// logged: logs name a token by its Name.

// Error codes of refused requests.
const (
	// CodeUnauthorized: no bearer token, or one this node does not know (401).
	CodeUnauthorized = "unauthorized"
	// CodeForbidden: the token's role may not call this endpoint (403).
	CodeForbidden = "forbidden"
)

// ErrNoTokenFile is returned by ReloadTokens on a node started without
// a token file.
var ErrNoTokenFile = errors.New("node: no token file configured")

// routeRoles is the least role each pattern Handler registers needs. A
// pattern that is not here, or whose path starts with one of
// adminPrefixes, needs RoleAdmin; TestEveryRouteHasARole fails for a
// registered pattern that is in neither, so a new route is a decision,
// not an accident. Patterns without a method only answer 405 (or 404 for
// "/"), so any token may reach them.
var routeRoles = map[string]Role{
	"GET /v1/kv/{bucket}/{key...}":    RoleRead,
	"PUT /v1/kv/{bucket}/{key...}":    RoleWrite,
	"DELETE /v1/kv/{bucket}/{key...}": RoleWrite,
	"/v1/kv/{bucket}/{key...}":        RoleRead,
	"GET /v1/buckets/{bucket}":        RoleRead,
	"PUT /v1/buckets/{bucket}":        RoleAdmin, // n, r and w are cluster-wide
	"/v1/buckets/{bucket}":            RoleRead,
	"GET /v1/cluster":                 RoleRead,
	"/v1/cluster":                     RoleRead,
	"GET /v1/cluster/plan":            RoleRead,
	"/v1/cluster/plan":                RoleRead,
	"GET /v1/cluster/transfers":       RoleRead,
	"/v1/cluster/transfers":           RoleRead,
	"POST /v1/cluster/commit":         RoleAdmin,
	"/v1/cluster/commit":              RoleRead,
	"POST /v1/cluster/clear":          RoleAdmin,
	"/v1/cluster/clear":               RoleRead,
	"POST /v1/cluster/leave":          RoleAdmin,
	"/v1/cluster/leave":               RoleRead,
	"POST /v1/cluster/remove":         RoleAdmin,
	"/v1/cluster/remove":              RoleRead,
	"POST /v1/cluster/replace":        RoleAdmin,
	"/v1/cluster/replace":             RoleRead,
	"POST /v1/antientropy/run":        RoleAdmin,
	"/v1/antientropy/run":             RoleRead,
	"GET /metrics":                    RoleRead,
	// Readiness is open, for load balancers and probes that carry no
	// token: it tells only whether the node serves, and why not.
	"GET /v1/ready": RoleNone,
	"/v1/ready":     RoleNone,
	"GET /healthz":  RoleNone,
	"/healthz":      RoleNone,
	"GET /readyz":   RoleNone,
	"/readyz":       RoleNone,
	"/":             RoleRead, // 404 with a hint
}

// openPaths are the paths of the routes that need no token (RoleNone in
// routeRoles), whatever the method.
var openPaths = func() map[string]bool {
	out := map[string]bool{}
	for pattern, role := range routeRoles {
		if role == RoleNone {
			_, path, _ := strings.Cut(pattern, " ")
			if path == "" {
				path = pattern
			}
			out[path] = true
		}
	}
	return out
}()

// adminPrefixes are paths whose every pattern needs RoleAdmin, whatever
// its method: gossip key rotation and the profiler.
var adminPrefixes = []string{"/v1/cluster/gossip-keys", "/debug/"}

// adminOnly reports whether a mux pattern's path starts with one of
// adminPrefixes (or the pattern has no path).
func adminOnly(pattern string) bool {
	i := strings.IndexByte(pattern, '/')
	if i < 0 {
		return true
	}
	for _, p := range adminPrefixes {
		if strings.HasPrefix(pattern[i:], p) {
			return true
		}
	}
	return false
}

// roleFor returns the least role that may call a mux pattern ("" or an
// unknown pattern: RoleAdmin).
func roleFor(pattern string) Role {
	if adminOnly(pattern) {
		return RoleAdmin
	}
	if r, ok := routeRoles[pattern]; ok {
		return r
	}
	return RoleAdmin
}

// routes is the API's mux: it puts every handler behind guard with the
// role its pattern needs (roleFor), and remembers the patterns, for
// TestEveryRouteHasARole.
type routes struct {
	*http.ServeMux
	guard    *authGuard
	patterns []string
}

func (m *routes) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, m.guard.check(roleFor(pattern), h))
}

func (m *routes) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(h))
}

// AuthMetrics counts refused requests by reason.
type AuthMetrics struct {
	// Missing: no bearer token. Unknown: a token the node does not know.
	// Forbidden: a known token with too small a role.
	Missing, Unknown, Forbidden uint64
}

// authGuard checks bearer tokens. It is safe for concurrent use.
type authGuard struct {
	path string
	log  zerolog.Logger
	// tokens is nil when the API is open (no token file).
	tokens                      atomic.Pointer[Tokens]
	missing, unknown, forbidden atomic.Uint64
}

// newAuthGuard loads the token file at path ("" leaves the API open).
func newAuthGuard(path string, log zerolog.Logger) (*authGuard, error) {
	g := &authGuard{path: path, log: log}
	if path == "" {
		return g, nil
	}
	if err := g.reload(); err != nil {
		return nil, err
	}
	return g, nil
}

func (g *authGuard) metrics() AuthMetrics {
	return AuthMetrics{Missing: g.missing.Load(), Unknown: g.unknown.Load(), Forbidden: g.forbidden.Load()}
}

// reload (re)reads the token file; on error the tokens in use stay.
func (g *authGuard) reload() error {
	if g.path == "" {
		return ErrNoTokenFile
	}
	ts, err := LoadTokens(g.path)
	if err != nil {
		return err
	}
	g.tokens.Store(ts)
	g.log.Info().Int("tokens", ts.Len()).Msg("token file loaded: the HTTP API requires bearer tokens")
	return nil
}

// bearer returns the token of an "Authorization: Bearer <token>" header.
func bearer(r *http.Request) (string, bool) {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// authenticate returns mux behind the token check: every request whose
// path is not one of the open ones (openPaths) needs a known token, or
// gets 401, whatever the mux would do with it (a redirect included). The
// role check is done by check, on the route the mux picked, with the token
// found here.
func (g *authGuard) authenticate(mux http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ts := g.tokens.Load()
		if ts == nil || openPaths[r.URL.Path] {
			mux.ServeHTTP(w, r)
			return
		}
		secret, ok := bearer(r)
		if !ok {
			g.missing.Add(1)
			g.log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Str("remote", r.RemoteAddr).Msg("request without a bearer token refused")
			w.Header().Set("WWW-Authenticate", `Bearer realm="quorumkv"`)
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "this node requires a bearer token: send Authorization: Bearer <token>")
			return
		}
		tok, ok := ts.Lookup(secret)
		if !ok {
			g.unknown.Add(1)
			g.log.Debug().Str("method", r.Method).Str("path", r.URL.Path).Str("remote", r.RemoteAddr).Msg("request with an unknown bearer token refused")
			w.Header().Set("WWW-Authenticate", `Bearer realm="quorumkv", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "this node does not know the bearer token")
			return
		}
		mux.ServeHTTP(&authedWriter{ResponseWriter: w, tok: tok}, r)
	})
}

// authedWriter carries the token authenticate found to check.
type authedWriter struct {
	http.ResponseWriter
	tok Token
}

// check returns h behind the role check of a route that needs role need.
// routes applies it to every pattern it registers, so the mux finds a
// request's route once and the role comes with it.
func (g *authGuard) check(need Role, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.tokens.Load() == nil || need == RoleNone {
			h.ServeHTTP(w, r)
			return
		}
		aw, ok := w.(*authedWriter)
		if !ok {
			// Not through authenticate: a route that needs a role on an
			// open path would be a mistake in routeRoles; refuse.
			g.missing.Add(1)
			writeError(w, http.StatusUnauthorized, CodeUnauthorized, "this node requires a bearer token: send Authorization: Bearer <token>")
			return
		}
		tok := aw.tok
		if tok.Role < need {
			g.forbidden.Add(1)
			g.log.Warn().Str("token", tok.Name).Stringer("role", tok.Role).Stringer("needs", need).
				Str("method", r.Method).Str("path", r.URL.Path).Str("remote", r.RemoteAddr).Msg("request refused: the token's role is too small")
			w.Header().Set("WWW-Authenticate", `Bearer realm="quorumkv", error="insufficient_scope"`)
			writeError(w, http.StatusForbidden, CodeForbidden,
				fmt.Sprintf("token %q has role %s; %s %s needs %s", tok.Name, tok.Role, r.Method, r.URL.Path, need))
			return
		}
		if need == RoleAdmin {
			// The audit trail of cluster-wide changes.
			g.log.Info().Str("token", tok.Name).Str("method", r.Method).Str("path", r.URL.Path).Str("remote", r.RemoteAddr).Msg("admin request")
		}
		h.ServeHTTP(aw.ResponseWriter, r)
	})
}

// ReloadTokens reads the token file again (on SIGHUP, say) and uses its
// tokens from the next request on. On error the tokens in use stay.
func (n *Node) ReloadTokens() error { return n.auth.reload() }

// AuthMetrics returns the counts of requests refused for their token.
func (n *Node) AuthMetrics() AuthMetrics { return n.auth.metrics() }
