package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pingcap/go-ycsb/pkg/ycsb"

	"github.com/quorumkv/quorumkv/internal/httpclient"
)

// maxBody bounds the bytes read from one response.
const maxBody = 64 << 20

// QuorumKV is a go-ycsb ycsb.DB that drives quorumkv nodes through their HTTP
// API, over a keep-alive connection pool. A YCSB table is a bucket and a
// record is one value (EncodeRecord). Each worker thread talks to one node,
// threads spread round-robin over the endpoints.
//
// Writes carry causal context as a real client does: an update reads the
// record (a plain GET, with its X-Context), merges the new fields into it
// and writes it back with the context of the read, so that it supersedes
// what it read instead of adding a sibling. A read answered with siblings
// (300) merges them (MergeRecords) and writes the merge back with the
// siblings' context.
type QuorumKV struct {
	client *http.Client
	bases  []string // "http://host:port", no trailing slash
	// readQuery and writeQuery are "" or "?..": reads take r, n and
	// timeout; writes w, n and timeout (a node rejects other parameters).
	readQuery, writeQuery string
	scanPar               int
	next                  atomic.Uint64 // endpoint choice for calls outside InitThread

	gets, puts, deletes   atomic.Int64
	siblingReads          atomic.Int64
	siblingResolutions    atomic.Int64
	writebackErrors       atomic.Int64
	scanReads, scanMisses atomic.Int64
}

var _ ycsb.DB = (*QuorumKV)(nil)

// QuorumKVMetrics are the counters of a QuorumKV driver.
type QuorumKVMetrics struct {
	// Gets, Puts and Deletes count HTTP requests by method.
	Gets, Puts, Deletes int64
	// SiblingReads counts GETs answered with siblings (300).
	SiblingReads int64
	// SiblingResolutions counts merged sibling sets written back.
	SiblingResolutions int64
	// WritebackErrors counts failed write-backs of merged siblings.
	WritebackErrors int64
	// ScanReads counts the point reads of emulated scans; ScanMisses those
	// that found no record.
	ScanReads, ScanMisses int64
}

// NewQuorumKV returns a driver for the nodes at cfg.Endpoints, using
// cfg.Threads (16 when zero) to size its connection pool and cfg.R, W, N,
// ServerTimeout, RequestTimeout and ScanParallelism.
func NewQuorumKV(cfg Config) (*QuorumKV, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, fmt.Errorf("%w: no quorumkv endpoints", ErrInvalidConfig)
	}
	threads := cfg.Threads
	if threads <= 0 {
		threads = 16
	}
	d := &QuorumKV{scanPar: max(cfg.ScanParallelism, 1)}
	for _, e := range cfg.Endpoints {
		base, err := normalizeEndpoint(e)
		if err != nil {
			return nil, err
		}
		d.bases = append(d.bases, base)
	}
	rq, wq := url.Values{}, url.Values{}
	for _, kv := range []struct {
		k, v string
		qs   []url.Values
	}{{"r", cfg.R, []url.Values{rq}}, {"w", cfg.W, []url.Values{wq}}, {"n", cfg.N, []url.Values{rq, wq}}} {
		if err := validQuorum(kv.v); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidConfig, kv.k, err)
		}
		for _, q := range kv.qs {
			if kv.v != "" {
				q.Set(kv.k, kv.v)
			}
		}
	}
	if cfg.ServerTimeout > 0 {
		rq.Set("timeout", cfg.ServerTimeout.String())
		wq.Set("timeout", cfg.ServerTimeout.String())
	}
	if len(rq) > 0 {
		d.readQuery = "?" + rq.Encode()
	}
	if len(wq) > 0 {
		d.writeQuery = "?" + wq.Encode()
	}
	// A scan keeps up to ScanParallelism requests in flight per thread.
	conns := threads * max(cfg.ScanParallelism, 1)
	tr := &http.Transport{
		Proxy:               nil, // loopback benchmarks never go through a proxy
		MaxIdleConns:        conns * len(d.bases),
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
	timeout := cfg.RequestTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	client, err := httpclient.New(httpclient.Config{Token: cfg.Token, CAFile: cfg.CAFile, Timeout: timeout, Transport: tr})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	d.client = client
	return d, nil
}

func normalizeEndpoint(e string) (string, error) {
	e = strings.TrimSpace(e)
	if !strings.Contains(e, "://") {
		e = "http://" + e
	}
	u, err := url.Parse(e)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("%w: endpoint %q is not host:port or a URL", ErrInvalidConfig, e)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// Metrics returns a snapshot of the driver's counters.
func (d *QuorumKV) Metrics() QuorumKVMetrics {
	return QuorumKVMetrics{
		Gets:               d.gets.Load(),
		Puts:               d.puts.Load(),
		Deletes:            d.deletes.Load(),
		SiblingReads:       d.siblingReads.Load(),
		SiblingResolutions: d.siblingResolutions.Load(),
		WritebackErrors:    d.writebackErrors.Load(),
		ScanReads:          d.scanReads.Load(),
		ScanMisses:         d.scanMisses.Load(),
	}
}

// Close closes idle connections. It is idempotent.
func (d *QuorumKV) Close() error {
	d.client.CloseIdleConnections()
	return nil
}

type qkvThreadKey struct{}

// InitThread pins the thread to one endpoint.
func (d *QuorumKV) InitThread(ctx context.Context, threadID int, _ int) context.Context {
	return context.WithValue(ctx, qkvThreadKey{}, d.bases[threadID%len(d.bases)])
}

// CleanupThread does nothing.
func (d *QuorumKV) CleanupThread(context.Context) {}

func (d *QuorumKV) base(ctx context.Context) string {
	if b, ok := ctx.Value(qkvThreadKey{}).(string); ok {
		return b
	}
	return d.bases[d.next.Add(1)%uint64(len(d.bases))]
}

// url is the address of a key, with the query of a read or of a write.
func (d *QuorumKV) url(ctx context.Context, bucket, key string, write bool) string {
	q := d.readQuery
	if write {
		q = d.writeQuery
	}
	return d.base(ctx) + "/v1/kv/" + url.PathEscape(bucket) + "/" + url.PathEscape(key) + q
}

// Read reads a record, resolving siblings. A missing record is ErrNotFound.
func (d *QuorumKV) Read(ctx context.Context, table, key string, fields []string) (map[string][]byte, error) {
	res, err := d.read(ctx, table, key)
	if err != nil {
		return nil, err
	}
	if t := txnFrom(ctx); t != nil {
		t.read = cachedRead{ok: true, bucket: table, key: key, context: res.context, rec: res.rec}
	}
	return project(res.rec, fields), nil
}

// read GETs a record and writes back merged siblings.
func (d *QuorumKV) read(ctx context.Context, table, key string) (getResult, error) {
	res, err := d.get(ctx, table, key)
	if err != nil {
		return res, err
	}
	if res.multi && res.found {
		d.resolve(ctx, table, key, &res)
	}
	if !res.found {
		return res, fmt.Errorf("%w: %s/%s", ErrNotFound, table, key)
	}
	return res, nil
}

// resolve writes the merged siblings of res back with their context and
// moves res to the new context.
func (d *QuorumKV) resolve(ctx context.Context, table, key string, res *getResult) {
	newCtx, err := d.put(ctx, table, key, EncodeRecord(nil, res.rec), res.context)
	if err != nil {
		d.writebackErrors.Add(1)
		return
	}
	d.siblingResolutions.Add(1)
	res.context = newCtx
}

func project(rec map[string][]byte, fields []string) map[string][]byte {
	if len(fields) == 0 {
		return rec
	}
	out := make(map[string][]byte, len(fields))
	for _, f := range fields {
		if v, ok := rec[f]; ok {
			out[f] = v
		}
	}
	return out
}

// Update writes values over the record's fields: a read-modify-write that
// carries the read's causal context. It reuses the read of a preceding Read
// of the same key in the same transaction (the core workload's
// read-modify-write).
func (d *QuorumKV) Update(ctx context.Context, table, key string, values map[string][]byte) error {
	var base getResult
	if t := txnFrom(ctx); t != nil && t.read.ok && t.read.bucket == table && t.read.key == key {
		base = getResult{found: true, rec: t.read.rec, context: t.read.context}
		t.read = cachedRead{}
	} else {
		var err error
		if base, err = d.get(ctx, table, key); err != nil {
			return err
		}
	}
	rec := make(map[string][]byte, len(base.rec)+len(values))
	maps.Copy(rec, base.rec)
	maps.Copy(rec, values)
	_, err := d.put(ctx, table, key, EncodeRecord(nil, rec), base.context)
	if base.multi && base.found {
		// The write carries the siblings' context: it resolves them.
		if err != nil {
			d.writebackErrors.Add(1)
		} else {
			d.siblingResolutions.Add(1)
		}
	}
	return err
}

// Insert writes a new record without context.
func (d *QuorumKV) Insert(ctx context.Context, table, key string, values map[string][]byte) error {
	_, err := d.put(ctx, table, key, EncodeRecord(nil, values), "")
	return err
}

// Delete writes a tombstone over what a read of the key saw.
func (d *QuorumKV) Delete(ctx context.Context, table, key string) error {
	res, err := d.get(ctx, table, key)
	if err != nil {
		return err
	}
	d.deletes.Add(1)
	status, _, body, err := d.do(ctx, http.MethodDelete, d.url(ctx, table, key, true), nil, res.context)
	if err != nil {
		return err
	}
	if status != http.StatusNoContent && status != http.StatusOK {
		return decodeHTTPError(status, body)
	}
	return nil
}

// Scan emulates a range read with point reads of consecutive record
// numbers: from "userN", keys userN, userN+1, ... (see
// Config.ScanParallelism). Missing records are skipped.
func (d *QuorumKV) Scan(ctx context.Context, table, startKey string, count int, fields []string) ([]map[string][]byte, error) {
	prefix, first, width, ok := splitRecordKey(startKey)
	if !ok || count < 0 || first > (1<<62)-int64(count) {
		return nil, fmt.Errorf("%w: %q", ErrScanUnsupported, startKey)
	}
	recs := make([]map[string][]byte, count)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	for range min(d.scanPar, count) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1) - 1; i < int64(count); i = next.Add(1) - 1 {
				key := prefix + fmt.Sprintf("%0*d", width, first+i)
				d.scanReads.Add(1)
				res, err := d.read(ctx, table, key)
				switch {
				case errors.Is(err, ErrNotFound):
					d.scanMisses.Add(1)
				case err != nil:
					errOnce.Do(func() { firstErr = err; cancel() })
					return
				default:
					recs[i] = project(res.rec, fields)
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	out := recs[:0]
	for _, r := range recs {
		if r != nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// splitRecordKey splits "user0042" into "user", 42 and the digit count 4.
func splitRecordKey(key string) (prefix string, n int64, width int, ok bool) {
	i := len(key)
	for i > 0 && key[i-1] >= '0' && key[i-1] <= '9' {
		i--
	}
	digits := key[i:]
	if digits == "" {
		return "", 0, 0, false
	}
	n, err := strconv.ParseInt(digits, 10, 64)
	if err != nil {
		return "", 0, 0, false
	}
	return key[:i], n, len(digits), true
}

// getResult is a read's outcome.
type getResult struct {
	found   bool              // some live value
	multi   bool              // the answer was 300: siblings to resolve
	rec     map[string][]byte // the record, merged over live siblings
	context string            // causal context to write with
}

// envelope is the JSON body of a 300 answer (and of any GET answer asked
// for with Accept: application/json).
type envelope struct {
	Context  string    `json:"context"`
	Siblings []sibling `json:"siblings"`
}

type sibling struct {
	Value       []byte `json:"value"` // base64 in JSON
	ContentType string `json:"content_type"`
	Deleted     bool   `json:"deleted"`
}

// decodeEnvelope parses an envelope body and merges its live siblings.
func decodeEnvelope(body []byte) (getResult, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return getResult{}, fmt.Errorf("%w: envelope: %v", ErrBadResponse, err)
	}
	res := getResult{context: env.Context}
	var live []map[string][]byte
	for i, s := range env.Siblings {
		if s.Deleted {
			continue
		}
		rec, err := DecodeRecord(s.Value)
		if err != nil {
			return getResult{}, fmt.Errorf("sibling %d: %w", i, err)
		}
		live = append(live, rec)
	}
	switch len(live) {
	case 0:
	case 1:
		res.found, res.rec = true, live[0]
	default:
		res.found, res.rec = true, MergeRecords(live...)
	}
	return res, nil
}

// get reads a key as a plain client does: a single value comes back as the
// raw body, siblings (300) as the JSON envelope, and the causal context of
// every answer, 404 included, in X-Context.
func (d *QuorumKV) get(ctx context.Context, table, key string) (getResult, error) {
	d.gets.Add(1)
	status, hdr, body, err := d.do(ctx, http.MethodGet, d.url(ctx, table, key, false), nil, "")
	if err != nil {
		return getResult{}, err
	}
	xctx := hdr.Get("X-Context")
	switch status {
	case http.StatusOK:
		rec, err := DecodeRecord(body)
		if err != nil {
			return getResult{}, err
		}
		return getResult{found: true, rec: rec, context: xctx}, nil
	case http.StatusMultipleChoices:
		d.siblingReads.Add(1)
		res, err := decodeEnvelope(body)
		if err != nil {
			return getResult{}, err
		}
		if res.context == "" {
			res.context = xctx
		}
		res.multi = true
		return res, nil
	case http.StatusNotFound:
		return getResult{context: xctx}, nil
	}
	return getResult{}, decodeHTTPError(status, body)
}

// put writes an encoded record with the given context and returns the new
// context.
func (d *QuorumKV) put(ctx context.Context, table, key string, value []byte, xctx string) (string, error) {
	d.puts.Add(1)
	status, hdr, body, err := d.do(ctx, http.MethodPut, d.url(ctx, table, key, true), value, xctx)
	if err != nil {
		return "", err
	}
	if status != http.StatusNoContent && status != http.StatusOK {
		return "", decodeHTTPError(status, body)
	}
	return hdr.Get("X-Context"), nil
}

// do sends one request and reads the whole answer, so that the connection
// goes back to the pool.
func (d *QuorumKV) do(ctx context.Context, method, u string, body []byte, xctx string) (int, http.Header, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("bench: request: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", RecordContentType)
	}
	if xctx != "" {
		req.Header.Set("X-Context", xctx)
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return 0, nil, nil, fmt.Errorf("bench: %s body: %w", method, err)
	}
	return resp.StatusCode, resp.Header, b, nil
}

// decodeHTTPError turns an error answer into an *HTTPError.
func decodeHTTPError(status int, body []byte) error {
	e := &HTTPError{Status: status}
	var jb struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	if json.Unmarshal(body, &jb) == nil && (jb.Error != "" || jb.Code != "") {
		e.Code, e.Message = jb.Code, jb.Error
	} else {
		msg := strings.TrimSpace(string(body))
		if len(msg) > 200 {
			msg = msg[:200]
		}
		e.Message = msg
	}
	return e
}
