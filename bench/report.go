package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
)

// resultsVersion is the version of the results file format.
const resultsVersion = 1

// The files WriteReport writes into its directory.
const (
	ResultsFile = "results.json"
	ReportFile  = "report.html"
)

// resultsFile is the JSON document of a results file.
type resultsFile struct {
	Version int       `json:"version"`
	Tool    string    `json:"tool"`
	Results []*Result `json:"results"`
}

// WriteJSON writes results as an indented JSON results file.
func WriteJSON(w io.Writer, results []*Result) error {
	if len(results) == 0 {
		return ErrNoResults
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(resultsFile{Version: resultsVersion, Tool: "quorumkv bench", Results: results}); err != nil {
		return fmt.Errorf("bench: write json: %w", err)
	}
	return nil
}

// ReadJSON reads a results file written by WriteJSON.
func ReadJSON(r io.Reader) ([]*Result, error) {
	var f resultsFile
	dec := json.NewDecoder(r)
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResultFile, err)
	}
	if f.Version != resultsVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBadResultFile, f.Version, resultsVersion)
	}
	if len(f.Results) == 0 {
		return nil, fmt.Errorf("%w: no results", ErrBadResultFile)
	}
	for i, r := range f.Results {
		if r == nil {
			return nil, fmt.Errorf("%w: result %d is null", ErrBadResultFile, i)
		}
	}
	return f.Results, nil
}

// ReadResultsFile reads the results file at path; a directory stands for
// the ResultsFile inside it.
func ReadResultsFile(path string) ([]*Result, error) {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, ResultsFile)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("bench: read results: %w", err)
	}
	defer f.Close()
	res, err := ReadJSON(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return res, nil
}

// WriteReport writes results as ResultsFile and ReportFile into dir,
// creating it if needed.
func WriteReport(dir string, results []*Result) error {
	if len(results) == 0 {
		return ErrNoResults
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bench: report dir: %w", err)
	}
	write := func(name string, fn func(io.Writer) error) error {
		path := filepath.Join(dir, name)
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("bench: report: %w", err)
		}
		if err := fn(f); err != nil {
			f.Close()
			return err
		}
		if err := f.Close(); err != nil {
			return fmt.Errorf("bench: report: %w", err)
		}
		return nil
	}
	if err := write(ResultsFile, func(w io.Writer) error { return WriteJSON(w, results) }); err != nil {
		return err
	}
	return write(ReportFile, func(w io.Writer) error { return WriteHTML(w, results) })
}

// WriteSummary writes a plain-text summary of one result: a table of the
// operations with their latency percentiles, the errors by kind and, for
// quorumkv, the sibling rate.
func WriteSummary(w io.Writer, r *Result) error {
	var b strings.Builder
	loop := "closed loop"
	if r.Target > 0 {
		loop = fmt.Sprintf("open loop at %.0f ops/s", r.Target)
	}
	fmt.Fprintf(&b, "== %s: %d ops in %.2fs, %.1f ops/s, %d threads, %s",
		r.Name(), r.Total.Count, r.Elapsed, r.Total.OpsPerSec, r.Threads, loop)
	if c := r.Consistency; c != (Consistency{}) {
		fmt.Fprintf(&b, ", r=%s w=%s n=%s", orDefault(c.R), orDefault(c.W), orDefault(c.N))
	}
	if r.Interrupted {
		b.WriteString(" (interrupted)")
	}
	if r.Incomplete {
		b.WriteString(" (incomplete: the duration ended the load before every record was inserted)")
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	rows := append(append([]OpSummary{}, r.Ops...), r.Total)
	width := 0
	for _, o := range rows {
		width = max(width, len(o.Op))
	}
	// Left-align the op names inside the right-aligned table.
	fmt.Fprintf(tw, "%-*s\tcount\terrors\tops/s\tp50\tp90\tp99\tp99.9\tmax\t\n", width, "op")
	for _, o := range rows {
		l := o.Latency
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t\n", width, o.Op, o.Count, o.Errors, o.OpsPerSec,
			formatMicros(l.P50), formatMicros(l.P90), formatMicros(l.P99), formatMicros(l.P999), formatMicros(l.Max))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	b.WriteString("errors:")
	for i, k := range ErrorKinds {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, " %s %d", k, r.Errors[k])
	}
	b.WriteString("\n")
	for _, k := range ErrorKinds {
		if msg, ok := r.FirstErrors[k]; ok {
			fmt.Fprintf(&b, "  first %s error: %s\n", k, msg)
		}
	}
	if s := r.Siblings; s != nil {
		fmt.Fprintf(&b, "siblings: %d of %d reads (%.3f%%), %d resolved, %d write-back errors\n",
			s.SiblingReads, s.Gets, 100*s.Rate, s.Resolutions, s.WritebackErrors)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func orDefault(s string) string {
	if s == "" {
		return "default"
	}
	return s
}
