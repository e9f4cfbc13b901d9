#!/usr/bin/env bash
# The project's test command: formatting, vet, the race-enabled test suite
# and the examples' builds. Run from anywhere:
#
#   scripts/test.sh                      # everything (go test ./...)
#   scripts/test.sh -run X ./engine/     # extra args replace ./... for go test
#
# It installs the npm packages the client drivers use (testdata/js) when they
# are missing or older than package-lock.json. Debian packages (Python's
# websockets, redis) are installed by .ci/run.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n=== %s\n' "$*"; }

step "npm packages (testdata/js)"
js=testdata/js
if [ ! -f "$js/node_modules/.package-lock.json" ] || [ "$js/package-lock.json" -nt "$js/node_modules/.package-lock.json" ]; then
	if command -v npm >/dev/null 2>&1; then
		npm ci --prefix "$js" --no-audit --no-fund
	else
		echo "npm not found: tests that drive Node.js clients will be skipped (or fail under CI=true)" >&2
	fi
else
	echo "up to date"
fi

step "gofmt"
unformatted=$(find . -name '*.go' -not -path './testdata/js/node_modules/*' -not -path './.git/*' -print0 | xargs -0 -r gofmt -l)
if [ -n "$unformatted" ]; then
	echo "these files need gofmt -w:" >&2
	echo "$unformatted" >&2
	exit 1
fi
echo "ok"

step "go vet ./..."
go vet ./...

if [ $# -gt 0 ]; then
	targets=("$@")
else
	targets=(./...)
fi
step "go test -race -count=1 -timeout 20m ${targets[*]}"
go test -race -count=1 -timeout 20m "${targets[@]}"

step "examples"
shopt -s nullglob
built=0
bindir=$(mktemp -d)
trap 'rm -rf "$bindir"' EXIT
for dir in examples/*/ examples/frameworks/*/; do
	[ -f "$dir/go.mod" ] || continue
	echo "go mod tidy -diff, go vet, go build ./... in $dir"
	(cd "$dir" && go mod tidy -diff && go vet ./... && go build -o "$bindir/" ./...)
	built=$((built + 1))
done
echo "$built example module(s) built"
