package node

import (
	"net/http"
	"reflect"
	"strings"
	"unicode"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/quorumkv/quorumkv/internal/buildinfo"
	"github.com/quorumkv/quorumkv/transport"
)

// collector exposes the parts' Metrics() snapshots to Prometheus. Each
// numeric field of a snapshot becomes quorumkv_<part>_<field_in_snake_case>;
// the parts stay free of Prometheus.
type collector struct{ n *Node }

// gauges are the snapshot fields that go up and down; every other field
// is a counter.
var gauges = map[string]bool{
	"PendingHints": true, "PendingBytes": true, "HintBytes": true, "DiskUsage": true,
	"Failed": true, "Members": true, "MemTableBytes": true, "BlockCacheBytes": true,
	"ReadAmp": true, "RowCacheBytes": true, "RowCacheEntries": true,
	"Partitions": true, "PartitionsDone": true, "PartitionsFailed": true, "Epoch": true,
}

// membershipMetrics is the membership part of /metrics.
type membershipMetrics struct {
	// Epoch is the committed layout's; Changing is true while a change is
	// in progress.
	Epoch    uint64
	Changing bool
	// HandOffPending is how many partitions this node still has to hand
	// off and delete; RowsDropped and PartitionsHandedOff count those
	// done.
	HandOffPending      int64
	RowsDropped         uint64
	PartitionsHandedOff uint64
}

func (n *Node) membershipMetrics() membershipMetrics {
	var m membershipMetrics
	if v := n.view.Load(); v != nil {
		m.Epoch, m.Changing = v.ch.Epoch, v.ch.Changing
	}
	lost := n.Lost()
	m.HandOffPending = int64(len(lost.Pending))
	m.RowsDropped, m.PartitionsHandedOff = lost.RowsDropped, lost.PartitionsFinished
	return m
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	// Unchecked collector: the set of series follows the snapshots.
}

// buildInfoDesc is quorumkv_build_info: 1, labelled with what binary runs.
var buildInfoDesc = prometheus.NewDesc("quorumkv_build_info",
	"The running binary: always 1, labelled with its version, commit and Go version.",
	[]string{"version", "commit", "goversion"}, nil)

func (c collector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	bi := buildinfo.Get()
	ch <- prometheus.MustNewConstMetric(buildInfoDesc, prometheus.GaugeValue, 1, bi.Version, bi.Commit, bi.GoVersion)
	emitStruct(ch, "coordinator", n.coord.Metrics(), nil)
	emitStruct(ch, "store", n.store.Metrics(), nil)
	emitStruct(ch, "handoff", n.hints.Metrics(), nil)
	if m, ok := n.tr.(interface{ Metrics() transport.Metrics }); ok {
		emitStruct(ch, "transport", m.Metrics(), nil)
	}
	emitStruct(ch, "antientropy", n.ae.Metrics(), nil)
	emitStruct(ch, "transfers", n.transfers.Metrics(), nil)
	emitStruct(ch, "membership", n.membershipMetrics(), nil)
	emitStruct(ch, "http", struct{ ConnsRefused uint64 }{n.httpCap.refused.Load()}, nil)
	emitStruct(ch, "node", readyMetrics{Ready: n.Ready() == nil}, nil)
	am := n.auth.metrics()
	for reason, v := range map[string]uint64{"missing": am.Missing, "unknown": am.Unknown, "forbidden": am.Forbidden} {
		emitStruct(ch, "http", struct{ AuthFailures uint64 }{v}, prometheus.Labels{"reason": reason})
	}
	for owner, st := range n.hints.Pending() {
		emitStruct(ch, "handoff_owner", st, prometheus.Labels{"owner": owner})
	}
	phi := prometheus.NewDesc("quorumkv_detector_phi", "Phi accrual suspicion level of a peer.", []string{"peer"}, nil)
	up := prometheus.NewDesc("quorumkv_detector_reachable", "1 when the failure detector trusts the peer.", []string{"peer"}, nil)
	for _, p := range n.detector.Snapshot() {
		ch <- prometheus.MustNewConstMetric(phi, prometheus.GaugeValue, p.Phi, p.Peer)
		v := 1.0
		if p.Suspected {
			v = 0
		}
		ch <- prometheus.MustNewConstMetric(up, prometheus.GaugeValue, v, p.Peer)
	}
}

func emitStruct(ch chan<- prometheus.Metric, part string, snap any, labels prometheus.Labels) {
	v := reflect.ValueOf(snap)
	if v.Kind() != reflect.Struct {
		return
	}
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		var x float64
		switch fv := v.Field(i); fv.Kind() {
		case reflect.Uint64, reflect.Uint32, reflect.Uint, reflect.Uint16:
			x = float64(fv.Uint())
		case reflect.Int64, reflect.Int, reflect.Int32:
			x = float64(fv.Int())
		case reflect.Float64:
			x = fv.Float()
		case reflect.Bool:
			if fv.Bool() {
				x = 1
			}
		default:
			continue
		}
		typ, suffix := prometheus.CounterValue, "_total"
		if gauges[f.Name] || f.Type.Kind() == reflect.Bool || f.Type.Kind() == reflect.Int64 && strings.Contains(f.Name, "Pending") {
			typ, suffix = prometheus.GaugeValue, ""
		}
		desc := prometheus.NewDesc("quorumkv_"+part+"_"+snake(f.Name)+suffix, part+" "+f.Name, nil, labels)
		ch <- prometheus.MustNewConstMetric(desc, typ, x)
	}
}

// snake turns CamelCase into snake_case.
func snake(s string) string {
	var b strings.Builder
	rs := []rune(s)
	for i, r := range rs {
		if unicode.IsUpper(r) {
			if i > 0 && (unicode.IsLower(rs[i-1]) || i+1 < len(rs) && unicode.IsLower(rs[i+1])) {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (n *Node) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{n})
	n.reqm.register(reg)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}
