#!/usr/bin/env bash
# Runs one YCSB workload against quorumkv (a local 3-node cluster), a 3-node
# etcd cluster and a single Redis, all on 127.0.0.1, and writes each
# system's results plus a combined report (results.json, report.html,
# summary.txt) into OUT_DIR. Installs etcd-server and redis-server with
# apt-get when they are missing. Stops everything it started on exit.
#
# usage: bench/peers.sh [OUT_DIR]
#
# Environment (defaults in brackets):
#   WORKLOAD  bundled workload a..f, or a property file   [a]
#   RECORDS   recordcount                                  [10000]
#   OPS       operations of the run phase                  [50000]
#   THREADS   worker threads                               [16]
#   DURATION  cap on each phase                            [60s]
#   TARGET    open-loop rate in ops/s, 0 for closed loop   [0]
#   QKV_FLAGS extra flags for quorumkv only, e.g. "-r quorum -w quorum"
#   QUORUMKV  a quorumkv binary to use instead of building one
#   RUN_LIMIT seconds after which one system's run is killed [600]
#   PORT_BASE etcd clients on BASE+1..3, etcd peers on BASE+11..13,
#             Redis on BASE+20                             [23700]
set -euo pipefail

WORKLOAD=${WORKLOAD:-a}
RECORDS=${RECORDS:-10000}
OPS=${OPS:-50000}
THREADS=${THREADS:-16}
DURATION=${DURATION:-60s}
TARGET=${TARGET:-0}
QKV_FLAGS=${QKV_FLAGS:-}
PORT_BASE=${PORT_BASE:-23700}

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-bench-peers-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
pids=()
made_policy=0

cleanup() {
	local status=$?
	for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	if [ "$made_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
	rm -rf "$work"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "peers.sh: $*" >&2; }

install_peers() {
	if command -v etcd >/dev/null && command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
		return
	fi
	if [ "$(id -u)" != 0 ]; then
		log "etcd or redis-server missing and not root: apt-get install -y etcd-server redis-server"
		exit 1
	fi
	# Keep the packages from starting their system services.
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod +x /usr/sbin/policy-rc.d
		made_policy=1
	fi
	log "installing etcd-server and redis-server"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server redis-server >/dev/null
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # wait_for WHAT SECONDS COMMAND...
	local what=$1 secs=$2
	shift 2
	for _ in $(seq $((secs * 10))); do
		if "$@" >/dev/null 2>&1; then return 0; fi
		sleep 0.1
	done
	log "$what did not come up in ${secs}s"
	return 1
}

install_peers

ports=()
for i in 1 2 3; do ports+=($((PORT_BASE + i)) $((PORT_BASE + 10 + i))); done
ports+=($((PORT_BASE + 20)))
for p in "${ports[@]}"; do
	port_free "$p" || { log "port $p on 127.0.0.1 is in use; set PORT_BASE"; exit 1; }
done

if [ -n "${QUORUMKV:-}" ]; then
	bin=$QUORUMKV
else
	log "building quorumkv"
	(cd "$root" && go build -o "$work/quorumkv" ./cmd/quorumkv)
	bin=$work/quorumkv
fi

# etcd: three members on loopback.
cluster=""
for i in 1 2 3; do cluster+="${cluster:+,}e$i=http://127.0.0.1:$((PORT_BASE + 10 + i))"; done
endpoints=""
for i in 1 2 3; do
	client=http://127.0.0.1:$((PORT_BASE + i))
	peer=http://127.0.0.1:$((PORT_BASE + 10 + i))
	endpoints+="${endpoints:+,}127.0.0.1:$((PORT_BASE + i))"
	etcd --name "e$i" --data-dir "$work/etcd$i" \
		--listen-client-urls "$client" --advertise-client-urls "$client" \
		--listen-peer-urls "$peer" --initial-advertise-peer-urls "$peer" \
		--initial-cluster "$cluster" --initial-cluster-state new \
		--initial-cluster-token quorumkv-bench --log-level warn \
		>"$out/etcd$i.log" 2>&1 &
	pids+=($!)
done

# Redis: one server, no persistence.
redis_port=$((PORT_BASE + 20))
redis-server --bind 127.0.0.1 --port "$redis_port" --save '' --appendonly no \
	--dir "$work" --daemonize no >"$out/redis.log" 2>&1 &
pids+=($!)

for i in 1 2 3; do
	wait_for "etcd e$i" 30 curl -fsS "http://127.0.0.1:$((PORT_BASE + i))/health"
done
wait_for redis 15 redis-cli -h 127.0.0.1 -p "$redis_port" ping

common=(--workload "$WORKLOAD" -p "recordcount=$RECORDS" --ops "$OPS" --threads "$THREADS" --duration "$DURATION")
if [ "$TARGET" != 0 ]; then common+=(--target "$TARGET"); fi
# DURATION bounds each phase; RUN_LIMIT is a safety net per system.
limit=${RUN_LIMIT:-600}

results=()
run_one() { # run_one NAME FLAGS...
	local name=$1
	shift
	log "running $name"
	if timeout --kill-after=15 "$limit" "$bin" bench "$@" "${common[@]}" --out "$out/$name" \
		>"$out/$name.txt"; then
		results+=("$out/$name/results.json")
	else
		log "$name failed (exit $?); see $out/$name.txt"
		if [ -f "$out/$name/results.json" ]; then results+=("$out/$name/results.json"); fi
	fi
	cat "$out/$name.txt"
}

# shellcheck disable=SC2086
run_one quorumkv --local 3 $QKV_FLAGS
run_one etcd --db etcd --endpoints "$endpoints"
run_one redis --db redis --addr "127.0.0.1:$redis_port"

if [ "${#results[@]}" -eq 0 ]; then
	log "no results"
	exit 1
fi
"$bin" bench report --out "$out" "${results[@]}" >"$out/summary.txt"
log "report: $out/report.html"
