package bench_test

import (
	"fmt"
	"os"

	"github.com/quorumkv/quorumkv/bench"
)

func ExampleEncodeRecord() {
	rec := map[string][]byte{"field1": []byte("b"), "field0": []byte("a")}
	b := bench.EncodeRecord(nil, rec)
	fmt.Printf("%d bytes: % x\n", len(b), b)

	back, err := bench.DecodeRecord(b)
	fmt.Println(string(back["field0"]), string(back["field1"]), err)
	// Output:
	// 20 bytes: b1 02 06 66 69 65 6c 64 30 01 61 06 66 69 65 6c 64 31 01 62
	// a b <nil>
}

func ExampleMergeRecords() {
	// Two clients updated different fields of the same record concurrently,
	// and both changed field0.
	a := map[string][]byte{"field0": []byte("apple"), "field1": []byte("one")}
	b := map[string][]byte{"field0": []byte("banana"), "field2": []byte("two")}
	m := bench.MergeRecords(a, b)
	fmt.Println(string(m["field0"]), string(m["field1"]), string(m["field2"]))
	// Output: banana one two
}

func ExampleClassifyError() {
	for _, err := range []error{
		&bench.HTTPError{Status: 503, Code: "quorum_failed"},
		&bench.HTTPError{Status: 504, Code: "timeout"},
		&bench.HTTPError{Status: 409, Code: "too_many_siblings"},
		bench.ErrNotFound,
	} {
		fmt.Println(bench.ClassifyError(err))
	}
	// Output:
	// quorum
	// timeout
	// 4xx
	// not_found
}

func ExampleWriteSummary() {
	r := &bench.Result{
		System: "quorumkv", Workload: "workloadc", Phase: bench.PhaseRun,
		Elapsed: 2, Threads: 4,
		Total: bench.OpSummary{Op: "TOTAL", Count: 2000, OpsPerSec: 1000,
			Latency: bench.Percentiles{P50: 450, P90: 900, P99: 2100, P999: 5300, Max: 8000}},
		Ops: []bench.OpSummary{{Op: "READ", Count: 2000, OpsPerSec: 1000,
			Latency: bench.Percentiles{P50: 450, P90: 900, P99: 2100, P999: 5300, Max: 8000}}},
		Errors:   map[bench.ErrorKind]int64{},
		Siblings: &bench.SiblingStats{Gets: 2000},
	}
	_ = bench.WriteSummary(os.Stdout, r)
	// Output:
	// == quorumkv workloadc run: 2000 ops in 2.00s, 1000.0 ops/s, 4 threads, closed loop
	//   op     count  errors   ops/s    p50    p90     p99   p99.9     max
	//   READ    2000       0  1000.0  450us  900us  2.10ms  5.30ms  8.00ms
	//   TOTAL   2000       0  1000.0  450us  900us  2.10ms  5.30ms  8.00ms
	// errors: quorum 0, timeout 0, not_found 0, 4xx 0, other 0
	// siblings: 0 of 2000 reads (0.000%), 0 resolved, 0 write-back errors
}
