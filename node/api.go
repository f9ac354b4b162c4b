package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/pprof"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/quorumkv/quorumkv/gossip"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

// HeaderContext carries the causal context between client and server.
const HeaderContext = "X-Context"

// Handler returns the node's HTTP API, behind the bearer token check
// when the node has a token file (auth.go).
func (n *Node) Handler() http.Handler {
	return n.auth.authenticate(n.routes())
}

// routes registers every endpoint of the API; each pattern needs a role
// in routeRoles (auth.go).
func (n *Node) routes() *routes {
	mux := &routes{ServeMux: http.NewServeMux(), guard: n.auth}
	mux.HandleFunc("GET /v1/kv/{bucket}/{key...}", n.reqm.timed(n.clk, "get", "r", n.handleGet))
	mux.HandleFunc("PUT /v1/kv/{bucket}/{key...}", n.reqm.timed(n.clk, "put", "w", n.handlePut))
	mux.HandleFunc("DELETE /v1/kv/{bucket}/{key...}", n.reqm.timed(n.clk, "delete", "w", n.handleDelete))
	mux.HandleFunc("/v1/kv/{bucket}/{key...}", methodNotAllowed("GET, HEAD, PUT, DELETE"))
	mux.HandleFunc("GET /v1/buckets/{bucket}", n.handleGetBucket)
	mux.HandleFunc("PUT /v1/buckets/{bucket}", n.handlePutBucket)
	mux.HandleFunc("/v1/buckets/{bucket}", methodNotAllowed("GET, HEAD, PUT"))
	mux.HandleFunc("GET /v1/ready", n.handleReady)
	mux.HandleFunc("/v1/ready", methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("GET /healthz", n.handleHealthz)
	mux.HandleFunc("/healthz", methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("GET /readyz", n.handleReadyz)
	mux.HandleFunc("/readyz", methodNotAllowed("GET, HEAD"))
	mux.HandleFunc("GET /v1/cluster", n.handleCluster)
	mux.HandleFunc("/v1/cluster", methodNotAllowed("GET, HEAD"))
	n.adminRoutes(mux)
	mux.HandleFunc("POST /v1/antientropy/run", n.handleAntiEntropy)
	mux.HandleFunc("/v1/antientropy/run", methodNotAllowed("POST"))
	mux.HandleFunc("GET /metrics", n.handleMetrics)
	if n.cfg.Pprof {
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "no such endpoint: "+r.URL.Path+"; the API lives under /v1/kv/{bucket}/{key}, /v1/buckets/{bucket}, /v1/cluster")
	})
	return mux
}

// Error codes of the HTTP API. They are stable: clients may match on them.
const (
	CodeBadParameter    = "bad_parameter"
	CodeBadContext      = "bad_context"
	CodeBadKey          = "bad_key"
	CodeBadBody         = "bad_body"
	CodeNotFound        = "not_found"
	CodeMethod          = "method_not_allowed"
	CodeTooManySiblings = "too_many_siblings"
	CodeKeyTooLarge     = "key_too_large"
	CodeTooLarge        = "value_too_large"
	CodeQuorum          = "quorum_failed"
	CodeTimeout         = "timeout"
	CodeInternal        = "internal"
	CodeUnavailable     = "unavailable"
)

type errorBody struct {
	Error string `json:"error"`
	Code  string `json:"code"`
	// Needed and Answered are set on quorum failures.
	Needed   int               `json:"needed,omitempty"`
	Answered int               `json:"answered,omitempty"`
	Replied  []string          `json:"replied,omitempty"`
	Failed   map[string]string `json:"failed,omitempty"`
	// status is the HTTP status of a request refused before it ran
	// (0: 400).
	status int
}

// statusOf returns the HTTP status of a refused request.
func (e *errorBody) statusOf() int {
	if e.status == 0 {
		return http.StatusBadRequest
	}
	return e.status
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, errorBody{Error: msg, Code: code})
}

func methodNotAllowed(allow string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, CodeMethod, fmt.Sprintf("method %s is not allowed here; allowed: %s", r.Method, allow))
	}
}

// writeOpError maps a coordinator error to a status and a stable code.
func writeOpError(w http.ResponseWriter, err error) {
	var qe *quorum.QuorumError
	var pe *quorum.ParamError
	switch {
	case errors.As(err, &pe):
		writeError(w, http.StatusBadRequest, CodeBadParameter, pe.Error())
	case errors.Is(err, quorum.ErrBadParam):
		writeError(w, http.StatusBadRequest, CodeBadParameter, err.Error())
	case errors.Is(err, quorum.ErrTooManySiblings):
		writeError(w, http.StatusConflict, CodeTooManySiblings,
			"the key has too many siblings: read it, resolve the siblings, and write back with the X-Context of that read")
	case errors.Is(err, quorum.ErrImplausible):
		// The coordinator checked the client's context; a replica whose
		// clock is behind by years may still refuse it.
		writeError(w, http.StatusBadRequest, CodeBadContext, err.Error()+"; read the key and write back with the X-Context of that read")
	case errors.Is(err, quorum.ErrKeyTooLarge):
		writeError(w, http.StatusConflict, CodeKeyTooLarge,
			"the key's siblings would be too large together: read it, resolve the siblings, and write back with the X-Context of that read")
	case errors.As(err, &qe) && qe.TimedOut:
		// The deadline passed with replicas still silent: 504, as for any
		// gateway whose upstreams did not answer in time.
		writeJSON(w, http.StatusGatewayTimeout, errorBody{
			Error: fmt.Sprintf("%v; retry, raise timeout, or lower r/w. A timed-out write may still have been applied", qe),
			Code:  CodeTimeout, Needed: qe.Needed, Answered: qe.Answered, Replied: qe.Replied, Failed: qe.Failed,
		})
	case errors.As(err, &qe):
		// Replicas answered, with failures, or too few could be asked.
		writeJSON(w, http.StatusServiceUnavailable, errorBody{
			Error: fmt.Sprintf("%v; retry, or lower r/w. A failed write may still have been applied on the replicas that acked it", qe),
			Code:  CodeQuorum, Needed: qe.Needed, Answered: qe.Answered, Replied: qe.Replied, Failed: qe.Failed,
		})
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, CodeTimeout, "the request timed out: "+err.Error())
	case errors.Is(err, quorum.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, CodeUnavailable, "the node is shutting down; use another node")
	default:
		writeError(w, http.StatusInternalServerError, CodeInternal, err.Error())
	}
}

// request is a parsed key request.
type request struct {
	bucket, key string
	k           []byte
	opts        quorum.Options
	params      quorum.Params
}

var (
	readParams  = []string{"r", "n", "timeout", "sloppy"}
	writeParams = []string{"w", "n", "timeout", "sloppy"}
)

// parseKeyRequest validates the path and the query parameters strictly.
func (n *Node) parseKeyRequest(r *http.Request, allowed []string) (*request, *errorBody) {
	bucket, key := r.PathValue("bucket"), r.PathValue("key")
	lim := n.cfg.Limits
	rg := n.committed()
	if rg == nil {
		return nil, &errorBody{Code: CodeNotReady, Error: ErrNoRing.Error() + "; use another node", status: http.StatusServiceUnavailable}
	}
	switch {
	case bucket == "" || len(bucket) > lim.MaxBucketLen:
		return nil, &errorBody{Code: CodeBadKey, Error: fmt.Sprintf("bucket name must be 1 to %d bytes", lim.MaxBucketLen)}
	case key == "" || len(key) > lim.MaxKeyLen:
		return nil, &errorBody{Code: CodeBadKey, Error: fmt.Sprintf("key must be 1 to %d bytes, got %d", lim.MaxKeyLen, len(key))}
	}
	opts, eb := parseOptions(r, allowed)
	if eb != nil {
		return nil, eb
	}
	props := n.bucketProps(bucket)
	params, err := quorum.Resolve(opts, quorum.Bucket{N: props.N, R: props.R, W: props.W, LWW: props.Conflict == gossip.ConflictLWW},
		rg.Len(), n.cfg.RequestTimeout)
	if err != nil {
		return nil, &errorBody{Code: CodeBadParameter, Error: err.Error()}
	}
	return &request{bucket: bucket, key: key, k: store.EncodeKey([]byte(bucket), []byte(key)), opts: opts, params: params}, nil
}

// parseOptions reads r, w, n, timeout and sloppy; anything else is an error
// that names the allowed parameters.
func parseOptions(r *http.Request, allowed []string) (quorum.Options, *errorBody) {
	opts := quorum.Options{Sloppy: true}
	bad := func(format string, a ...any) *errorBody {
		return &errorBody{Code: CodeBadParameter, Error: fmt.Sprintf(format, a...) + "; allowed parameters: " + strings.Join(allowed, ", ")}
	}
	// url.ParseQuery, unlike URL.Query, reports the pairs it cannot parse
	// (a ';' separator, a bad escape) instead of dropping them, which would
	// run the request with weaker options than it asked for.
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return opts, bad("query %q: %v", r.URL.RawQuery, err)
	}
	names := make([]string, 0, len(q))
	for name := range q {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		vals := q[name]
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		if !ok {
			return opts, bad("unknown parameter %q", name)
		}
		if len(vals) != 1 {
			return opts, bad("parameter %q given %d times", name, len(vals))
		}
		v := vals[0]
		switch name {
		case "r", "w", "n":
			l, err := quorum.ParseLevel(v)
			if err != nil {
				return opts, bad("%s=%q: must be a positive integer, one, quorum or all", name, v)
			}
			switch name {
			case "r":
				opts.R = l
			case "w":
				opts.W = l
			case "n":
				opts.N = l
			}
		case "timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d <= 0 {
				return opts, bad("timeout=%q: must be a positive Go duration such as 500ms or 2s", v)
			}
			opts.Timeout = d
		case "sloppy":
			switch v {
			case "true":
				opts.Sloppy = true
			case "false":
				opts.Sloppy = false
			default:
				return opts, bad("sloppy=%q: must be true or false", v)
			}
		}
	}
	return opts, nil
}

func (n *Node) handleGet(w http.ResponseWriter, r *http.Request) {
	req, eb := n.parseKeyRequest(r, readParams)
	if eb != nil {
		writeJSON(w, eb.statusOf(), eb)
		return
	}
	res, err := n.coord.Get(r.Context(), quorum.GetRequest{Key: req.k, Params: req.params})
	if err != nil {
		writeOpError(w, err)
		return
	}
	res.Receipt.WriteHeaders(w.Header())
	set := res.Set
	ctx := version.EncodeContext(req.k, set.Context)
	if ctx != "" {
		w.Header().Set(HeaderContext, ctx)
	}
	live := set.Live()
	if len(live) > 0 {
		size := 0
		for _, sib := range live {
			size += len(sib.Value)
		}
		n.reqm.siblings.Observe(float64(len(live)))
		n.reqm.values.WithLabelValues("get").Observe(float64(size))
	}
	status := http.StatusOK
	switch {
	case len(live) == 0:
		status = http.StatusNotFound
	case len(set.Siblings) > 1:
		status = http.StatusMultipleChoices
	}
	if status == http.StatusMultipleChoices || wantsJSON(r) {
		writeJSON(w, status, envelope(ctx, set))
		return
	}
	if status == http.StatusNotFound {
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("key %q not found in bucket %q", req.key, req.bucket))
		return
	}
	sib := live[0]
	ct := sib.ContentType
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(sib.Value)
}

// Envelope is the JSON form of a read: every sibling, tombstones included.
type Envelope struct {
	Context  string            `json:"context"`
	Siblings []EnvelopeSibling `json:"siblings"`
}

// EnvelopeSibling is one sibling in an Envelope. Value is base64 in JSON.
type EnvelopeSibling struct {
	Value       []byte `json:"value"`
	ContentType string `json:"content_type"`
	Deleted     bool   `json:"deleted"`
}

func envelope(ctx string, set version.Set) Envelope {
	e := Envelope{Context: ctx, Siblings: make([]EnvelopeSibling, 0, len(set.Siblings))}
	for _, s := range set.Siblings {
		v := s.Value
		if v == nil {
			v = []byte{}
		}
		e.Siblings = append(e.Siblings, EnvelopeSibling{Value: v, ContentType: s.ContentType, Deleted: s.Deleted})
	}
	return e
}

func wantsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && mt == "application/json" {
			return true
		}
	}
	return false
}

func (n *Node) handlePut(w http.ResponseWriter, r *http.Request) { n.handleWrite(w, r, false) }

func (n *Node) handleDelete(w http.ResponseWriter, r *http.Request) { n.handleWrite(w, r, true) }

func (n *Node) handleWrite(w http.ResponseWriter, r *http.Request, del bool) {
	req, eb := n.parseKeyRequest(r, writeParams)
	if eb != nil {
		writeJSON(w, eb.statusOf(), eb)
		return
	}
	ctx, err := n.writeContext(req.k, r.Header.Get(HeaderContext))
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadContext, err.Error())
		return
	}
	var body []byte
	ct := ""
	if !del {
		if r.ContentLength > n.cfg.Limits.MaxValueSize {
			writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("the value is %d bytes; the limit is %d", r.ContentLength, n.cfg.Limits.MaxValueSize))
			return
		}
		body, err = io.ReadAll(http.MaxBytesReader(w, r.Body, n.cfg.Limits.MaxValueSize))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				writeError(w, http.StatusRequestEntityTooLarge, CodeTooLarge, fmt.Sprintf("the value exceeds the limit of %d bytes", n.cfg.Limits.MaxValueSize))
				return
			}
			writeError(w, http.StatusBadRequest, CodeBadBody, "reading the body: "+err.Error())
			return
		}
		ct = r.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/octet-stream"
		}
	}
	if !del {
		n.reqm.values.WithLabelValues("put").Observe(float64(len(body)))
	}
	res, err := n.coord.Put(r.Context(), quorum.PutRequest{Key: req.k, Params: req.params, Context: ctx, Value: body, ContentType: ct, Deleted: del})
	if err != nil {
		writeOpError(w, err)
		return
	}
	res.Receipt.WriteHeaders(w.Header())
	w.Header().Set(HeaderContext, version.EncodeContext(req.k, res.Context))
	w.WriteHeader(http.StatusNoContent)
}

// writeContext decodes the X-Context of a write of key k and checks it
// before anything is sent to a replica: it must have been issued for this
// key (a context copied from another key would supersede versions of this
// one it never saw), and its counters must be ones a node could have
// issued by now (a forged counter near the maximum would freeze the key).
// The error is the message for the client.
func (n *Node) writeContext(k []byte, hdr string) (version.Context, error) {
	const reread = "; read the key and write back with the X-Context of that read, or write without one"
	ctx, err := version.DecodeContext(k, hdr)
	switch {
	case errors.Is(err, version.ErrForeignContext):
		return version.Context{}, fmt.Errorf("the X-Context header was not issued for this key (%v)%s", err, reread)
	case err != nil:
		return version.Context{}, fmt.Errorf("the X-Context header is not a context this cluster issued (%v)%s", err, reread)
	}
	if err := ctx.Plausible(n.clk.Now()); err != nil {
		return version.Context{}, fmt.Errorf("the X-Context header is not a context this cluster issued (%v)%s", err, reread)
	}
	return ctx, nil
}

// bucketJSON is the HTTP form of bucket properties.
type bucketJSON struct {
	N        int    `json:"n"`
	R        int    `json:"r"`
	W        int    `json:"w"`
	Conflict string `json:"conflict"`
}

func (n *Node) handleGetBucket(w http.ResponseWriter, r *http.Request) {
	p := n.bucketProps(r.PathValue("bucket"))
	writeJSON(w, http.StatusOK, bucketJSON{N: p.N, R: p.R, W: p.W, Conflict: p.Conflict})
}

func (n *Node) handlePutBucket(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("bucket")
	if len(name) > n.cfg.Limits.MaxBucketLen {
		writeError(w, http.StatusBadRequest, CodeBadKey, fmt.Sprintf("bucket name must be 1 to %d bytes", n.cfg.Limits.MaxBucketLen))
		return
	}
	cur := n.bucketProps(name)
	in := bucketJSON{N: cur.N, R: cur.R, W: cur.W, Conflict: cur.Conflict}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadBody, `the body must be JSON such as {"n":3,"r":2,"w":2,"conflict":"siblings"} (conflict: siblings or lww): `+err.Error())
		return
	}
	props := gossip.BucketProps{N: in.N, R: in.R, W: in.W, Conflict: in.Conflict}
	if err := props.Validate(); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadParameter, err.Error()+"; need 1 <= r, w <= n")
		return
	}
	if rg := n.committed(); rg != nil && props.N > rg.Len() {
		size := rg.Len()
		n.log.Warn().Str("bucket", name).Int("n", props.N).Int("members", size).Msg("bucket n exceeds the cluster size")
	}
	p, err := n.gossip.SetBucket(name, props)
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadParameter, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, bucketJSON{N: p.N, R: p.R, W: p.W, Conflict: p.Conflict})
}
