package bench

import (
	"fmt"
	"html"
	"io"
	"math"
	"strings"
)

// palette colours series by result.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"}

// WriteHTML writes a self-contained HTML report of results: no script and
// no external resource, charts as inline SVG. Results are grouped by phase;
// each phase gets summary tables, a chart of throughput over time with one
// line per result, and a chart of latency percentiles over time (p50, p90,
// p99 and p99.9 for a single result; p50 dashed and p99 solid per result
// when comparing). Every line is a <polyline> with one point per Sample,
// named by its data-series attribute.
func WriteHTML(w io.Writer, results []*Result) error {
	if len(results) == 0 {
		return ErrNoResults
	}
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>quorumkv bench report</title>\n<style>\n")
	b.WriteString(`body{font-family:system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em}
th,td{border:1px solid #ccc;padding:2px 8px;text-align:right;font-variant-numeric:tabular-nums}
th{background:#f3f3f3}
.l{text-align:left}
svg{display:block;margin:0.5em 0 1.5em}
`)
	b.WriteString("</style>\n</head>\n<body>\n<h1>quorumkv bench report</h1>\n")
	fmt.Fprintf(&b, "<p>%d result(s). Latencies run from each operation's intended start (open loop) or actual start (closed loop); percentiles come from HdrHistograms of successful operations.</p>\n", len(results))

	var phases []Phase
	byPhase := map[Phase][]*Result{}
	for _, r := range results {
		if _, ok := byPhase[r.Phase]; !ok {
			phases = append(phases, r.Phase)
		}
		byPhase[r.Phase] = append(byPhase[r.Phase], r)
	}
	for _, ph := range phases {
		rs := byPhase[ph]
		id := sanitizeID(string(ph))
		fmt.Fprintf(&b, "<h2>Phase %s</h2>\n", esc(string(ph)))
		writeSummaryTable(&b, rs)
		writeOpsTable(&b, rs)
		writeErrorsTable(&b, rs)

		var tput []chartSeries
		for i, r := range rs {
			s := chartSeries{name: r.Name(), color: palette[i%len(palette)]}
			for _, p := range r.Series {
				s.xs = append(s.xs, p.T)
				s.ys = append(s.ys, p.OpsPerSec)
			}
			tput = append(tput, s)
		}
		b.WriteString("<h3>Throughput</h3>\n")
		writeChart(&b, "throughput-"+id, "successful ops/s", tput)

		var lat []chartSeries
		type pct struct {
			name string
			get  func(Percentiles) int64
			dash string
		}
		pcts := []pct{
			{"p50", func(p Percentiles) int64 { return p.P50 }, "6,4"},
			{"p99", func(p Percentiles) int64 { return p.P99 }, ""},
		}
		single := len(rs) == 1
		if single {
			pcts = []pct{
				{"p50", func(p Percentiles) int64 { return p.P50 }, ""},
				{"p90", func(p Percentiles) int64 { return p.P90 }, ""},
				{"p99", func(p Percentiles) int64 { return p.P99 }, ""},
				{"p99.9", func(p Percentiles) int64 { return p.P999 }, ""},
			}
		}
		for i, r := range rs {
			for j, pc := range pcts {
				color := palette[i%len(palette)]
				if single {
					color = palette[j%len(palette)]
				}
				s := chartSeries{name: r.Name() + " " + pc.name, color: color, dash: pc.dash}
				for _, p := range r.Series {
					s.xs = append(s.xs, p.T)
					s.ys = append(s.ys, float64(pc.get(p.Latency))/1000)
				}
				lat = append(lat, s)
			}
		}
		b.WriteString("<h3>Latency</h3>\n")
		writeChart(&b, "latency-"+id, "latency (ms)", lat)
	}
	b.WriteString("</body>\n</html>\n")
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("bench: write html: %w", err)
	}
	return nil
}

func esc(s string) string { return html.EscapeString(s) }

func sanitizeID(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, s)
}

func ms(us int64) string { return fmt.Sprintf("%.2f", float64(us)/1000) }

func writeSummaryTable(b *strings.Builder, rs []*Result) {
	b.WriteString("<table>\n<tr><th class=\"l\">result</th><th>threads</th><th>target ops/s</th><th>nodes</th><th>r/w/n</th><th>elapsed s</th><th>ops</th><th>errors</th><th>ops/s</th><th>p50 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th><th>sibling rate</th></tr>\n")
	for _, r := range rs {
		target := "closed"
		if r.Target > 0 {
			target = fmt.Sprintf("%.0f", r.Target)
		}
		rwn := "-"
		if c := r.Consistency; r.System == DBQuorumKV {
			rwn = orDefault(c.R) + "/" + orDefault(c.W) + "/" + orDefault(c.N)
		}
		sib := "-"
		if r.Siblings != nil {
			sib = fmt.Sprintf("%.3f%%", 100*r.Siblings.Rate)
		}
		l := r.Total.Latency
		fmt.Fprintf(b, "<tr><td class=\"l\">%s</td><td>%d</td><td>%s</td><td>%d</td><td>%s</td><td>%.2f</td><td>%d</td><td>%d</td><td>%.1f</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
			esc(r.Name()), r.Threads, target, r.Nodes, esc(rwn), r.Elapsed, r.Total.Count, r.Total.Errors,
			r.Total.OpsPerSec, ms(l.P50), ms(l.P99), ms(l.P999), ms(l.Max), sib)
	}
	b.WriteString("</table>\n")
}

func writeOpsTable(b *strings.Builder, rs []*Result) {
	b.WriteString("<table>\n<tr><th class=\"l\">result</th><th class=\"l\">op</th><th>count</th><th>errors</th><th>ops/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th><th>service p99 ms</th></tr>\n")
	for _, r := range rs {
		for _, o := range r.Ops {
			l := o.Latency
			fmt.Fprintf(b, "<tr><td class=\"l\">%s</td><td class=\"l\">%s</td><td>%d</td><td>%d</td><td>%.1f</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>\n",
				esc(r.Name()), esc(o.Op), o.Count, o.Errors, o.OpsPerSec,
				ms(l.P50), ms(l.P90), ms(l.P99), ms(l.P999), ms(l.Max), ms(o.Service.P99))
		}
	}
	b.WriteString("</table>\n")
}

func writeErrorsTable(b *strings.Builder, rs []*Result) {
	b.WriteString("<table>\n<tr><th class=\"l\">errors</th>")
	for _, k := range ErrorKinds {
		fmt.Fprintf(b, "<th>%s</th>", esc(string(k)))
	}
	b.WriteString("</tr>\n")
	for _, r := range rs {
		fmt.Fprintf(b, "<tr><td class=\"l\">%s</td>", esc(r.Name()))
		for _, k := range ErrorKinds {
			fmt.Fprintf(b, "<td>%d</td>", r.Errors[k])
		}
		b.WriteString("</tr>\n")
	}
	b.WriteString("</table>\n")
}

// chartSeries is one line of a chart.
type chartSeries struct {
	name   string
	color  string
	dash   string // stroke-dasharray, "" for solid
	xs, ys []float64
}

// Chart geometry, in SVG user units.
const (
	chartW      = 900
	plotH       = 280
	marginL     = 70
	marginR     = 20
	marginT     = 16
	marginB     = 40
	legendLineH = 18
)

// writeChart draws series as polylines over time (x in seconds) on a linear
// y axis from zero, with grid, tick labels and a legend.
func writeChart(b *strings.Builder, id, yLabel string, ss []chartSeries) {
	maxX, maxY := 1.0, 0.0
	for _, s := range ss {
		for i := range s.xs {
			maxX = math.Max(maxX, s.xs[i])
			maxY = math.Max(maxY, s.ys[i])
		}
	}
	yTicks := niceTicks(maxY, 5)
	top := yTicks[len(yTicks)-1]
	xTicks := niceTicks(maxX, 8)
	right := xTicks[len(xTicks)-1]
	plotW := float64(chartW - marginL - marginR)
	px := func(x float64) float64 { return marginL + x/right*plotW }
	py := func(y float64) float64 { return marginT + plotH - y/top*plotH }
	height := marginT + plotH + marginB + legendLineH*len(ss) + 8

	fmt.Fprintf(b, "<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"%s\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" font-family=\"sans-serif\" font-size=\"11\">\n",
		esc(id), chartW, height, chartW, height)
	fmt.Fprintf(b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", chartW, height)
	for _, t := range yTicks {
		y := py(t)
		fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#e5e5e5\"/>\n", marginL, y, chartW-marginR, y)
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", marginL-6, y+4, esc(tickLabel(t)))
	}
	for _, t := range xTicks {
		x := px(t)
		fmt.Fprintf(b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#f0f0f0\"/>\n", x, marginT, x, marginT+plotH)
		fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>\n", x, marginT+plotH+16, esc(tickLabel(t)))
	}
	fmt.Fprintf(b, "<rect x=\"%d\" y=\"%d\" width=\"%.0f\" height=\"%d\" fill=\"none\" stroke=\"#999999\"/>\n", marginL, marginT, plotW, plotH)
	fmt.Fprintf(b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">time (s)</text>\n", marginL+plotW/2, marginT+plotH+32)
	fmt.Fprintf(b, "<text x=\"14\" y=\"%.1f\" text-anchor=\"middle\" transform=\"rotate(-90 14 %.1f)\">%s</text>\n",
		float64(marginT)+plotH/2, float64(marginT)+plotH/2, esc(yLabel))
	for _, s := range ss {
		var pts strings.Builder
		for i := range s.xs {
			if i > 0 {
				pts.WriteByte(' ')
			}
			fmt.Fprintf(&pts, "%.1f,%.1f", px(s.xs[i]), py(s.ys[i]))
		}
		dash := ""
		if s.dash != "" {
			dash = fmt.Sprintf(" stroke-dasharray=\"%s\"", esc(s.dash))
		}
		fmt.Fprintf(b, "<polyline data-series=\"%s\" data-points=\"%d\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\"%s points=\"%s\"/>\n",
			esc(s.name), len(s.xs), esc(s.color), dash, pts.String())
		if len(s.xs) < 30 {
			for i := range s.xs {
				fmt.Fprintf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.2\" fill=\"%s\"/>\n", px(s.xs[i]), py(s.ys[i]), esc(s.color))
			}
		}
	}
	for i, s := range ss {
		y := marginT + plotH + marginB + legendLineH*i + 10
		dash := ""
		if s.dash != "" {
			dash = fmt.Sprintf(" stroke-dasharray=\"%s\"", esc(s.dash))
		}
		fmt.Fprintf(b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/>\n",
			marginL, y, marginL+28, y, esc(s.color), dash)
		fmt.Fprintf(b, "<text x=\"%d\" y=\"%d\">%s</text>\n", marginL+36, y+4, esc(s.name))
	}
	b.WriteString("</svg>\n")
}

// niceTicks returns ticks from 0 to at least max with a 1-2-5 step, about n
// of them.
func niceTicks(max float64, n int) []float64 {
	if !(max > 0) || math.IsInf(max, 0) {
		max = 1
	}
	raw := max / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	step := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			step = m * mag
			break
		}
	}
	var ticks []float64
	for i := 0; ; i++ {
		t := float64(i) * step
		ticks = append(ticks, t)
		if t >= max {
			break
		}
	}
	return ticks
}

func tickLabel(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 1:
		return fmt.Sprintf("%.1f", v)
	}
	return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.4f", v), "0"), ".")
}
