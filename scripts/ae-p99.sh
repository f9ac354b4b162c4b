#!/usr/bin/env bash
# Foreground p99 with and without anti-entropy running (issue 5).
#
# Starts three quorumkv server processes on 127.0.0.1 (background
# anti-entropy off), loads RECORDS records, then alternates RUNS pairs of
# YCSB workload A runs: one plain, one while every node runs full
# anti-entropy rounds back to back (POST /v1/antientropy/run in a loop),
# far more often than the 10 s default interval. The updates of the run
# keep the trees changing, so exchanges descend and list leaves instead of
# stopping at equal roots. Prints ops/s and p99 of each run, and the
# anti-entropy counters at the end.
#
# usage: scripts/ae-p99.sh [QUORUMKV_BINARY]
set -euo pipefail
bin=${1:-quorumkv}
RECORDS=${RECORDS:-20000}
RUNS=${RUNS:-3}
DURATION=${DURATION:-15s}
THREADS=${THREADS:-32}
d=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$d"
}
trap cleanup EXIT
for i in 1 2 3; do
	join=()
	[ "$i" -gt 1 ] && join=(--join 127.0.0.1:29901)
	"$bin" server --id "n$i" --data "$d/n$i" --http "127.0.0.1:2908$i" --rpc "127.0.0.1:2807$i" \
		--gossip "127.0.0.1:2990$i" --anti-entropy-interval 1h --log-level warn "${join[@]}" >"$d/log$i" 2>&1 &
	pids+=($!)
	sleep 1
done
sleep 3
eps=127.0.0.1:29081,127.0.0.1:29082,127.0.0.1:29083
"$bin" bench load --endpoints "$eps" --workload a -p recordcount="$RECORDS" --threads "$THREADS" -w 1 -q >/dev/null 2>&1

p99() { awk '/^  TOTAL/ {print $4, $7}' "$1"; }
run() {
	"$bin" bench run --endpoints "$eps" --workload a -p recordcount="$RECORDS" --threads "$THREADS" \
		--duration "$DURATION" -q >"$1" 2>/dev/null
}
for r in $(seq "$RUNS"); do
	run "$d/plain$r"
	echo "run $r without anti-entropy: ops/s p99 = $(p99 "$d/plain$r")"
	(
		while :; do
			for i in 1 2 3; do curl -s -X POST "http://127.0.0.1:2908$i/v1/antientropy/run" >/dev/null || true; done
		done
	) &
	ae=$!
	run "$d/ae$r"
	kill "$ae"
	wait "$ae" 2>/dev/null || true
	echo "run $r with anti-entropy:    ops/s p99 = $(p99 "$d/ae$r")"
done
for i in 1 2 3; do
	echo "n$i: $(curl -s "http://127.0.0.1:2908$i/metrics" | grep -E '^quorumkv_antientropy_(exchanges|bytes_sent|bytes_received|keys_pushed|keys_pulled)_total' | tr '\n' ' ')"
done
