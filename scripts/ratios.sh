#!/usr/bin/env bash
# Throughput against the bare-gnet ceilings and an older server, measured
# interleaved so that a change in the machine's state hits every server
# alike. Each round runs, in this order and each against a fresh process:
#
#   fan-out to CONNS members: this tree, OLD_REF, the batched ceiling
#   request/reply (echo) with 1 000 clients: this tree (the demo's "echo",
#   an OnEventInline handler), this tree's "echo_worker" (the same on a
#   worker), OLD_REF, the echo ceiling
#
# and the table gives the median of ROUNDS rounds, the ratio to the ceiling
# (of the medians, and the median of the rounds' own ratios) and to OLD_REF.
# Every run is bounded in time and stops by itself; all traffic stays on
# 127.0.0.1. About 90 s per round on a 2-core machine.
#
#   scripts/ratios.sh                      # 3 rounds against fd3d0e2
#   OLD_REF=b86d6b9 ROUNDS=5 scripts/ratios.sh
#   SCENARIOS=fanout scripts/ratios.sh     # only fan-out
#   ROUNDS=11 SCENARIOS=echopair ECHO_SECONDS=6 scripts/ratios.sh
#                                          # echo and its ceiling only, each
#                                          # pair of runs seconds apart
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS=${ROUNDS:-3}
OLD_REF=${OLD_REF:-fd3d0e2}
CONNS=${CONNS:-10000}
SCENARIOS=${SCENARIOS:-"fanout echo"}
OUT=${OUT:-bench/results}
# shellcheck source=scripts/servers.sh
source scripts/servers.sh
start_run ratios

log "build: this tree, $OLD_REF, pondbench"
build_server
mv "$tmp/pondsocket" "$tmp/new"
SERVER_REF=$OLD_REF build_server
mv "$tmp/pondsocket" "$tmp/old"
go build -o "$tmp/pondbench" ./cmd/pondbench

# figure FILE: the run's first figure (deliveries/s, or round trips/s).
figure() {
	python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["figures"][0]["value"]))' "$1"
}

record() {
	echo "$1 $(figure "$tmp/r.json") $r" >>"$tmp/figures"
	echo "  $1 $(figure "$tmp/r.json")" >&2
}

# run NAME SCENARIO SERVER-BINARY PONDBENCH-ARGS...: one measured run
# against a fresh server.
run() {
	local name=$1 scenario=$2 bin=$3 port
	shift 3
	port=$(free_port)
	cp "$bin" "$tmp/pondsocket"
	start_server "$port"
	timeout 180 "$tmp/pondbench" "$scenario" --target "ws://127.0.0.1:$port/api/socket" --quiet --json "$tmp/r.json" "$@" >/dev/null
	stop_server "$SERVER_PID"
	record "$name"
}

# echo_ceiling PONDBENCH-ARGS...: the echo scenario against the bare echo
# server.
echo_ceiling() {
	local port
	port=$(free_port)
	"$tmp/pondbench" ceiling-server --addr "127.0.0.1:$port" --echo --event-loops 2 2>>"$tmp/ceiling.log" &
	local pid=$!
	pids+=("$pid")
	wait_port "$port"
	timeout 180 "$tmp/pondbench" echo --target "ws://127.0.0.1:$port/api/socket" --quiet --json "$tmp/r.json" "$@" >/dev/null
	stop_server "$pid"
	record echo-ceiling
}

fanout=(--conns "$CONNS" --messages 300 --in-flight 8)
echo_=(--conns 1000 --depth 1 --rate 0 --duration "${ECHO_SECONDS:-10}s")
# one_run NAME: one measured run of the series NAME.
one_run() {
	case $1 in
	fanout-new) run fanout-new fanout "$tmp/new" "${fanout[@]}" ;;
	fanout-old) run fanout-old fanout "$tmp/old" "${fanout[@]}" ;;
	fanout-ceiling)
		timeout 180 "$tmp/pondbench" ceiling --quiet --json "$tmp/r.json" --ceiling-batch "${fanout[@]}" >/dev/null
		record fanout-ceiling
		;;
	echo-new) run echo-new echo "$tmp/new" "${echo_[@]}" ;;
	echo-worker) run echo-worker echo "$tmp/new" "${echo_[@]}" --echo-event echo_worker ;;
	echo-old) run echo-old echo "$tmp/old" "${echo_[@]}" ;;
	echo-ceiling) echo_ceiling "${echo_[@]}" ;;
	esac
}

# Odd rounds run each scenario's series in the order below, even rounds in
# the reverse order, so that a trend within a round (the machine speeding up
# or slowing down over a minute) does not always favour the same series.
for r in $(seq 1 "$ROUNDS"); do
	log "round $r"
	for s in $SCENARIOS; do
		case $s in
		fanout) series=(fanout-new fanout-old fanout-ceiling) ;;
		echo) series=(echo-new echo-worker echo-old echo-ceiling) ;;
		echopair) series=(echo-new echo-ceiling) ;;
		*) continue ;;
		esac
		if ((r % 2 == 0)); then
			for ((i = ${#series[@]} - 1; i >= 0; i--)); do one_run "${series[i]}"; done
		else
			for name in "${series[@]}"; do one_run "$name"; done
		fi
	done
done

python3 - "$tmp/figures" "$OLD_REF" "$(git rev-parse --short HEAD)" <<'EOF'
import statistics, sys
runs, by_round = {}, {}
for line in open(sys.argv[1]):
    name, v, r = line.split()
    runs.setdefault(name, []).append(int(v))
    by_round.setdefault(name, {})[r] = int(v)
old, head = sys.argv[2], sys.argv[3]
def round_ratio(a, b):
    """the median over the rounds of a's run ÷ b's run in the same round"""
    rs = [by_round[a][r] / by_round[b][r] for r in by_round[a] if r in by_round.get(b, {})]
    return statistics.median(rs), rs
print("Ratios to the ceiling two ways: the medians' ratio, and the median of the")
print("rounds' ratios (the runs of a round are a minute apart, so a drift of the")
print("machine's speed hits them alike).")
print()
print(f"| scenario | runs | median | ÷ ceiling | ÷ ceiling per round: median; each | ÷ {old} |")
print("| --- | --- | ---: | ---: | --- | ---: |")
for s in ("fanout", "echo"):
    if f"{s}-new" not in runs:
        continue
    kinds = [k for k in ("new", "worker", "old", "ceiling") if f"{s}-{k}" in runs]
    med = {k: statistics.median(runs[f"{s}-{k}"]) for k in kinds}
    labels = {"new": f"this tree ({head})", "worker": f"this tree ({head}), handler on a worker (echo_worker)",
              "old": old, "ceiling": "ceiling"}
    for k in kinds:
        ratio_c, per, ratio_o = "—", "—", "—"
        if k != "ceiling":
            ratio_c = f"{med[k] / med['ceiling']:.2f}×"
            m, rs = round_ratio(f"{s}-{k}", f"{s}-ceiling")
            per = f"**{m:.2f}×**; " + ", ".join(f"{x:.2f}" for x in rs)
        if k in ("new", "worker"):
            ratio_o = f"{med[k] / med['old']:.2f}×"
        vals = ", ".join(f"{v/1000:.1f}k" for v in runs[f"{s}-{k}"])
        print(f"| {s}, {labels[k]} | {vals} | {med[k]/1000:.1f}k | {ratio_c} | {per} | {ratio_o} |")
EOF
