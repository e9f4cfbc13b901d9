#!/usr/bin/env bash
# The measurements of issue 13 against a freshly built cmd/pondsocket, all
# on 127.0.0.1, a fresh server per run, runs of the compared set-ups
# interleaved:
#
#  1. auth: `pondbench conns` ($CONNS connections, $ROOMS rooms) with no
#     authentication, with HS256 JWTs and with RS256 JWTs (key pair from
#     `openssl genpkey`); every connection carries its own token (user
#     u<i>, from bench/tokens via --query-file). Prints the median connect
#     rate of each and its ratio to no auth.
#  2. fanout: a $MEMBERS-member channel, $MESSAGES messages with at most
#     $IN_FLIGHT in flight, published by a member's BROADCAST (client) or
#     by POST /api/broadcast on the WebSocket port (api, `--publish api`)
#     or on a listener of its own (apiport, `--api-addr`). Prints the
#     median deliveries per second of each and the ratio to client.
#
# Every run is bounded by `timeout` and pondbench's own --timeout.
# Results: bench/results/tmp/<date>-<machine>-auth-rate/ (every run's JSON,
# Markdown and server log) and the summary on stdout.
#
#   scripts/auth-rate.sh                                   # the real sizes (quiet machine only)
#   CONNS=200 ROOMS=10 MEMBERS=200 MESSAGES=20 RUNS=1 scripts/auth-rate.sh   # a smoke run
#   PARTS=auth scripts/auth-rate.sh                        # only the connect rates
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

CONNS=${CONNS:-5000}
ROOMS=${ROOMS:-100}
RUNS=${RUNS:-3}
MEMBERS=${MEMBERS:-10000}
MESSAGES=${MESSAGES:-200}
IN_FLIGHT=${IN_FLIGHT:-16}
API_CONNS=${API_CONNS:-1}
PARTS=${PARTS:-"auth fanout"}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
SECRET=bench-hmac-secret
API_KEY=bench-api-key

OUT=${OUT:-bench/results/tmp}
# log, start_run, free_port, start_server, stop_server; $pids are stopped at
# exit
# shellcheck source=scripts/servers.sh
source scripts/servers.sh
start_run auth-rate

# 5000 connections need more descriptors than the usual soft limit of 1024.
ulimit -n 20000 2>/dev/null || ulimit -n "$(ulimit -Hn)"

log "build"
go build -o "$tmp/pondsocket" ./cmd/pondsocket
go build -o "$tmp/pondbench" ./cmd/pondbench
go build -o "$tmp/tokens" ./bench/tokens

# start_server's extra flags for the next runs (the API's own listener)
SERVER_ARGS=()

# The application every server runs; message_rate -1 so that the client
# publisher is not held to the per-connection default of 1000/s.
app="message_rate: -1
api:
  key: \"$API_KEY\"
endpoints:
  - path: /api/socket
    channels:
      - pattern: /chat/:roomId
        presence: false
        events:
          message: broadcast"

# bench MODE RUN SCENARIO FLAGS...: one pondbench run against a fresh
# server with config $tmp/MODE.yaml.
bench() {
	local mode=$1 run=$2 scen=$3
	shift 3
	local port
	port=$(free_port)
	start_server "$port" --config "$tmp/$mode.yaml" "${SERVER_ARGS[@]}"
	if ! timeout "$RUN_TIMEOUT" "$tmp/pondbench" "$scen" --target "ws://127.0.0.1:$port/api/socket" \
		--server-pid "$SERVER_PID" --quiet --tag "$mode" --json "$tmp/$scen-$mode-$run.json" "$@" \
		>"$tmp/$scen-$mode-$run.md" 2>>"$tmp/pondbench.log"; then
		echo "$scen $mode run $run failed; see $tmp/$scen-$mode-$run.md and $tmp/pondbench.log" >&2
	fi
	stop_server "$SERVER_PID"
}

# medians FIELD MODE...: median of a JSON field per mode and its ratio to
# the first mode.
medians() {
	python3 - "$tmp" "$@" <<'EOF'
import glob, json, statistics, sys
tmp, field, modes = sys.argv[1], sys.argv[2], sys.argv[3:]
scen, key = field.split(".")
base = None
for m in modes:
    vals, failed, missing = [], 0, 0
    for f in sorted(glob.glob(f"{tmp}/{scen}-{m}-*.json")):
        r = json.load(open(f))
        c, tr = r.get("conns") or {}, r.get("traffic") or {}
        vals.append((c if key == "connect_per_sec" else tr).get(key, 0.0))
        failed += c.get("failed", 0) + c.get("join_failed", 0) + c.get("dropped", 0)
        missing += tr.get("missing", 0) + tr.get("refused", 0)
    if not vals:
        print(f"  {m:8s} no result")
        continue
    med = statistics.median(vals)
    base = med if base is None else base
    ratio = f"{med / base:.3f}" if base else "-"
    runs = " ".join(f"{v:.0f}" for v in vals)
    print(f"  {m:8s} median {med:12.0f}   ratio {ratio}   runs [{runs}]   failed conns {failed}, missing/refused messages {missing}")
EOF
}

for p in $PARTS; do
	case $p in
	auth)
		log "auth: keys, configs, $CONNS tokens each"
		openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$tmp/private.pem" 2>/dev/null
		openssl pkey -in "$tmp/private.pem" -pubout -out "$tmp/public.pem"
		printf '%s\n' "$app" >"$tmp/none.yaml"
		printf 'auth:\n  jwt:\n    hmac_secret: "%s"\n%s\n' "$SECRET" "$app" >"$tmp/hs256.yaml"
		printf 'auth:\n  jwt:\n    public_key_file: "%s"\n%s\n' "$PWD/$tmp/public.pem" "$app" >"$tmp/rs256.yaml"
		"$tmp/tokens" -n "$CONNS" -alg HS256 -secret "$SECRET" -out "$tmp/hs256.tokens"
		"$tmp/tokens" -n "$CONNS" -alg RS256 -key "$tmp/private.pem" -out "$tmp/rs256.tokens"
		for run in $(seq 1 "$RUNS"); do
			for mode in none hs256 rs256; do
				log "conns $mode, run $run of $RUNS"
				q=()
				[ "$mode" = none ] || q=(--query-file "$tmp/$mode.tokens")
				bench "$mode" "$run" conns --conns "$CONNS" --rooms "$ROOMS" "${q[@]}"
			done
		done
		;;
	fanout)
		printf '%s\n' "$app" >"$tmp/client.yaml"
		cp "$tmp/client.yaml" "$tmp/api.yaml"
		cp "$tmp/client.yaml" "$tmp/apiport.yaml"
		for run in $(seq 1 "$RUNS"); do
			# api: POST /api/broadcast on the WebSocket port; apiport: on
			# a listener of its own (--api-addr)
			for mode in client api apiport; do
				log "fanout $mode, $MEMBERS members, run $run of $RUNS"
				pub=()
				SERVER_ARGS=()
				case $mode in
				api) pub=(--publish api --api-key "$API_KEY" --api-conns "$API_CONNS") ;;
				apiport)
					apiport=$(free_port)
					SERVER_ARGS=(--api-addr "127.0.0.1:$apiport")
					pub=(--publish api --api-key "$API_KEY" --api-conns "$API_CONNS" --api-addr "127.0.0.1:$apiport")
					;;
				esac
				bench "$mode" "$run" fanout --conns "$MEMBERS" --messages "$MESSAGES" --in-flight "$IN_FLIGHT" "${pub[@]}"
			done
		done
		SERVER_ARGS=()
		;;
	*)
		echo "unknown part $p (auth, fanout)" >&2
		exit 2
		;;
	esac
done

echo
echo "# Issue 13 — $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(git rev-parse --short HEAD), $RUNS run(s) each, fresh server per run"
for p in $PARTS; do
	case $p in
	auth)
		echo
		echo "Connect rate (conn/s), pondbench conns --conns $CONNS --rooms $ROOMS; ratio to no auth:"
		medians conns.connect_per_sec none hs256 rs256
		;;
	fanout)
		echo
		echo "Fan-out to $MEMBERS members, $MESSAGES messages, in flight $IN_FLIGHT (deliveries/s); ratio api / client:"
		medians fanout.delivered_per_sec client api apiport
		;;
	esac
done
echo
echo "Every run's report: $tmp/"
