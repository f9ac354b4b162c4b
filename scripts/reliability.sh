#!/usr/bin/env bash
# The simulation rows of RELIABILITY.md: for each kind of fault, and for
# all of them together, SEEDS seeds of the set workload, then the register
# workload checked by porcupine. Prints markdown table rows.
#
#   bash scripts/reliability.sh [SEEDS]     # SEEDS defaults to 200
#
# About 20 s per row on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-200}
go test -c -o /tmp/quorumkv-sim.test ./internal/sim
trap 'rm -f /tmp/quorumkv-sim.test' EXIT
run() { /tmp/quorumkv-sim.test -test.run TestSimSeeds -test.v -test.timeout 30m -sim.quiet -sim.seeds "$seeds" "$@" 2>&1 | grep -E 'seeds(,| of)' | sed 's/^ *sim_test.go:[0-9]*: //'; }
echo "| workload | fault | seeds | ops | acknowledged | lost | phantoms | resurrected | unavailable % | time to converge (mean, max) |"
echo "|---|---|---|---|---|---|---|---|---|---|"
for f in "" partition oneway crash wipe pause clock messages all; do
  line=$(run -sim.faults="$f")
  # "N seeds, F faults: O ops, A acknowledged, X failed (U% unavailable), K unknown; lost L, phantoms P, resurrected R; converged in M mean, Y max"
  echo "$line" | F="${f:-none}" perl -ne 'print "| set-add and delete | $ENV{F} | $1 | $3 | $4 | $6 | $7 | $8 | $5 | $9, $10 |\n" if /^(\d+) seeds, (\d+) faults: (\d+) ops, (\d+) acknowledged, \d+ failed \(([\d.]+)% unavailable\), \d+ unknown; lost (\d+), phantoms (\d+), resurrected (\d+); converged in (\S+) mean, (\S+) max$/'

done
echo
echo "| workload | settings | fault | seeds | ops | unavailable % | linearizable | not linearizable | undecided |"
echo "|---|---|---|---|---|---|---|---|---|"
for mode in strict default; do
  for f in "" all; do
    line=$(run -sim.workload=register -sim.register="$mode" -sim.faults="$f")
    echo "$line" | F="${f:-none}" perl -ne 'print "| register (last-write-wins) | $2 | $ENV{F} | $1 | $3 | $4 | $5 | $6 | $7 |\n" if /^(\d+) seeds of the register workload \((\w+), faults "[\w,]*"\): (\d+) ops, ([\d.]+)% unavailable; linearizable: (\d+), not linearizable: (\d+), undecided: (\d+)$/'

  done
done
