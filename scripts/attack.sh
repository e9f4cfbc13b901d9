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
#   SERVER_REF=HEAD scripts/attack.sh                 # the server as committed (git archive)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

RUNS=${RUNS:-3}
AFTER=${AFTER:-30s}
ATTACKS=${ATTACKS:-"connburst pingflood longnames bigpresence mailbox slowhandlers leak capblind presencespam badupgrade"}
CONNBURST_NOFILE=${CONNBURST_NOFILE:-1100}
CAP=${CAP:-1000}
OUT=${OUT:-bench/results}

# log, start_run, build_server, free_port, start_server, stop_server
source scripts/servers.sh
start_run attacks

log "build"
build_server
go build -o "$tmp/pondbench" ./cmd/pondbench

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
		SERVER_NOFILE=$nofile start_server "$port" --test-events "${server_flags[@]}"
		cmd=(pondbench attack "$a" --target "ws://127.0.0.1:$port/api/socket" --after "$AFTER" --quiet "${attack_flags[@]}")
		if [ "$run" = 1 ]; then
			printf -- '- `ulimit -n %s; pondsocket --test-events %s` then `%s`\n' "$nofile" "${server_flags[*]}" "${cmd[*]}" >>"$commands"
		fi
		if ! timeout 300 "$tmp/pondbench" attack "$a" --target "ws://127.0.0.1:$port/api/socket" --server-pid "$SERVER_PID" \
			--after "$AFTER" --quiet --json "$tmp/$a-$run.json" "${attack_flags[@]}" >"$tmp/$a-$run.md"; then
			echo "$a run $run failed; see $tmp/$a-$run.md" >&2
		fi
		stop_server "$SERVER_PID"
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
