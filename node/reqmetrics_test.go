package node_test

import (
	"bytes"
	"fmt"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/quorumkv/quorumkv/internal/testcluster"
)

// label returns a metric's label value.
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// /metrics parses with the Prometheus text parser and has the request
// latency histograms by operation, status class and consistency level,
// value sizes, siblings per read, the Go runtime and process collectors,
// build info, and HELP text for every family.
func TestMetricsScrape(t *testing.T) {
	c := testcluster.Start(t, 3)
	for i := range 5 {
		k := fmt.Sprint("k", i)
		if r := c.Do(0, "PUT", "/v1/kv/b/"+k+"?w=quorum", bytes.Repeat([]byte("x"), 1000), nil); r.Status != 204 {
			t.Fatalf("PUT: %d", r.Status)
		}
		if r := c.Do(0, "GET", "/v1/kv/b/"+k, nil, nil); r.Status != 200 {
			t.Fatalf("GET: %d", r.Status)
		}
	}
	c.Do(0, "GET", "/v1/kv/b/absent?r=all", nil, nil)
	c.Do(0, "DELETE", "/v1/kv/b/k0?w=7", nil, nil) // 400: w past n

	r := c.Do(0, "GET", "/metrics", nil, nil)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	for name, f := range fams {
		if f.GetHelp() == "" {
			t.Errorf("%s has no HELP text", name)
		}
	}
	lat := fams["quorumkv_request_duration_seconds"]
	if lat == nil || lat.GetType() != dto.MetricType_HISTOGRAM {
		t.Fatalf("no latency histogram: %v", lat)
	}
	counts := map[string]uint64{}
	for _, m := range lat.GetMetric() {
		counts[label(m, "op")+" "+label(m, "status")+" "+label(m, "consistency")] += m.GetHistogram().GetSampleCount()
	}
	for want, n := range map[string]uint64{"put 2xx quorum": 5, "get 2xx default": 5, "get 4xx all": 1, "delete 4xx 7": 1} {
		if counts[want] != n {
			t.Errorf("latency samples %q = %d, want %d (all: %v)", want, counts[want], n, counts)
		}
	}
	if f := fams["quorumkv_read_siblings"]; f == nil || f.GetMetric()[0].GetHistogram().GetSampleCount() != 5 {
		t.Errorf("siblings per read: %v", f)
	}
	vals := map[string]*dto.Histogram{}
	for _, m := range fams["quorumkv_value_size_bytes"].GetMetric() {
		vals[label(m, "op")] = m.GetHistogram()
	}
	if vals["put"].GetSampleCount() != 5 || vals["put"].GetSampleSum() != 5000 || vals["get"].GetSampleCount() != 5 {
		t.Errorf("value sizes: put %v, get %v", vals["put"], vals["get"])
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "quorumkv_build_info"} {
		if fams[name] == nil {
			t.Errorf("no %s", name)
		}
	}
}
