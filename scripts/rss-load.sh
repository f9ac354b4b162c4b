#!/usr/bin/env bash
# Loads RECORDS (default 1,000,000) YCSB records of about 1 KB into three
# quorumkv server processes on 127.0.0.1 (N=3, W=2 by default, fsync on),
# samples each node's RSS every 30 s, and prints each node's peak RSS
# (VmHWM) at the end. Stops the nodes it started and removes their data.
#
# usage: scripts/rss-load.sh [QUORUMKV_BINARY]
set -euo pipefail
bin=${1:-quorumkv}
RECORDS=${RECORDS:-1000000}
THREADS=${THREADS:-32}
d=$(mktemp -d)
# shellcheck source=scripts/cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
cleanup() {
	stop_cluster
	rm -rf "$d"
}
trap cleanup EXIT
start_cluster "$bin" "$d"
start=$(date +%s)
"$bin" bench load --endpoints "$ENDPOINTS" --workload a \
	-p recordcount="$RECORDS" --threads "$THREADS" -q >"$d/bench.out" 2>&1 &
load=$!
while kill -0 "$load" 2>/dev/null; do
	sleep 30
	line="t=$(($(date +%s) - start))s"
	for i in 0 1 2; do
		line="$line n$((i + 1))=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/${pids[$i]}/status")MiB"
	done
	echo "$line"
done
wait "$load" || true
grep -E "^== |TOTAL|errors:" "$d/bench.out" || true
for i in 0 1 2; do
	echo "n$((i + 1)) peak RSS: $(awk '/VmHWM/ {print int($2/1024)}' "/proc/${pids[$i]}/status") MiB"
done
echo "n1 data directory: $(du -sh "$d/n1" | cut -f1)"
