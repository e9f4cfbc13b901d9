#!/usr/bin/env bash
# Cross-node throughput (issue 11): one sender on node A, 100 receivers on
# node B, at fixed rates, over Redis and over Kafka (cmd/devkafka). For each
# bus and rate, `pondbench cluster --sender-alone --rate R` is run RUNS times
# (medians) against two fresh cmd/pondsocket nodes; the table to read is
# "missing" (must be 0) and "remote latency p99" per rate. Everything stays
# on 127.0.0.1, every pondbench call runs under `timeout`, and the script
# stops only the processes it started.
#
#   scripts/cluster-rate.sh                        # quiet machine: the full sweep
#   RATES="200" RUNS=1 SECONDS_PER_RUN=2 scripts/cluster-rate.sh   # smoke
#   BUSES=redis RATES="1000 2000 3000" scripts/cluster-rate.sh
#
# Writes OUT/<date>-cluster-rate.md (default OUT=bench/results/tmp).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-3}
RATES=${RATES:-"500 1000 1500 2000 3000 4000"}
BUSES=${BUSES:-"redis kafka"}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}
RECEIVERS=${RECEIVERS:-100}
OUT=${OUT:-bench/results/tmp}
bin=$(mktemp -d)
mkdir -p "$OUT"
md="$OUT/$(date -u +%Y-%m-%d)-cluster-rate.md"
: >"$md"

go build -o "$bin/pondsocket" ./cmd/pondsocket
go build -o "$bin/pondbench" ./cmd/pondbench
go build -o "$bin/devkafka" ./cmd/devkafka

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$bin"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "port $1 never opened" >&2; return 1; }

for bus in $BUSES; do
	bport=$(free_port)
	case $bus in
	redis)
		redis-server --port "$bport" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 &
		busflag=(--redis-addr "127.0.0.1:$bport") ;;
	kafka)
		"$bin/devkafka" --port "$bport" >/dev/null 2>&1 &
		busflag=(--kafka-brokers "127.0.0.1:$bport") ;;
	*) echo "unknown bus $bus" >&2; exit 2 ;;
	esac
	buspid=$!
	pids+=("$buspid")
	wait_port "$bport"
	for rate in $RATES; do
		pa=$(free_port) pb=$(free_port)
		"$bin/pondsocket" --addr "127.0.0.1:$pa" --node-id a --cluster-namespace "rate-$bus-$rate" "${busflag[@]}" --message-rate -1 --log-level warn &
		na=$!
		"$bin/pondsocket" --addr "127.0.0.1:$pb" --node-id b --cluster-namespace "rate-$bus-$rate" "${busflag[@]}" --message-rate -1 --log-level warn &
		nb=$!
		pids+=("$na" "$nb")
		wait_port "$pa"
		wait_port "$pb"
		sleep 1 # heartbeats: each node knows the other before the run
		msgs=$(python3 -c "print(int($rate*$SECONDS_PER_RUN))")
		echo "=== $bus at $rate/s: $msgs messages, $RUNS run(s)" >&2
		timeout $((RUNS * (SECONDS_PER_RUN + 60))) "$bin/pondbench" cluster \
			--target "ws://127.0.0.1:$pa/api/socket,ws://127.0.0.1:$pb/api/socket" \
			--conns $((RECEIVERS + 1)) --sender-alone --rate "$rate" --messages "$msgs" \
			--server-pid "$nb" --also-pid "$na,$buspid" --tag "$bus" --runs "$RUNS" --quiet >>"$md" || echo "pondbench failed: $bus at $rate/s" | tee -a "$md" >&2
		kill "$na" "$nb"
		wait "$na" "$nb" 2>/dev/null || true
	done
	kill "$buspid"
	wait "$buspid" 2>/dev/null || true
done
echo "results: $md" >&2
