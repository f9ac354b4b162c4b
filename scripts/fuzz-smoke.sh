#!/usr/bin/env bash
# Runs every fuzz target of the module briefly: its seed corpus (testdata/
# and f.Add) and then FUZZTIME generated inputs. CI runs it; for a longer
# hunt: FUZZTIME=10m scripts/fuzz-smoke.sh, or one target with
# go test -run '^$' -fuzz '^FuzzName$' -fuzztime 10m ./pkg.
#
# The default is a count (1000x), not a duration: Go 1.26's fuzz
# coordinator can fail a target with a bare "context deadline exceeded"
# when a duration runs out while a worker is busy (go.dev/issue/75804,
# fixed in Go 1.27), which a loaded CI machine hits.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-1000x}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
count=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	targets=$(grep -h -o '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u || true)
	[ -n "$targets" ] || continue
	# One instrumented test binary per package, run once per target from
	# the package's directory (where its testdata/fuzz corpus is).
	go test -c -fuzz 'Fuzz' -o "$work/pkg.test" "$pkg"
	for t in $targets; do
		echo "== $pkg $t ($fuzztime)"
		(cd "$dir" && "$work/pkg.test" -test.run '^$' -test.fuzz "^${t}\$" -test.fuzztime "$fuzztime" \
			-test.fuzzcachedir "$work/cache" -test.parallel 2) 2>&1 | tail -n 2
		count=$((count + 1))
	done
done
echo "fuzz smoke: $count targets, $fuzztime each"
