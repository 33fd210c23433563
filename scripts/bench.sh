#!/usr/bin/env bash
# `make bench`: request/reply throughput and latency of the broker, side by side with baselines
# measured in the same run on this machine, all on 127.0.0.1 ports picked free:
#   broker         parley-broker + N parley-echo replicas, driven through common/bus_client
#   raw_zmq        libzmq DEALER -> ROUTER echo server (one hop)
#   zmq_proxy      DEALER -> ROUTER [zmq_proxy] DEALER -> DEALER echo worker (two hops)
#   redis_queue    Redis lists: LPUSH job, worker BRPOP + LPUSH answer, client BRPOP
#                  (redis_queue_batched: the same with RPOP <count> batching at both ends)
# Every server is a separate process; each client keeps INFLIGHT requests in flight for
# DURATION_MS after WARMUP_MS. The machine is shared and noisy, so each system is measured ROUNDS
# times, interleaved (the order rotates per round), and the median is reported; ratios come from
# the medians. Figures go to stdout as `name: value` lines; progress and per-round figures go to
# stderr; server logs to build/bench/. Every process started here is stopped (SIGTERM, then
# SIGKILL after 5 s) on exit, error or Ctrl-C.
#
# Figures: broker_rps, raw_zmq_rps, zmq_proxy_rps, redis_queue_rps (INFLIGHT in flight);
# broker_p50_us, broker_p99_us (one request in flight); broker_vs_zmq_proxy and
# broker_vs_redis_queue (ratios of rps); then context: the batched Redis variant, each system's
# latency under load (*_loaded_p50_us), and CPU use over the measured windows (100 = one core)
# of each load generator (cpu_client: whole process; cpu_client_main: its own loop's thread,
# without libzmq's I/O thread) and of each system's servers.
#
# Settings (environment): PARLEY_BENCH_ROUNDS (5), PARLEY_BENCH_REPLICAS (1),
# PARLEY_BENCH_CAPACITY (per echo replica; default INFLIGHT, so the broker never queues),
# PARLEY_BENCH_INFLIGHT (100), PARLEY_BENCH_SIZE (32 data bytes), PARLEY_BENCH_DURATION_MS (3000),
# PARLEY_BENCH_WARMUP_MS (500), PARLEY_BENCH_EXTRAS (0; 1 adds latency at one in flight for the
# baselines).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${PARLEY_BIN:-build/bin}
BENCH=${PARLEY_BENCH_BIN:-build/bin/parley-bench}
ROUNDS=${PARLEY_BENCH_ROUNDS:-5}
# One replica by default: the zmq_proxy baseline has one echo worker behind it, so both
# systems then run the same number of processes on the same cores.
REPLICAS=${PARLEY_BENCH_REPLICAS:-1}
INFLIGHT=${PARLEY_BENCH_INFLIGHT:-100}
CAPACITY=${PARLEY_BENCH_CAPACITY:-$INFLIGHT}
SIZE=${PARLEY_BENCH_SIZE:-32}
DURATION_MS=${PARLEY_BENCH_DURATION_MS:-3000}
WARMUP_MS=${PARLEY_BENCH_WARMUP_MS:-500}
LATENCY_DURATION_MS=$((DURATION_MS / 2))
LATENCY_WARMUP_MS=$((WARMUP_MS / 2))
EXTRAS=${PARLEY_BENCH_EXTRAS:-0}
LOGS=build/bench

for bin in "$BIN/parley-broker" "$BIN/parley-echo" "$BENCH"; do
  [ -x "$bin" ] || { echo "bench: $bin is missing (run make first)" >&2; exit 1; }
done
command -v redis-server >/dev/null || { echo "bench: redis-server is missing" >&2; exit 1; }
mkdir -p "$LOGS"
rm -f "$LOGS"/*.log

# ---- processes ----------------------------------------------------------------------------

pids=()      # every server started here, in start order
client_pid=  # the load generator while one runs
say() { echo "bench: $*" >&2; }

alive() { # true while pid runs (a zombie does not count)
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

stop_all() {
  local status=$?
  trap - EXIT INT TERM
  [ -n "$client_pid" ] && pids+=("$client_pid")
  ((${#pids[@]})) || exit "$status"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  for _ in $(seq 50); do
    local running=0
    for pid in "${pids[@]}"; do alive "$pid" && running=1; done
    ((running)) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    if alive "$pid"; then
      say "pid $pid did not stop on SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  wait "${pids[@]}" 2>/dev/null || true
  exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# start NAME CMD... : starts CMD in the background with stderr and stdout to $LOGS/NAME.log
start() {
  local name=$1; shift
  "$@" >"$LOGS/$name.log" 2>&1 &
  pids+=($!)
  last_pid=$!
}

# ---- servers ------------------------------------------------------------------------------

ports=$("$BENCH" ports 8)
read -r P_REQ P_EIN P_EOUT P_STATS P_ZECHO P_PFRONT P_PBACK P_REDIS <<<"$ports"
export PARLEY_BROKER_ENDPOINT=tcp://127.0.0.1:$P_REQ
export PARLEY_BROKER_EVENTS_IN=tcp://127.0.0.1:$P_EIN
export PARLEY_BROKER_EVENTS_OUT=tcp://127.0.0.1:$P_EOUT
export PARLEY_BROKER_STATS_ADDRESS=127.0.0.1:$P_STATS
export PARLEY_LOG_LEVEL=${PARLEY_LOG_LEVEL:-warn}

say "starting the broker, $REPLICAS echo replicas (capacity $CAPACITY), the baselines' servers"
start broker "$BIN/parley-broker"
broker_pid=$last_pid
echo_watch=()
for i in $(seq "$REPLICAS"); do
  start "echo-$i" env PARLEY_WORKER_CAPACITY="$CAPACITY" PARLEY_INSTANCE="bench-echo-$i" \
    "$BIN/parley-echo"
  echo_watch+=(--watch "echo:$last_pid")
done
start zmq-echo "$BENCH" zmq-echo --endpoint "tcp://127.0.0.1:$P_ZECHO"
zmq_echo_pid=$last_pid
start zmq-proxy "$BENCH" zmq-proxy --endpoint "tcp://127.0.0.1:$P_PFRONT" \
  --backend "tcp://127.0.0.1:$P_PBACK"
zmq_proxy_pid=$last_pid
start zmq-worker "$BENCH" zmq-worker --endpoint "tcp://127.0.0.1:$P_PBACK"
zmq_worker_pid=$last_pid
start redis redis-server --bind 127.0.0.1 --port "$P_REDIS" --save '' --appendonly no \
  --dir "$LOGS" --dbfilename bench.rdb
redis_pid=$last_pid
start redis-worker "$BENCH" redis-worker --redis-port "$P_REDIS"
redis_worker_pid=$last_pid
start redis-worker-batched "$BENCH" redis-worker --redis-port "$P_REDIS" --batch 1024 \
  --jobs-key parley-bench:jobs-batched
redis_worker_batched_pid=$last_pid

# Ready when every replica has said READY to the broker (its stats count them). The Redis
# clients retry their connection while redis-server starts; the ZeroMQ ones connect lazily.
ready=0
for _ in $(seq 100); do
  if curl -sf "http://$PARLEY_BROKER_STATS_ADDRESS/stats" 2>/dev/null |
     grep -Eq "\"replicas\": $REPLICAS([^0-9]|\$)"; then ready=1; break; fi
  sleep 0.1
done
((ready)) || { say "the echo replicas did not register with the broker (see $LOGS/)"; exit 1; }
for pid in "${pids[@]}"; do
  alive "$pid" || { say "a server exited at start (see $LOGS/)"; exit 1; }
done

# ---- measurements -------------------------------------------------------------------------

declare -A values   # figure name -> space-separated values, one per round

# measure SYSTEM ROLE ARGS... : runs one load generator (in the background, so that Ctrl-C is
# handled at once); appends each `key: value` it prints to values[SYSTEM_key]. Fails the bench
# when it fails or counts errors, or when a server has exited meanwhile.
measure() {
  local system=$1; shift
  local out=$LOGS/client.out
  "$BENCH" "$@" >"$out" 2>>"$LOGS/client.log" &
  client_pid=$!
  local status=0
  wait "$client_pid" || status=$?
  client_pid=
  if ((status)); then
    say "$system: the load generator failed (see $LOGS/client.log)"
    exit 1
  fi
  local key value line=""
  while read -r key value; do
    key=${key%:}
    values[${system}_$key]+="$value "
    line+=" $key=$value"
  done <"$out"
  say "  $system:$line"
  if [ "$(grep '^errors:' "$out" | cut -d' ' -f2)" != 0 ]; then
    say "$system: answers with errors (see $LOGS/)"
    exit 1
  fi
  for pid in "${pids[@]}"; do
    alive "$pid" || { say "a server exited during $system (see $LOGS/)"; exit 1; }
  done
}

throughput=(--inflight "$INFLIGHT" --warmup-ms "$WARMUP_MS" --duration-ms "$DURATION_MS"
            --size "$SIZE")
latency=(--inflight 1 --warmup-ms "$LATENCY_WARMUP_MS" --duration-ms "$LATENCY_DURATION_MS"
         --size "$SIZE")
broker_watch=(--watch "broker:$broker_pid" "${echo_watch[@]}")
proxy_watch=(--watch "proxy:$zmq_proxy_pid" --watch "worker:$zmq_worker_pid")

run_system() {
  case $1 in
    broker) measure broker broker-client "${throughput[@]}" "${broker_watch[@]}" ;;
    broker_latency) measure broker_latency broker-client "${latency[@]}" \
                      "${broker_watch[@]}" ;;
    raw_zmq) measure raw_zmq zmq-client --endpoint "tcp://127.0.0.1:$P_ZECHO" \
               "${throughput[@]}" --watch "echo:$zmq_echo_pid" ;;
    zmq_proxy) measure zmq_proxy zmq-client --endpoint "tcp://127.0.0.1:$P_PFRONT" \
                 "${throughput[@]}" "${proxy_watch[@]}" ;;
    zmq_proxy_latency) measure zmq_proxy_latency zmq-client \
                         --endpoint "tcp://127.0.0.1:$P_PFRONT" "${latency[@]}" \
                         "${proxy_watch[@]}" ;;
    raw_zmq_latency) measure raw_zmq_latency zmq-client \
                       --endpoint "tcp://127.0.0.1:$P_ZECHO" "${latency[@]}" \
                       --watch "echo:$zmq_echo_pid" ;;
    redis_queue) measure redis_queue redis-client --redis-port "$P_REDIS" \
                   "${throughput[@]}" --watch "redis:$redis_pid" \
                   --watch "worker:$redis_worker_pid" ;;
    redis_queue_batched) measure redis_queue_batched redis-client \
                           --redis-port "$P_REDIS" --batch 1024 \
                           --jobs-key parley-bench:jobs-batched "${throughput[@]}" \
                           --watch "redis:$redis_pid" --watch "worker:$redis_worker_batched_pid" ;;
  esac
}

systems=(broker raw_zmq zmq_proxy redis_queue redis_queue_batched broker_latency)
((EXTRAS)) && systems+=(zmq_proxy_latency raw_zmq_latency)
begin=$SECONDS
for round in $(seq "$ROUNDS"); do
  say "round $round/$ROUNDS"
  n=${#systems[@]}
  for i in $(seq 0 $((n - 1))); do
    run_system "${systems[$(((i + round - 1) % n))]}"
  done
done
say "measured in $((SECONDS - begin)) s"

# ---- report -------------------------------------------------------------------------------

median() { # median of the values of figure $1 (empty when there are none)
  tr ' ' '\n' <<<"${values[$1]:-}" | grep -v '^$' | sort -g |
    awk '{v[NR] = $1}
         END {if (NR) printf "%s", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
figure() { # figure NAME SOURCE: prints `NAME: median of SOURCE`
  local value
  value=$(median "$2")
  [ -n "$value" ] && printf '%s: %s\n' "$1" "$value"
  return 0
}
ratio() {
  awk -v a="$(median "$2")" -v b="$(median "$3")" \
    'BEGIN {if (b > 0) printf "%s: %.3f\n", "'"$1"'", a / b}'
}

figure broker_rps broker_rps
figure raw_zmq_rps raw_zmq_rps
figure zmq_proxy_rps zmq_proxy_rps
figure redis_queue_rps redis_queue_rps
figure broker_p50_us broker_latency_p50_us
figure broker_p99_us broker_latency_p99_us
ratio broker_vs_zmq_proxy broker_rps zmq_proxy_rps
ratio broker_vs_redis_queue broker_rps redis_queue_rps
# Context: the batched Redis variant, latencies at INFLIGHT, and CPU use over the measured
# windows (100 = one core) of the load generator and of each system's servers.
figure redis_queue_batched_rps redis_queue_batched_rps
ratio broker_vs_redis_queue_batched broker_rps redis_queue_batched_rps
for system in broker raw_zmq zmq_proxy redis_queue; do
  figure "${system}_loaded_p50_us" "${system}_p50_us"
  figure "${system}_loaded_p99_us" "${system}_p99_us"
done
if ((EXTRAS)); then
  for system in raw_zmq zmq_proxy; do
    figure "${system}_p50_us" "${system}_latency_p50_us"
    figure "${system}_p99_us" "${system}_latency_p99_us"
  done
fi
for key in $(printf '%s\n' "${!values[@]}" | grep -E '_cpu_.*_pct$' | grep -v _latency_ | sort); do
  figure "$key" "$key"
done
