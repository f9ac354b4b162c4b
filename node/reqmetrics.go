package node

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/quorumkv/quorumkv/internal/clock"
)

// reqMetrics are the key-value API's request metrics: latency per
// operation, status class and consistency level, value sizes, and the
// siblings each read returns. Their label values come from small fixed
// sets, so no client input can grow the number of series.
type reqMetrics struct {
	latency  *prometheus.HistogramVec
	values   *prometheus.HistogramVec
	siblings prometheus.Histogram
}

func newReqMetrics() *reqMetrics {
	return &reqMetrics{
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "quorumkv_request_duration_seconds",
			Help: "Time to answer a key-value request, by operation (get, put, delete), status class (2xx, 3xx, 4xx, 5xx) and consistency level (the r or w asked: default, one, quorum, all, or a number).",
			// 100 µs to about 6.5 s.
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 17),
		}, []string{"op", "status", "consistency"}),
		values: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "quorumkv_value_size_bytes",
			Help:    "Sizes of the values written (put) and of all the siblings a read returned together (get).",
			Buckets: prometheus.ExponentialBuckets(64, 4, 10), // 64 B to 16 MiB
		}, []string{"op"}),
		siblings: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "quorumkv_read_siblings",
			Help:    "Live siblings per read that found the key (1 when the replicas agree on one value).",
			Buckets: []float64{1, 2, 3, 5, 10, 20, 50, 100},
		}),
	}
}

// register adds the request metrics, and Go's runtime and process
// collectors, to reg.
func (m *reqMetrics) register(reg *prometheus.Registry) {
	reg.MustRegister(m.latency, m.values, m.siblings,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
}

// consistencyLabel maps an r or w parameter to a label value from a
// bounded set.
func consistencyLabel(v string) string {
	switch v {
	case "":
		return "default"
	case "one", "quorum", "all":
		return v
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 1 && n <= 9 {
		return v
	}
	return "other"
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// queryValue returns the first value of name in a raw query, as it
// stands (the labels consistencyLabel keeps need no unescaping), without
// parsing the whole query again: the handler does that.
func queryValue(raw, name string) string {
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}

// statusClasses are the status label values, by status / 100.
var statusClasses = [...]string{"0xx", "1xx", "2xx", "3xx", "4xx", "5xx"}

// timed wraps a key-value handler of operation op (its consistency
// parameter param, "r" or "w") with the latency histogram, timed on clk.
func (m *reqMetrics) timed(clk clock.Clock, op, param string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := clk.Now()
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		class := "other"
		if c := status / 100; c >= 0 && c < len(statusClasses) {
			class = statusClasses[c]
		}
		m.latency.WithLabelValues(op, class, consistencyLabel(queryValue(r.URL.RawQuery, param))).Observe(clk.Since(start).Seconds())
	}
}
