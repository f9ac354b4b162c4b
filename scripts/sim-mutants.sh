#!/usr/bin/env bash
# Mutation check of issue 12's seven defects: each patch in
# internal/sim/testdata/mutants reverts one fix. For each, this applies the
# patch to a scratch copy of the repository (a git worktree of HEAD), runs
# the seeded simulation and the cluster scripts, and prints which seeds and
# which scripts catch the defect. A patch that no longer applies is
# reported as such (regenerate it against the current code).
#
#   bash scripts/sim-mutants.sh [SEEDS] [PATCH...]   # SEEDS defaults to 1000
#
# It takes about two minutes per patch on 2 cores. Nothing in the working
# tree is touched.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seeds=${1:-1000}
shift || true
patches=("$@")
if [ ${#patches[@]} -eq 0 ]; then
  patches=(internal/sim/testdata/mutants/*.patch)
fi
work=$(mktemp -d /tmp/quorumkv-mutants.XXXXXX)
trap 'git -C "$root" worktree remove --force "$work/tree" >/dev/null 2>&1; rm -rf "$work"' EXIT
git worktree add -q --detach "$work/tree" HEAD
for p in "${patches[@]}"; do
  name=$(basename "$p" .patch)
  (
    cd "$work/tree"
    git checkout -q -- . && git clean -qfd
    if ! git apply "$root/$p"; then
      echo "$name: the patch does not apply to HEAD"
      exit 0
    fi
    caught=$(go test ./internal/sim -run TestSimSeeds -sim.seeds="$seeds" -count=1 2>&1 |
      grep -oE 'FAIL: TestSimSeeds/seeds/[0-9]+' | sed 's/.*\///' | sort -n | tr '\n' ' ')
    out=$(go test ./node -run TestScripts -count=1 2>&1)
    scripts=$(echo "$out" | grep -oE 'FAIL: TestScripts/[a-z_0-9]+' | sed 's/FAIL: TestScripts\///' | tr '\n' ' ')
    if [ -z "$scripts" ] && ! echo "$out" | grep -q '^ok'; then
      scripts="(the scripts did not run: $(echo "$out" | tail -n 3 | tr '\n' ' '))"
    fi
    echo "$name: seeds that catch it (of $seeds): ${caught:-none}"
    echo "$name: scripts that catch it: ${scripts:-none}"
  )
done
