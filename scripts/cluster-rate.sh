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

# log, start_run, build_server, free_port, wait_port, start_server,
# stop_server; $pids are stopped at exit
source scripts/servers.sh
start_run cluster-rate
md="$OUT/$(date -u +%Y-%m-%d)-cluster-rate.md"
: >"$md"

build_server devkafka
go build -o "$tmp/pondbench" ./cmd/pondbench
[ -x "$tmp/devkafka" ] || go build -o "$tmp/devkafka" ./cmd/devkafka # PONDSOCKET_BIN brings no devkafka

for bus in $BUSES; do
	bport=$(free_port)
	case $bus in
	redis)
		redis-server --port "$bport" --bind 127.0.0.1 --save '' --appendonly no >/dev/null 2>&1 &
		busflag=(--redis-addr "127.0.0.1:$bport") ;;
	kafka)
		"$tmp/devkafka" --port "$bport" >/dev/null 2>&1 &
		busflag=(--kafka-brokers "127.0.0.1:$bport") ;;
	*) echo "unknown bus $bus" >&2; exit 2 ;;
	esac
	buspid=$!
	pids+=("$buspid")
	wait_port "$bport"
	for rate in $RATES; do
		pa=$(free_port) pb=$(free_port)
		start_server "$pa" --node-id a --cluster-namespace "rate-$bus-$rate" "${busflag[@]}" --message-rate -1
		na=$SERVER_PID
		start_server "$pb" --node-id b --cluster-namespace "rate-$bus-$rate" "${busflag[@]}" --message-rate -1
		nb=$SERVER_PID
		sleep 1 # heartbeats: each node knows the other before the run
		msgs=$(python3 -c "print(int($rate*$SECONDS_PER_RUN))")
		echo "=== $bus at $rate/s: $msgs messages, $RUNS run(s)" >&2
		timeout $((RUNS * (SECONDS_PER_RUN + 60))) "$tmp/pondbench" cluster \
			--target "ws://127.0.0.1:$pa/api/socket,ws://127.0.0.1:$pb/api/socket" \
			--conns $((RECEIVERS + 1)) --sender-alone --rate "$rate" --messages "$msgs" \
			--server-pid "$nb" --also-pid "$na,$buspid" --tag "$bus" --runs "$RUNS" --quiet >>"$md" || echo "pondbench failed: $bus at $rate/s" | tee -a "$md" >&2
		stop_server "$na"
		stop_server "$nb"
	done
	kill "$buspid"
	wait "$buspid" 2>/dev/null || true
	forget "$buspid"
done
echo "results: $md" >&2
