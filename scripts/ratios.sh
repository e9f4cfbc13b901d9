#!/usr/bin/env bash
# Throughput against the bare-gnet ceilings and an older server, measured
# interleaved so that a change in the machine's state hits every server
# alike. Each round runs, in this order and each against a fresh process:
#
#   fan-out to CONNS members: this tree, OLD_REF, the batched ceiling
#   request/reply (echo) with 1 000 clients: this tree, OLD_REF, the echo ceiling
#
# and the table gives the median of ROUNDS rounds, the ratio to the ceiling
# and to OLD_REF. Every run is bounded in time and stops by itself; all
# traffic stays on 127.0.0.1. About 75 s per round on a 2-core machine.
#
#   scripts/ratios.sh                      # 3 rounds against fd3d0e2
#   OLD_REF=b86d6b9 ROUNDS=5 scripts/ratios.sh
#   SCENARIOS=fanout scripts/ratios.sh     # only fan-out
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

ROUNDS=${ROUNDS:-3}
OLD_REF=${OLD_REF:-fd3d0e2}
CONNS=${CONNS:-10000}
SCENARIOS=${SCENARIOS:-"fanout echo"}
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

echo "=== build: this tree, $OLD_REF, pondbench" >&2
go build -o "$tmp/new" ./cmd/pondsocket
mkdir "$tmp/src"
git archive "$OLD_REF" | tar -x -C "$tmp/src"
(cd "$tmp/src" && go build -o ../old ./cmd/pondsocket)
go build -o "$tmp/pondbench" ./cmd/pondbench

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# serve BIN ARGS...: starts a server on a free port; sets PORT and PID.
serve() {
	PORT=$(free_port)
	"$@" --addr "127.0.0.1:$PORT" >"$tmp/server.log" 2>&1 &
	PID=$!
	pids+=("$PID")
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "server did not start: $*" >&2
	exit 1
}

stop() {
	kill -INT "$PID" 2>/dev/null || true
	wait "$PID" 2>/dev/null || true
}

# figure FILE: the run's first figure (deliveries/s, or round trips/s).
figure() {
	python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["figures"][0]["value"]))' "$1"
}

# run NAME SCENARIO SERVER... -- PONDBENCH-ARGS...: one measured run.
run() {
	local name=$1 scenario=$2
	shift 2
	local server=()
	while [ "$1" != "--" ]; do server+=("$1"); shift; done
	shift
	serve "${server[@]}"
	timeout 180 "$tmp/pondbench" "$scenario" --target "ws://127.0.0.1:$PORT/api/socket" --quiet --json "$tmp/r.json" "$@" >/dev/null
	stop
	echo "$name $(figure "$tmp/r.json")" >>"$tmp/figures"
	echo "  $name $(figure "$tmp/r.json")" >&2
}

fanout=(--conns "$CONNS" --messages 300 --in-flight 8)
echo_=(--conns 1000 --depth 1 --rate 0 --duration 10s)
for r in $(seq 1 "$ROUNDS"); do
	echo "=== round $r" >&2
	for s in $SCENARIOS; do
		case $s in
		fanout)
			run fanout-new fanout "$tmp/new" --log-level warn -- "${fanout[@]}"
			run fanout-old fanout "$tmp/old" --log-level warn -- "${fanout[@]}"
			timeout 180 "$tmp/pondbench" ceiling --quiet --json "$tmp/r.json" --ceiling-batch "${fanout[@]}" >/dev/null
			echo "fanout-ceiling $(figure "$tmp/r.json")" >>"$tmp/figures"
			echo "  fanout-ceiling $(figure "$tmp/r.json")" >&2
			;;
		echo)
			run echo-new echo "$tmp/new" --log-level warn -- "${echo_[@]}"
			run echo-old echo "$tmp/old" --log-level warn -- "${echo_[@]}"
			run echo-ceiling echo "$tmp/pondbench" ceiling-server --echo --event-loops 2 -- "${echo_[@]}"
			;;
		esac
	done
done

python3 - "$tmp/figures" "$OLD_REF" "$(git rev-parse --short HEAD)" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, v = line.split()
    runs.setdefault(name, []).append(int(v))
old, head = sys.argv[2], sys.argv[3]
print(f"| scenario | runs | median | ÷ ceiling | ÷ {old} |")
print("| --- | --- | ---: | ---: | ---: |")
for s in ("fanout", "echo"):
    if f"{s}-new" not in runs:
        continue
    med = {k: statistics.median(runs[f"{s}-{k}"]) for k in ("new", "old", "ceiling")}
    for k, label in (("new", f"this tree ({head})"), ("old", old), ("ceiling", "ceiling")):
        ratio_c = f"{med[k] / med['ceiling']:.2f}×" if k != "ceiling" else "—"
        ratio_o = f"{med[k] / med['old']:.2f}×" if k == "new" else "—"
        vals = ", ".join(f"{v/1000:.1f}k" for v in runs[f"{s}-{k}"])
        print(f"| {s}, {label} | {vals} | {med[k]/1000:.1f}k | {ratio_c} | {ratio_o} |")
EOF
