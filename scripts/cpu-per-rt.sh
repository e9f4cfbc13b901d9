#!/usr/bin/env bash
# CPU per round trip of this tree's server and of the echo ceiling,
# measured at the same time. scripts/ratios.sh compares round trips per
# second of runs a minute apart, and on a shared 2-core VM whose speed
# drifts by a third within minutes its rounds scatter by ±10 %. Here each
# round starts both servers at once, each under its own `pondbench echo`
# (1 000 clients, one request in flight each), and reads over the same
# window, from /proc, every process's CPU time and each server's write
# system calls (one per round trip: each reply is one write). A drift of
# the machine then hits both servers alike.
#
# The figure that answers "what fraction of the ceiling's round trips per
# second" on a machine where the generator and the server share the cores
# is the estimate (S_ceiling + G_ceiling) ÷ (S_tree + G_tree), with S a
# server's and G its generator's CPU per round trip: the two processes
# split the cores, so the round trips per second go as the inverse of
# their sum. Both are printed, so the estimate can be checked.
#
#   scripts/cpu-per-rt.sh               # 5 rounds, this tree
#   ROUNDS=9 EVENT=echo_worker scripts/cpu-per-rt.sh
#
# Every run is bounded in time and stops by itself; all traffic stays on
# 127.0.0.1. About 15 s per round.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS=${ROUNDS:-5}
EVENT=${EVENT:-echo}
WINDOW=${WINDOW:-4}
OUT=${OUT:-bench/results}
# shellcheck source=scripts/servers.sh
source scripts/servers.sh
start_run cpu-per-rt

log "build: this tree, pondbench"
build_server
go build -o "$tmp/pondbench" ./cmd/pondbench

# sample PID: "cpu-ticks write-syscalls" of a process now.
sample() {
	local st io
	st=$(awk '{print $14 + $15}' "/proc/$1/stat")
	io=$(awk '/^syscw:/ {print $2}' "/proc/$1/io")
	echo "$st $io"
}

for r in $(seq 1 "$ROUNDS"); do
	log "round $r"
	pt=$(free_port)
	start_server "$pt"
	tree=$SERVER_PID
	pc=$(free_port)
	"$tmp/pondbench" ceiling-server --addr "127.0.0.1:$pc" --echo --event-loops 2 >/dev/null 2>>"$tmp/ceiling.log" &
	ceil=$!
	pids+=("$ceil")
	wait_port "$pc"
	args=(echo --conns 1000 --depth 1 --rate 0 --duration "$((WINDOW + 5))s" --quiet)
	"$tmp/pondbench" "${args[@]}" --target "ws://127.0.0.1:$pt/api/socket" --echo-event "$EVENT" --json "$tmp/tree-$r.json" >/dev/null &
	gt=$!
	"$tmp/pondbench" "${args[@]}" --target "ws://127.0.0.1:$pc/api/socket" --json "$tmp/ceil-$r.json" >/dev/null &
	gc=$!
	pids+=("$gt" "$gc")
	sleep 3 # connected and joined; the window starts in the steady state
	a=("$(sample "$tree")" "$(sample "$ceil")" "$(sample "$gt")" "$(sample "$gc")")
	sleep "$WINDOW"
	b=("$(sample "$tree")" "$(sample "$ceil")" "$(sample "$gt")" "$(sample "$gc")")
	wait "$gt" "$gc"
	forget "$gt"
	forget "$gc"
	stop_server "$tree"
	stop_server "$ceil"
	echo "$r ${a[*]} ${b[*]}" >>"$tmp/samples"
done

python3 - "$tmp/samples" "$(git rev-parse --short HEAD)" "$EVENT" "$(getconf CLK_TCK)" <<'EOF'
import statistics, sys
rows = []
hz = float(sys.argv[4])
for line in open(sys.argv[1]):
    f = [float(x) for x in line.split()[1:]]
    a, b = f[:8], f[8:]
    d = [b[i] - a[i] for i in range(8)]
    # d: tree cpu, tree writes, ceil cpu, ceil writes, gen(tree) cpu, -, gen(ceil) cpu, -
    us = lambda ticks, n: ticks / hz * 1e6 / n
    st, sc = us(d[0], d[1]), us(d[2], d[3])
    gt, gc = us(d[4], d[1]), us(d[6], d[3])
    rows.append((st, gt, sc, gc, (sc + gc) / (st + gt)))
print(f"this tree ({sys.argv[2]}, event {sys.argv[3]}) and the echo ceiling, run at the same time;")
print("µs of CPU per round trip (server S, its generator G) and the estimate (S+G of the ceiling) ÷ (S+G of the tree):")
print()
print("| round | tree S | tree G | ceiling S | ceiling G | estimate |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
for i, r in enumerate(rows, 1):
    print(f"| {i} | {r[0]:.1f} | {r[1]:.1f} | {r[2]:.1f} | {r[3]:.1f} | {r[4]:.3f} |")
m = [statistics.median(c) for c in zip(*rows)]
print(f"| median | {m[0]:.1f} | {m[1]:.1f} | {m[2]:.1f} | {m[3]:.1f} | **{m[4]:.3f}** |")
EOF
