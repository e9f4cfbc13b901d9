#!/usr/bin/env bash
# Records cmd/pondsocket/default.pgo, the CPU profile go build uses to
# optimise the standalone server (profile-guided optimisation: hot calls
# inlined, interface calls on hot paths devirtualised). The workload is
# BenchmarkProfileWorkload (cmd/pondsocket/pgo_test.go): the demo server in
# the test process, pondbench driving it from others with request/reply
# between 1 000 clients and a fan-out to 5 000 members, on 127.0.0.1. Run
# it on a quiet machine after changing the hot paths, and commit the
# profile with the change; a stale profile only optimises less.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
go test -run '^$' -bench ProfileWorkload -benchtime 1x -cpuprofile cmd/pondsocket/default.pgo ./cmd/pondsocket
rm -f pondsocket.test
echo "wrote cmd/pondsocket/default.pgo" >&2
