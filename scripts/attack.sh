#!/usr/bin/env bash
# The attacks of issue 10 (bench/attack/README.md) against a freshly built
# cmd/pondsocket. Each attack runs $RUNS times, each time against a fresh
# server on 127.0.0.1 started with --test-events (the demo's slow, fail and
# crash events); connburst's server runs under `ulimit -n $CONNBURST_NOFILE`
# and capblind's with --max-connections $CAP. The report holds the medians:
#
#   bench/results/<date>-<machine>-attacks.md    summary and one section per attack
#   bench/results/tmp/<date>-<machine>-attacks/  every run's JSON and server log
#
# Every attack is bounded in size and time and stops by itself (each run
# also runs under `timeout`); all traffic stays on 127.0.0.1. With the
# defaults (30 s after each attack) it takes about 25 minutes.
#
#   scripts/attack.sh
#   RUNS=1 AFTER=5s scripts/attack.sh                 # a quick look
#   ATTACKS="pingflood mailbox" scripts/attack.sh
#   PONDSOCKET_BIN=/path/to/server scripts/attack.sh  # a server built elsewhere
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-3}
AFTER=${AFTER:-30s}
ATTACKS=${ATTACKS:-"connburst pingflood longnames bigpresence mailbox slowhandlers leak capblind presencespam badupgrade"}
CONNBURST_NOFILE=${CONNBURST_NOFILE:-1100}
CAP=${CAP:-1000}
OUT=${OUT:-bench/results}
stamp="$(date -u +%Y-%m-%d)-$(hostname -s)-attacks"
tmp="bench/results/tmp/$stamp"
rm -rf "$tmp"
mkdir -p "$tmp" "$OUT"

log() { printf '\n=== %s\n' "$*" >&2; }

log "build"
server_src="working tree at $(git rev-parse --short HEAD)"
if [ -n "${PONDSOCKET_BIN:-}" ]; then
	cp "$PONDSOCKET_BIN" "$tmp/pondsocket"
	server_src="$PONDSOCKET_BIN"
else
	go build -o "$tmp/pondsocket" ./cmd/pondsocket
fi
go build -o "$tmp/pondbench" ./cmd/pondbench

SERVER_PID=
cleanup() {
	if [ -n "$SERVER_PID" ]; then
		kill -INT "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
}
trap cleanup EXIT

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_server PORT NOFILE [FLAGS...]: a fresh server; sets SERVER_PID.
start_server() {
	local port=$1 nofile=$2
	shift 2
	(
		ulimit -n "$nofile"
		exec "$tmp/pondsocket" --addr "127.0.0.1:$port" --log-level warn --test-events "$@"
	) 2>>"$tmp/server-$port.log" &
	SERVER_PID=$!
	for _ in $(seq 1 100); do
		if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	echo "server on port $port did not become healthy" >&2
	exit 1
}

# stop_server: SIGINT, then SIGKILL after 15 s; the server may already be gone.
stop_server() {
	[ -n "$SERVER_PID" ] || return 0
	kill -INT "$SERVER_PID" 2>/dev/null || true
	for _ in $(seq 1 150); do
		kill -0 "$SERVER_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$SERVER_PID" 2>/dev/null || true
	wait "$SERVER_PID" 2>/dev/null || true
	SERVER_PID=
}

commands="$tmp/commands.md"
: >"$commands"
for a in $ATTACKS; do
	nofile=20000
	server_flags=()
	attack_flags=()
	case $a in
	connburst) nofile=$CONNBURST_NOFILE ;;
	capblind)
		server_flags=(--max-connections "$CAP")
		attack_flags=(--conns $((CAP + 100)))
		;;
	esac
	for run in $(seq 1 "$RUNS"); do
		log "$a, run $run of $RUNS"
		port=$(free_port)
		start_server "$port" "$nofile" "${server_flags[@]}"
		cmd=(pondbench attack "$a" --target "ws://127.0.0.1:$port/api/socket" --after "$AFTER" --quiet "${attack_flags[@]}")
		if [ "$run" = 1 ]; then
			printf -- '- `ulimit -n %s; pondsocket --test-events %s` then `%s`\n' "$nofile" "${server_flags[*]}" "${cmd[*]}" >>"$commands"
		fi
		if ! timeout 300 "$tmp/pondbench" attack "$a" --target "ws://127.0.0.1:$port/api/socket" --server-pid "$SERVER_PID" \
			--after "$AFTER" --quiet --json "$tmp/$a-$run.json" "${attack_flags[@]}" >"$tmp/$a-$run.md"; then
			echo "$a run $run failed; see $tmp/$a-$run.md" >&2
		fi
		stop_server
	done
done

log "report"
preamble="$tmp/preamble.md"
{
	echo "# Attacks of issue 10 — $(date -u +%Y-%m-%d)"
	echo
	echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(uname -r)."
	echo "Server: cmd/pondsocket from the $server_src, a fresh process per run, \`--test-events\`."
	echo "Each number is the median of $RUNS runs; the server is read before, at the peak and $AFTER after each attack."
	echo "What a healthy server does is in bench/attack/README.md."
	echo
	echo "Commands (the port differs per run):"
	echo
	cat "$commands"
	echo
	echo "## Summary (medians)"
	echo
} >"$preamble"
shopt -s nullglob
jsons=("$tmp"/*.json)
if [ ${#jsons[@]} -eq 0 ]; then
	echo "no attack produced a report" >&2
	exit 1
fi
"$tmp/pondbench" attack report --preamble "$preamble" --md "$OUT/$stamp.md" "${jsons[@]}"
echo "wrote $OUT/$stamp.md" >&2
