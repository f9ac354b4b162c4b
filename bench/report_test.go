package bench

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"
)

// sampleResult builds a result with n one-second samples.
func sampleResult(system string, phase Phase, n int) *Result {
	r := &Result{
		System:   system,
		Workload: "workloada",
		Phase:    phase,
		Start:    time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		Elapsed:  float64(n),
		Threads:  8,
		Nodes:    3,
		Total: OpSummary{Op: "TOTAL", Count: int64(100 * n), Errors: 2, OpsPerSec: 99,
			Latency: Percentiles{P50: 800, P90: 1500, P99: 4000, P999: 9000, Max: 12000, Mean: 900}},
		Ops: []OpSummary{
			{Op: OpRead, Count: int64(50 * n), OpsPerSec: 50, Latency: Percentiles{P50: 700, P99: 3000}},
			{Op: OpUpdate, Count: int64(50 * n), Errors: 2, OpsPerSec: 49, Latency: Percentiles{P50: 900, P99: 5000},
				ErrorsByKind: map[ErrorKind]int64{KindQuorum: 2}},
		},
		Errors:     map[ErrorKind]int64{KindQuorum: 2, KindTimeout: 0, KindNotFound: 0, KindClient: 0, KindOther: 0},
		Properties: map[string]string{"recordcount": "1000"},
	}
	if system == DBQuorumKV {
		r.Consistency = Consistency{R: "quorum", W: "all"}
		r.Siblings = &SiblingStats{Gets: 100, SiblingReads: 3, Resolutions: 3, Rate: 0.03}
	}
	for i := range n {
		r.Series = append(r.Series, Sample{
			T: float64(i + 1), Interval: 1, Ops: 100, OpsPerSec: float64(90 + i),
			Latency: Percentiles{P50: int64(700 + i), P90: 1400, P99: 4000 + int64(10*i), P999: 9000, Max: 11000},
			PerOp:   map[string]OpSample{OpRead: {Ops: 50, P50: 700, P99: 3000}},
		})
	}
	return r
}

func TestJSONRoundTrip(t *testing.T) {
	in := []*Result{sampleResult(DBQuorumKV, PhaseLoad, 2), sampleResult(DBEtcd, PhaseRun, 5)}
	var buf bytes.Buffer
	if err := WriteJSON(&buf, in); err != nil {
		t.Fatal(err)
	}
	out, err := ReadJSON(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 {
		t.Fatalf("%d results", len(out))
	}
	q, e := out[0], out[1]
	if q.System != DBQuorumKV || q.Phase != PhaseLoad || q.Workload != "workloada" || q.Threads != 8 || q.Nodes != 3 ||
		!q.Start.Equal(in[0].Start) || q.Consistency.W != "all" {
		t.Fatalf("header %+v", q)
	}
	if q.Total.Latency.P999 != 9000 || q.Total.Errors != 2 || len(q.Ops) != 2 || q.Ops[1].ErrorsByKind[KindQuorum] != 2 {
		t.Fatalf("summaries %+v %+v", q.Total, q.Ops)
	}
	if q.Siblings == nil || q.Siblings.Rate != 0.03 || e.Siblings != nil {
		t.Fatalf("siblings %+v %+v", q.Siblings, e.Siblings)
	}
	if len(e.Series) != 5 || e.Series[4].Latency.P99 != 4040 || e.Series[0].PerOp[OpRead].P99 != 3000 {
		t.Fatalf("series %+v", e.Series)
	}
	if q.Errors[KindQuorum] != 2 || len(q.Errors) != 5 {
		t.Fatalf("errors %v", q.Errors)
	}

	// The field names on disk are the documented ones.
	var raw map[string]any
	if err := json.Unmarshal(buf.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if raw["version"] != float64(1) {
		t.Fatalf("version %v", raw["version"])
	}
	r0 := raw["results"].([]any)[0].(map[string]any)
	for _, k := range []string{"system", "workload", "phase", "elapsed_sec", "total", "ops", "errors", "siblings", "series", "properties"} {
		if _, ok := r0[k]; !ok {
			t.Errorf("result lacks %q", k)
		}
	}
	if p99 := r0["total"].(map[string]any)["latency_us"].(map[string]any)["p99"]; p99 != float64(4000) {
		t.Errorf("total.latency_us.p99 = %v", p99)
	}
}

func TestReadJSONRejects(t *testing.T) {
	for _, in := range []string{
		``, `[]`, `{"version":2,"results":[{}]}`, `{"version":1,"results":[]}`, `{"version":1,"results":[null]}`,
	} {
		if _, err := ReadJSON(strings.NewReader(in)); !errors.Is(err, ErrBadResultFile) {
			t.Errorf("ReadJSON(%q) = %v", in, err)
		}
	}
	if err := WriteJSON(io.Discard, nil); !errors.Is(err, ErrNoResults) {
		t.Errorf("WriteJSON(nil) = %v", err)
	}
}

// polyline is an SVG polyline as encoding/xml sees it.
type svgDoc struct {
	XMLName   xml.Name `xml:"svg"`
	ID        string   `xml:"id,attr"`
	Polylines []struct {
		Series string `xml:"data-series,attr"`
		Count  string `xml:"data-points,attr"`
		Points string `xml:"points,attr"`
	} `xml:"polyline"`
}

func TestHTMLReport(t *testing.T) {
	results := []*Result{
		sampleResult(DBQuorumKV, PhaseLoad, 3),
		sampleResult(DBQuorumKV, PhaseRun, 7),
		sampleResult(DBEtcd, PhaseRun, 5),
		sampleResult(DBRedis, PhaseRun, 4),
	}
	results[3].Label = `<b>&"x"`
	dir := t.TempDir()
	if err := WriteReport(dir, results); err != nil {
		t.Fatal(err)
	}
	back, err := ReadResultsFile(dir) // the directory stands for results.json
	if err != nil || len(back) != 4 {
		t.Fatalf("results.json: %d results, %v", len(back), err)
	}
	page, err := os.ReadFile(filepath.Join(dir, ReportFile))
	if err != nil {
		t.Fatal(err)
	}
	// Self-contained: the only URLs are SVG namespace names.
	if urls, ns := bytes.Count(page, []byte("://")), bytes.Count(page, []byte(`xmlns="http://www.w3.org/2000/svg"`)); urls != ns {
		t.Fatalf("report references %d URLs besides the SVG namespace", urls-ns)
	}

	// The page parses as HTML, with one svg per chart.
	doc, err := html.Parse(bytes.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	svgIDs := map[string]bool{}
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "svg" {
			for _, a := range n.Attr {
				if a.Key == "id" {
					svgIDs[a.Val] = true
				}
			}
		}
		if n.Type == html.ElementNode && (n.Data == "script" || n.Data == "link") {
			t.Errorf("external or scripted element <%s>", n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(doc)
	for _, id := range []string{"throughput-load", "latency-load", "throughput-run", "latency-run"} {
		if !svgIDs[id] {
			t.Errorf("no svg %q (have %v)", id, svgIDs)
		}
	}

	// Every svg is well-formed XML; its series have one point per sample.
	svgs := extractSVGs(t, string(page))
	if len(svgs) != 4 {
		t.Fatalf("%d svg elements, want 4", len(svgs))
	}
	want := map[string]map[string]int{
		"throughput-load": {"quorumkv workloada load": 3},
		"latency-load": {
			"quorumkv workloada load p50": 3, "quorumkv workloada load p90": 3,
			"quorumkv workloada load p99": 3, "quorumkv workloada load p99.9": 3,
		},
		"throughput-run": {
			"quorumkv workloada run": 7, "etcd workloada run": 5, `redis workloada run (<b>&"x")`: 4,
		},
		"latency-run": {
			"quorumkv workloada run p50": 7, "quorumkv workloada run p99": 7,
			"etcd workloada run p50": 5, "etcd workloada run p99": 5,
			`redis workloada run (<b>&"x") p50`: 4, `redis workloada run (<b>&"x") p99`: 4,
		},
	}
	for _, s := range svgs {
		var d svgDoc
		if err := xml.Unmarshal([]byte(s), &d); err != nil {
			t.Fatalf("svg is not well-formed XML: %v", err)
		}
		w, ok := want[d.ID]
		if !ok {
			t.Fatalf("unexpected svg %q", d.ID)
		}
		got := map[string]int{}
		for _, pl := range d.Polylines {
			pts := strings.Fields(pl.Points)
			for _, p := range pts {
				xy := strings.Split(p, ",")
				if len(xy) != 2 {
					t.Fatalf("%s: bad point %q", pl.Series, p)
				}
				for _, v := range xy {
					f, err := strconv.ParseFloat(v, 64)
					if err != nil || f < 0 || f > chartW+1 {
						t.Fatalf("%s: coordinate %q outside the chart", pl.Series, v)
					}
				}
			}
			if pl.Count != strconv.Itoa(len(pts)) {
				t.Errorf("%s: data-points %s but %d points", pl.Series, pl.Count, len(pts))
			}
			got[pl.Series] = len(pts)
		}
		if len(got) != len(w) {
			t.Errorf("%s: series %v, want %v", d.ID, got, w)
		}
		for name, n := range w {
			if got[name] != n {
				t.Errorf("%s: series %q has %d points, want %d", d.ID, name, got[name], n)
			}
		}
	}

	// Points move with the data: the throughput line rises as the samples
	// do (y grows downwards in SVG).
	var tput svgDoc
	_ = xml.Unmarshal([]byte(svgs[2]), &tput)
	pts := strings.Fields(tput.Polylines[0].Points)
	y0, _ := strconv.ParseFloat(strings.Split(pts[0], ",")[1], 64)
	y6, _ := strconv.ParseFloat(strings.Split(pts[6], ",")[1], 64)
	x0, _ := strconv.ParseFloat(strings.Split(pts[0], ",")[0], 64)
	x6, _ := strconv.ParseFloat(strings.Split(pts[6], ",")[0], 64)
	if !(y6 < y0) || !(x6 > x0) {
		t.Fatalf("first point (%v,%v), last (%v,%v): not rising over time", x0, y0, x6, y6)
	}
}

func extractSVGs(t *testing.T, page string) []string {
	t.Helper()
	var out []string
	for {
		i := strings.Index(page, "<svg")
		if i < 0 {
			return out
		}
		j := strings.Index(page[i:], "</svg>")
		if j < 0 {
			t.Fatal("unterminated svg")
		}
		out = append(out, page[i:i+j+len("</svg>")])
		page = page[i+j:]
	}
}

func TestNiceTicks(t *testing.T) {
	tests := []struct {
		max  float64
		n    int
		last float64
		step float64
	}{
		{0, 5, 1, 0.2},
		{97, 5, 100, 20},
		{1234, 8, 1400, 200},
		{0.003, 5, 0.003, 0.001},
	}
	for _, tt := range tests {
		ticks := niceTicks(tt.max, tt.n)
		last := ticks[len(ticks)-1]
		if d := last - tt.last; d > 1e-9 || d < -1e-9 || ticks[0] != 0 {
			t.Errorf("niceTicks(%v) = %v, want last %v", tt.max, ticks, tt.last)
		}
		if d := ticks[1] - tt.step; d > 1e-9 || d < -1e-9 {
			t.Errorf("niceTicks(%v) step %v, want %v", tt.max, ticks[1], tt.step)
		}
	}
}

func TestWriteSummary(t *testing.T) {
	var b strings.Builder
	if err := WriteSummary(&b, sampleResult(DBQuorumKV, PhaseRun, 2)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"== quorumkv workloada run: 200 ops in 2.00s, 99.0 ops/s, 8 threads, closed loop, r=quorum w=all n=default",
		"READ", "UPDATE", "TOTAL", "4.00ms", "9.00ms", "12.00ms",
		"errors: quorum 2, timeout 0, not_found 0, 4xx 0, other 0",
		"siblings: 3 of 100 reads (3.000%), 3 resolved, 0 write-back errors",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
}
