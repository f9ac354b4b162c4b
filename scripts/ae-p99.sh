#!/usr/bin/env bash
# Foreground p99 with and without anti-entropy running (issue 5).
#
# Starts three quorumkv server processes on 127.0.0.1 (background
# anti-entropy off), loads RECORDS records, then alternates RUNS pairs of
# YCSB workload A runs: one plain, one while every node runs full
# anti-entropy rounds back to back (POST /v1/antientropy/run in a loop),
# far more often than the 10 s default interval.
#
# Before every run, n3 is stopped, DIVERGE records are written to a fresh
# table (hints cannot help: --hint-budget 1), and n3 is restarted. So n3
# misses those records, and during the anti-entropy run the exchanges move
# them, at the default 8 MiB/s cap, while the foreground workload runs. The
# plain run diverges the same way, with no exchanges, so both runs start
# from the same state. Prints ops/s and p99 of each run, and the
# anti-entropy counters at the end.
#
# usage: scripts/ae-p99.sh [QUORUMKV_BINARY]
set -euo pipefail
bin=${1:-quorumkv}
RECORDS=${RECORDS:-20000}
RUNS=${RUNS:-3}
DIVERGE=${DIVERGE:-20000}
# MODE=loop: full on-demand rounds back to back during the anti-entropy
# runs (the worst case). MODE=background: the nodes' own background loop at
# --anti-entropy-interval $INTERVAL (one partition exchange per interval);
# only the anti-entropy runs start diverged.
MODE=${MODE:-loop}
INTERVAL=${INTERVAL:-100ms}
ae_interval=1h
[ "$MODE" = background ] && ae_interval=$INTERVAL
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
start_node() {
	local i=$1
	local join=()
	[ "$i" -gt 1 ] && join=(--join 127.0.0.1:29901)
	"$bin" server --id "n$i" --data "$d/n$i" --http "127.0.0.1:2908$i" --rpc "127.0.0.1:2807$i" \
		--gossip "127.0.0.1:2990$i" --anti-entropy-interval "$ae_interval" --hint-budget 1 --log-level warn --insecure "${join[@]}" >>"$d/log$i" 2>&1 &
	pids[$((i - 1))]=$!
}
for i in 1 2 3; do
	start_node "$i"
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
diverge() { # n3 misses DIVERGE records of table $1
	kill "${pids[2]}"
	wait "${pids[2]}" 2>/dev/null || true
	sleep 4 # the others suspect n3
	"$bin" bench load --endpoints 127.0.0.1:29081,127.0.0.1:29082 --workload a -p recordcount="$DIVERGE" \
		-p table="$1" --threads "$THREADS" -q >/dev/null 2>&1
	start_node 3
	sleep 5 # n3 rejoins and is trusted again
}
for r in $(seq "$RUNS"); do
	[ "$MODE" = loop ] && diverge "plain$r"
	run "$d/plain$r"
	echo "run $r without anti-entropy: ops/s p99 = $(p99 "$d/plain$r")"
	diverge "ae$r"
	if [ "$MODE" = loop ]; then
		(
			while :; do
				for i in 1 2 3; do curl -s -X POST "http://127.0.0.1:2908$i/v1/antientropy/run" >/dev/null || true; done
			done
		) &
		ae=$!
	fi
	run "$d/ae$r"
	if [ "$MODE" = loop ]; then
		kill "$ae"
		wait "$ae" 2>/dev/null || true
	fi
	echo "run $r with anti-entropy:    ops/s p99 = $(p99 "$d/ae$r")"
done
for i in 1 2 3; do
	echo "n$i: $(curl -s "http://127.0.0.1:2908$i/metrics" | grep -E '^quorumkv_antientropy_(exchanges|bytes_sent|bytes_received|keys_pushed|keys_pulled)_total' | tr '\n' ' ')"
done
