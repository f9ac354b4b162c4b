#!/usr/bin/env bash
# Starts three quorumkv server processes on 127.0.0.1, loads RECORDS records
# of YCSB workload A, runs it for DURATION with a separate `quorumkv bench
# run` client, and prints the run's summary line, each node's CPU seconds
# (user + system, from /proc) and its transport batching counters. Stops the
# servers on exit. Used to compare two builds: run it alternately with each.
#
# usage: scripts/procs-bench.sh QUORUMKV_BINARY [WORK_DIR]
#
# Environment: RECORDS [10000], THREADS [32], DURATION [15s].
set -euo pipefail
bin=$1
d=${2:-$(mktemp -d)}
RECORDS=${RECORDS:-10000}
THREADS=${THREADS:-32}
DURATION=${DURATION:-15s}
rm -rf "$d" && mkdir -p "$d"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT
for i in 1 2 3; do
	join=()
	[ "$i" -gt 1 ] && join=(--join 127.0.0.1:25901)
	"$bin" server --id "n$i" --data "$d/n$i" --http "127.0.0.1:2508$i" --rpc "127.0.0.1:2507$i" \
		--gossip "127.0.0.1:2590$i" --log-level warn "${join[@]}" >"$d/log$i" 2>&1 &
	pids+=($!)
	sleep 0.5
done
sleep 2
ep=127.0.0.1:25081,127.0.0.1:25082,127.0.0.1:25083
"$bin" bench load --endpoints "$ep" --workload a -p recordcount="$RECORDS" --threads "$THREADS" -q >"$d/load.out" 2>&1
"$bin" bench run --endpoints "$ep" --workload a -p recordcount="$RECORDS" --threads "$THREADS" \
	--duration "$DURATION" -q 2>&1 | grep -A4 'run:' | grep -E 'run:|TOTAL'
for i in 1 2 3; do
	cpu=$(awk '{print ($14+$15)/100}' "/proc/${pids[$((i - 1))]}/stat")
	m=$(curl -s "127.0.0.1:2508$i/metrics" | grep -E '^quorumkv_transport_(flushes|frames_out)_total' | tr '\n' ' ')
	echo "n$i cpu_seconds=$cpu $m"
done
