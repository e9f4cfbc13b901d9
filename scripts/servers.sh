# shellcheck shell=bash disable=SC2034,SC2154 # server_src is read, $tmp set, by the sourcing script
# Sourced by scripts/bench.sh and scripts/attack.sh, not run: the server
# under test, built once and started fresh on a free port of 127.0.0.1 as
# often as a script needs. The sourcing script runs at the repository root
# and calls start_run before anything else here.
#
# Every process started here (or added to $pids by the caller) is stopped
# when the script exits, by the PID it was started with.

log() { printf '\n=== %s\n' "$*" >&2; }

# start_run [NAME]: sets stamp (<date>-<machine>[-NAME], the name of the
# report) and tmp (bench/results/tmp/$stamp, emptied: binaries, logs and
# every run's output), and makes $OUT.
start_run() {
	stamp="$(date -u +%Y-%m-%d)-$(hostname -s)${1:+-$1}"
	tmp="bench/results/tmp/$stamp"
	rm -rf "$tmp"
	mkdir -p "$tmp" "$OUT"
}

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -INT "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT

# forget PID: a process that has been stopped and waited for is not
# signalled again at exit (its PID may belong to another process by then).
forget() {
	local p keep=()
	for p in "${pids[@]}"; do
		[ "$p" = "$1" ] || keep+=("$p")
	done
	pids=("${keep[@]}")
}

# build_server [devkafka]: $tmp/pondsocket, and with "devkafka" also
# $tmp/devkafka where the source has cmd/devkafka. From $PONDSOCKET_BIN (a
# server built elsewhere, copied; no devkafka), from commit $SERVER_REF (git
# archive) or from the working tree. Sets server_src for the report.
build_server() {
	if [ -n "${PONDSOCKET_BIN:-}" ]; then
		cp "$PONDSOCKET_BIN" "$tmp/pondsocket"
		server_src="$PONDSOCKET_BIN"
	elif [ -n "${SERVER_REF:-}" ]; then
		mkdir -p "$tmp/src"
		git archive "$SERVER_REF" | tar -x -C "$tmp/src"
		(cd "$tmp/src" && build_cmds .. "$@")
		rm -rf "$tmp/src"
		server_src="commit $(git rev-parse --short "$SERVER_REF")"
	else
		build_cmds "$tmp" "$@"
		server_src="working tree at $(git rev-parse --short HEAD)"
	fi
}

# build_cmds DIR [NAME...]: ./cmd/pondsocket, and ./cmd/NAME where this tree
# has it, built into DIR.
build_cmds() {
	local dir=$1 name
	shift
	go build -o "$dir/pondsocket" ./cmd/pondsocket
	for name in "$@"; do
		if [ -d "cmd/$name" ]; then go build -o "$dir/$name" "./cmd/$name"; fi
	done
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_port PORT: until something listens on 127.0.0.1:PORT (at most 10s),
# for a process that has no /healthz (redis-server, devkafka).
wait_port() {
	for _ in $(seq 1 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
			return 0
		fi
		sleep 0.1
	done
	echo "nothing listens on port $1" >&2
	return 1
}

# start_server PORT [FLAGS...]: a fresh $tmp/pondsocket on 127.0.0.1:PORT,
# logging to $tmp/server-PORT.log, under `ulimit -n $SERVER_NOFILE` when
# that is set (SERVER_NOFILE=N start_server ...). Waits (at most 10 s) until
# it answers /healthz; sets SERVER_PID.
start_server() {
	local port=$1
	shift
	(
		if [ -n "${SERVER_NOFILE:-}" ]; then ulimit -n "$SERVER_NOFILE"; fi
		exec "$tmp/pondsocket" --addr "127.0.0.1:$port" --log-level warn "$@"
	) 2>>"$tmp/server-$port.log" &
	SERVER_PID=$!
	pids+=("$SERVER_PID")
	for _ in $(seq 1 100); do
		if curl -sf "http://127.0.0.1:$port/healthz" >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.1
	done
	echo "server on port $port did not become healthy" >&2
	exit 1
}

# stop_server PID [PORT NAME]: with PORT and NAME, first saves the server's
# /metrics as $tmp/metrics-NAME-PORT.txt; then SIGINT, and SIGKILL if it
# has not exited after 15 s. The server may already be gone.
stop_server() {
	local pid=$1
	if [ $# -ge 3 ]; then
		curl -sf "http://127.0.0.1:$2/metrics" >"$tmp/metrics-$3-$2.txt" 2>/dev/null || true
	fi
	kill -INT "$pid" 2>/dev/null || true
	for _ in $(seq 1 150); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	forget "$pid"
}
