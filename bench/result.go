package bench

import (
	"time"
)

// Percentiles are latencies in microseconds, from an HdrHistogram with three
// significant digits.
type Percentiles struct {
	P50  int64   `json:"p50"`
	P90  int64   `json:"p90"`
	P99  int64   `json:"p99"`
	P999 int64   `json:"p999"`
	Max  int64   `json:"max"`
	Mean float64 `json:"mean"`
}

// OpSummary sums up one operation type of a phase.
type OpSummary struct {
	// Op is the operation name (OpRead, ...), or "TOTAL".
	Op string `json:"op"`
	// Count is the number of operations completed, failed ones included.
	Count int64 `json:"count"`
	// Errors is the number that failed.
	Errors int64 `json:"errors"`
	// OpsPerSec is the successful operations per second of the phase.
	OpsPerSec float64 `json:"ops_per_sec"`
	// Latency of the successful operations, from their intended start (the
	// schedule's under a Target, else their actual start) to their end.
	Latency Percentiles `json:"latency_us"`
	// Service time of the successful operations, from their actual start.
	// It equals Latency in a closed loop; in an open loop the difference is
	// the time operations waited for a free thread.
	Service Percentiles `json:"service_us"`
	// ErrorsByKind splits Errors.
	ErrorsByKind map[ErrorKind]int64 `json:"errors_by_kind,omitempty"`
}

// Sample is one interval (Config.ProgressInterval) of a phase's series.
type Sample struct {
	// T is the end of the interval, in seconds since the phase started.
	T float64 `json:"t"`
	// Interval is the interval's length in seconds. The last one of a phase
	// may be up to 1.5 periods long: a short tail is folded into it.
	Interval float64 `json:"interval"`
	// Ops and Errors count the operations that ended in the interval.
	Ops    int64 `json:"ops"`
	Errors int64 `json:"errors"`
	// OpsPerSec is the interval's successful operations per second.
	OpsPerSec float64 `json:"ops_per_sec"`
	// Latency of the interval's successful operations.
	Latency Percentiles `json:"latency_us"`
	// PerOp splits the interval by operation type.
	PerOp map[string]OpSample `json:"per_op,omitempty"`
}

// OpSample is one operation type in a Sample.
type OpSample struct {
	Ops    int64 `json:"ops"`
	Errors int64 `json:"errors"`
	P50    int64 `json:"p50_us"`
	P99    int64 `json:"p99_us"`
}

// SiblingStats counts quorumkv reads that met concurrent versions.
type SiblingStats struct {
	// Gets counts GET requests.
	Gets int64 `json:"gets"`
	// SiblingReads counts GETs answered with siblings (300).
	SiblingReads int64 `json:"sibling_reads"`
	// Resolutions counts merged sibling sets written back.
	Resolutions int64 `json:"resolutions"`
	// WritebackErrors counts write-backs that failed.
	WritebackErrors int64 `json:"writeback_errors"`
	// Rate is SiblingReads / Gets.
	Rate float64 `json:"rate"`
}

// Consistency is the per-request consistency a quorumkv run asked for.
type Consistency struct {
	R       string `json:"r,omitempty"`
	W       string `json:"w,omitempty"`
	N       string `json:"n,omitempty"`
	Timeout string `json:"timeout,omitempty"`
}

// Result is the outcome of one phase against one system.
type Result struct {
	// System is the DB driven (DBQuorumKV, DBEtcd, DBRedis).
	System string `json:"system"`
	// Label is Config.Label.
	Label string `json:"label,omitempty"`
	// Workload names the workload, after its last property file.
	Workload string `json:"workload"`
	// Phase is load or run.
	Phase Phase `json:"phase"`
	// Start is when the phase started.
	Start time.Time `json:"start"`
	// Elapsed is the phase's length in seconds.
	Elapsed float64 `json:"elapsed_sec"`
	// Threads is the number of worker threads.
	Threads int `json:"threads"`
	// Target is the open-loop rate in operations per second; 0 for a closed
	// loop.
	Target float64 `json:"target_ops_per_sec,omitempty"`
	// Nodes is the number of endpoints (or local nodes) driven.
	Nodes int `json:"nodes"`
	// Consistency is what quorumkv requests asked for.
	Consistency Consistency `json:"consistency"`
	// Interrupted is set when the phase was cancelled before its end.
	Interrupted bool `json:"interrupted,omitempty"`
	// Incomplete is set when the duration ended a load phase before it
	// inserted every record: the run phase will miss the rest.
	Incomplete bool `json:"incomplete,omitempty"`
	// Total sums up all operations.
	Total OpSummary `json:"total"`
	// Ops sums up each operation type, by name.
	Ops []OpSummary `json:"ops"`
	// Errors counts failed operations by kind; every kind is present.
	Errors map[ErrorKind]int64 `json:"errors"`
	// FirstErrors holds the first error message of each kind that occurred.
	FirstErrors map[ErrorKind]string `json:"first_errors,omitempty"`
	// Siblings is filled for quorumkv.
	Siblings *SiblingStats `json:"siblings,omitempty"`
	// Series has one Sample per interval.
	Series []Sample `json:"series"`
	// Properties are the workload properties in effect.
	Properties map[string]string `json:"properties"`
}

// Name identifies the result in reports: system, workload and phase, and
// the label when there is one.
func (r *Result) Name() string {
	n := r.System + " " + r.Workload + " " + string(r.Phase)
	if r.Label != "" {
		n += " (" + r.Label + ")"
	}
	return n
}

// Op returns the summary of the named operation.
func (r *Result) Op(name string) (OpSummary, bool) {
	for _, o := range r.Ops {
		if o.Op == name {
			return o, true
		}
	}
	return OpSummary{}, false
}
