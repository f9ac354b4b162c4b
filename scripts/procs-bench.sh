#!/usr/bin/env bash
# Starts three quorumkv server processes on 127.0.0.1, loads RECORDS records
# of YCSB workload A, runs it for DURATION with a separate `quorumkv bench
# run` client, and prints the run's summary line, each node's CPU seconds
# (user + system, from /proc) and its transport batching counters. Stops the
# servers on exit. Used to compare two builds: run it alternately with each.
#
# usage: scripts/procs-bench.sh QUORUMKV_BINARY [WORK_DIR]
#
# Environment: RECORDS [10000], THREADS [32], DURATION [15s], SERVER_FLAGS
# (extra flags for every server, e.g. "--wal-min-sync-interval 2ms").
set -euo pipefail
bin=$1
d=${2:-$(mktemp -d)}
RECORDS=${RECORDS:-10000}
THREADS=${THREADS:-32}
DURATION=${DURATION:-15s}
rm -rf "$d" && mkdir -p "$d"
# shellcheck source=scripts/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
trap stop_cluster EXIT
# shellcheck disable=SC2086 # SERVER_FLAGS is a list of words
start_cluster "$bin" "$d" ${SERVER_FLAGS:-}
ep=$ENDPOINTS
"$bin" bench load --endpoints "$ep" --workload a -p recordcount="$RECORDS" --threads "$THREADS" -q >"$d/load.out" 2>&1
"$bin" bench run --endpoints "$ep" --workload a -p recordcount="$RECORDS" --threads "$THREADS" \
	--duration "$DURATION" -q 2>&1 | grep -A4 'run:' | grep -E 'run:|TOTAL'
for i in 1 2 3; do
	cpu=$(awk '{print ($14+$15)/100}' "/proc/${pids[$((i - 1))]}/stat")
	m=$(curl -s "127.0.0.1:2508$i/metrics" | grep -E '^quorumkv_(transport_(flushes|frames_out)|coordinator_(gets|puts|speculative_reads)|store_wal_syncs)_total' | tr '\n' ' ')
	echo "n$i cpu_seconds=$cpu $m"
done
