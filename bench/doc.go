// Package bench is quorumkv's load benchmark: the YCSB core workloads, run
// through the workload generators of github.com/pingcap/go-ycsb against
// quorumkv, etcd or Redis, with live progress, HdrHistogram latencies, and
// JSON and self-contained HTML reports.
//
// # Usage
//
// The command is "quorumkv bench" (cmd/quorumkv/bench.go):
//
//	quorumkv bench --local 3 --workload a --ops 100000 --threads 32 --out out/
//	quorumkv bench --endpoints 10.0.0.1:8080,10.0.0.2:8080 -P workloadb -p recordcount=100000 -r one -w all
//	quorumkv bench run --endpoints 127.0.0.1:8080 --workload f --duration 2m --target 5000
//	quorumkv bench --db etcd --endpoints 127.0.0.1:2379 --workload a --ops 100000
//	quorumkv bench --db redis --addr 127.0.0.1:6379 --workload a --ops 100000
//	quorumkv bench report --out cmp/ q/results.json etcd/results.json redis/results.json
//
// "bench" runs the load phase (insert the records) then the run phase (the
// operation mix); "bench load" and "bench run" run one of them. --local N
// starts an N-node cluster in the process for the benchmark, so one
// command measures a fresh cluster. bench/peers.sh installs etcd and Redis,
// runs the same workload against quorumkv, a 3-node etcd cluster and Redis
// on loopback, and writes a combined report.
//
// Workloads are YCSB property files: -P FILE (repeatable) and -p key=value
// as in YCSB. The six standard mixes ship as workloads/workloada to
// workloadf (embedded; --workload a or -P workloada): A 50/50 read/update,
// B 95/5 read/update, C read only, D read latest with 5% inserts, E short
// scans with 5% inserts, F read-modify-write. Records are ten 100-byte
// fields. --threads, --ops, --duration and --target override threadcount,
// operationcount, maxexecutiontime and target; --duration without --ops
// runs for that long whatever the operationcount.
//
// # Measurement
//
// Without --target each thread runs its next operation when the last one
// ends (a closed loop). With --target R, operation i is due at start+i/R
// whatever happened before it, and its latency runs from that intended
// start: when the system stalls, the operations that should have run
// during the stall carry the stall in their latency instead of silently
// not being issued (coordinated omission). The summary also keeps service
// time (from the actual start) per operation.
//
// Once a second, a progress line on stderr shows the elapsed time, a bar
// against --ops or --duration, the second's successful ops/s, p50 and p99
// per operation, and the errors so far. At the end, each phase prints, per
// operation, the count, ops/s and p50/p90/p99/p99.9/max latency from an
// HdrHistogram (1µs to 10 min, three significant digits), the errors by
// kind (quorum: 503; timeout: 504 or client timeout; not_found; 4xx;
// other) with the first message of each kind, and for quorumkv the sibling
// rate. --out DIR writes results.json (Result values) and report.html:
// summary tables and inline-SVG charts of throughput and latency
// percentiles per second, one line per system when results are combined.
//
// # The quorumkv driver
//
// QuorumKV implements go-ycsb's ycsb.DB over the HTTP API through a
// keep-alive connection pool, each thread pinned to one node. A record is
// one value (EncodeRecord: a compact, canonical length-prefixed encoding,
// 1,082 bytes for ten 100-byte fields); a YCSB table is a bucket. -r, -w,
// -n and --timeout become the r, w, n and timeout query parameters of every
// request. An update is a read-modify-write carrying causal context: GET
// (the raw value, or the JSON envelope of siblings; X-Context either way),
// merge the fields into the record read, PUT with the read's X-Context; the core workload's read-modify-write
// reuses its read. A read answered with siblings (300) merges them field by
// field (MergeRecords: deterministic, order-independent) and writes the
// merge back with the siblings' context; updates that meet siblings resolve
// them by their write. Both count as sibling resolutions. quorumkv has no
// range reads: a scan is emulated by point reads of consecutive record
// numbers, which is why the bundled workload E uses ordered inserts.
//
// etcd and Redis run through go-ycsb's own bindings (db/etcd, db/redis)
// with the same workload code. go-ycsb's etcd update writes the given
// fields only, without reading; its Redis binding stores hashes and has no
// scan, so workload E fails every scan on Redis.
//
// # go-ycsb quirks handled here
//
// go-ycsb's core workload exits the process on some bad properties, so
// Config.resolve checks them first; it reports read-modify-writes to a
// process-wide measurement, initialised once here; its generators share
// unsynchronised state between threads, so the workload code of all
// threads runs under one lock while their DB calls run concurrently; its
// Zipfian key chooser reaches one key past the loaded records, so the run
// phase narrows insertcount by one for it (YCSB proper redraws such keys);
// and it prints a line about the key distribution to stdout.
package bench
