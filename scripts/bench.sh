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
# Then the presence worker's write-behind, on its own redis-server and dynalite (DynamoDB API)
# behind the same broker, with one parley-presence replica (see "presence" below):
#   writes_per_heartbeat        DynamoDB rows written / heartbeats acknowledged, PRESENCE_SOCKETS
#                               sockets heartbeating every second for PRESENCE_INTERVALS flush
#                               intervals of PRESENCE_FLUSH_MS
#   floor_writes_per_heartbeat  one write per socket per flush interval: heartbeat interval /
#                               flush interval
#   presence_heartbeats_per_s   heartbeats (one socket's last seen, written to Redis) one replica
#                               absorbs when presence-sim --flood keeps FLOOD_INFLIGHT batches of
#                               500 in flight for FLOOD_MS; median of FLOOD_ROUNDS
# and their context (presence_*): the counts behind the ratio, and CPU use during the flood of
# the replica (whole process, and its main thread: the request loop), its Redis (where the Lua
# scripts run), dynalite, the broker and presence-sim, plus Redis's time per script call and
# the share of the time it spent in scripts.
#
# Then the jira worker: scripts/bench-jira.sh (jira_overhead_p99_ms,
# jira_msgs_per_s_per_replica; PARLEY_BENCH_JIRA=0 skips it).
#
# Then the gateway: bench/gateway_bench.py (idle_socket_bytes, fanout_msgs_per_s and the Node
# ws and bare lws relays beside it; PARLEY_BENCH_GATEWAY=0 skips it).
#
# Settings (environment): PARLEY_BENCH_ROUNDS (5), PARLEY_BENCH_REPLICAS (1),
# PARLEY_BENCH_CAPACITY (per echo replica; default INFLIGHT, so the broker never queues),
# PARLEY_BENCH_INFLIGHT (100), PARLEY_BENCH_SIZE (32 data bytes), PARLEY_BENCH_DURATION_MS (3000),
# PARLEY_BENCH_WARMUP_MS (500), PARLEY_BENCH_EXTRAS (0; 1 adds latency at one in flight for the
# baselines); PARLEY_BENCH_PRESENCE (1; 0 skips the presence figures),
# PARLEY_BENCH_PRESENCE_SOCKETS (10000), PARLEY_BENCH_PRESENCE_FLUSH_MS (10000),
# PARLEY_BENCH_PRESENCE_INTERVALS (3), PARLEY_BENCH_FLOOD_INFLIGHT (8), PARLEY_BENCH_FLOOD_MS
# (10000), PARLEY_BENCH_FLOOD_ROUNDS (3).
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
PRESENCE=${PARLEY_BENCH_PRESENCE:-1}
PRESENCE_SOCKETS=${PARLEY_BENCH_PRESENCE_SOCKETS:-10000}
PRESENCE_FLUSH_MS=${PARLEY_BENCH_PRESENCE_FLUSH_MS:-10000}
PRESENCE_INTERVALS=${PARLEY_BENCH_PRESENCE_INTERVALS:-3}
PRESENCE_BEAT_MS=1000  # a gateway heartbeats each socket once a second
PRESENCE_BATCH=500     # sockets per heartbeat request
FLOOD_INFLIGHT=${PARLEY_BENCH_FLOOD_INFLIGHT:-8}
FLOOD_MS=${PARLEY_BENCH_FLOOD_MS:-10000}
FLOOD_ROUNDS=${PARLEY_BENCH_FLOOD_ROUNDS:-3}
DYNALITE=node_modules/.bin/dynalite
LOGS=build/bench

need=("$BIN/parley-broker" "$BIN/parley-echo" "$BENCH")
((PRESENCE)) && need+=("$BIN/parley-presence" "$BIN/presence-sim" "$DYNALITE")
for bin in "${need[@]}"; do
  [ -x "$bin" ] || { echo "bench: $bin is missing (run make, or scripts/deps.sh)" >&2; exit 1; }
done
command -v redis-server >/dev/null || { echo "bench: redis-server is missing" >&2; exit 1; }
if ((PRESENCE)); then
  for tool in python3 redis-cli; do
    command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 1; }
  done
fi
mkdir -p "$LOGS"
rm -f "$LOGS"/*.log

# ---- processes ----------------------------------------------------------------------------

pids=()       # every server started here, in start order, apart from the stores below
store_pids=() # the presence worker's stores (redis-server, dynalite): stopped after the rest
client_pid=   # the load generator while one runs
say() { echo "bench: $*" >&2; }

alive() { # true while pid runs (a zombie does not count)
  local state
  state=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [ -n "$state" ] && [ "$state" != Z ]
}

# stop TENTHS PID...: SIGTERM, then SIGKILL for those still running after TENTHS x 0.1 s.
stop() {
  local tenths=$1; shift
  (($#)) || return 0
  kill -TERM "$@" 2>/dev/null || true
  for _ in $(seq "$tenths"); do
    local running=0
    for pid in "$@"; do alive "$pid" && running=1; done
    ((running)) || break
    sleep 0.1
  done
  for pid in "$@"; do
    if alive "$pid"; then
      say "pid $pid did not stop on SIGTERM; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  wait "$@" 2>/dev/null || true
}

# Stops the servers (and the load generator), then the stores, so that a presence replica still
# running can finish its last write-behind.
stop_all() {
  local status=$?
  trap - EXIT INT TERM
  [ -n "$client_pid" ] && pids+=("$client_pid")
  stop 50 "${pids[@]+"${pids[@]}"}"
  stop 50 "${store_pids[@]+"${store_pids[@]}"}"
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

# start_store NAME CMD... : the same for a store, stopped last.
start_store() {
  local name=$1; shift
  "$@" >"$LOGS/$name.log" 2>&1 &
  store_pids+=($!)
  last_pid=$!
}

# ---- servers ------------------------------------------------------------------------------

ports=$("$BENCH" ports 10)
read -r P_REQ P_EIN P_EOUT P_STATS P_ZECHO P_PFRONT P_PBACK P_REDIS P_PRESENCE_REDIS P_DYNAMO \
  <<<"$ports"
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

# ---- presence: write-behind and heartbeat absorption --------------------------------------
#
# One parley-presence replica behind the same broker, on its own redis-server and dynalite, with
# PARLEY_PRESENCE_FLUSH_MS=PRESENCE_FLUSH_MS. Its flusher writes at wall-clock multiples of the
# flush interval, so presence-sim is started to open its sockets just after such a boundary and
# to send its last heartbeat round half a second before the boundary PRESENCE_INTERVALS
# intervals later: the run covers whole flush intervals, and the flush at that last boundary
# writes every socket's final state. (Unaligned, a 30 s run would at random add a fourth flush
# that writes every socket once more: +33% from where the run happens to start, not from the
# design.) Then, on the same sockets, presence-sim --flood measures how many heartbeats the
# replica absorbs, with the flusher running as usual.

HEARTBEAT_MS=${PARLEY_HEARTBEAT_MS:-1000} # the worker's heartbeats carry its counters
declare -A pc                               # the replica's counters (read_counters)

now_ms() { date +%s%3N; }
sleep_ms() { # sleep_ms MS (nothing when MS <= 0)
  (($1 > 0)) && sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"
  return 0
}

wait_port() { # wait_port PORT NAME: until something accepts connections on 127.0.0.1:PORT
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  say "$2 did not start on port $1 (see $LOGS/)"
  exit 1
}

# read_counters: fills pc[] with the presence replica's counters from the broker's /stats (they
# ride in its heartbeats: up to one heartbeat old). Fails while the broker shows none.
read_counters() {
  pc=()
  curl -sf "http://$PARLEY_BROKER_STATS_ADDRESS/stats" >"$LOGS/stats.json" 2>/dev/null ||
    return 1
  local name value
  while read -r name value; do
    pc[$name]=$value
  done < <(python3 - "$LOGS/stats.json" 2>/dev/null <<'PY'
import json, sys
try:
    workers = json.load(open(sys.argv[1]))["services"].get("presence", {}).get("workers", [])
except (OSError, ValueError, KeyError, AttributeError):
    sys.exit(1)
for name, value in (workers[0].get("counters", {}).items() if workers else ()):
    print(name, value)
PY
  )
  [ -n "${pc[rows_written]:-}" ]
}

sim_json() { # sim_json FILE KEY...: presence-sim's report fields, one a line (objects as JSON)
  python3 - "$@" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
for key in sys.argv[2:]:
    value = report.get(key, "")
    print(json.dumps(value, sort_keys=True) if isinstance(value, (dict, list)) else value)
PY
}

# run_sim OUT ARGS...: runs presence-sim on the bench's sockets (in the background, so that Ctrl-C
# is handled at once), its report to OUT. Fails the bench when it fails, is answered with errors,
# or not every heartbeat it sent was acknowledged (each socket must be open), or a server exited.
run_sim() {
  local out=$1; shift
  "$BIN/presence-sim" --sockets "$PRESENCE_SOCKETS" --batch "$PRESENCE_BATCH" --tenant bench \
    --gateway gw-bench "$@" >"$out" 2>>"$LOGS/presence-sim.log" &
  client_pid=$!
  local status=0 report
  wait "$client_pid" || status=$?
  client_pid=
  mapfile -t report < <(sim_json "$out" errors heartbeats_sent heartbeats_acked 2>/dev/null)
  if ((status)) || [ "${report[0]:-}" != "{}" ] || [ "${report[1]:-0}" = 0 ] ||
     [ "${report[1]:-}" != "${report[2]:-}" ]; then
    say "presence-sim failed, or was answered with errors: $(cat "$out") (see $LOGS/)"
    exit 1
  fi
  for pid in "${pids[@]}" "${store_pids[@]}"; do
    alive "$pid" || { say "a server exited during presence-sim (see $LOGS/)"; exit 1; }
  done
}

# read_cpu ARRAY ARGS...: fills the associative ARRAY with a `parley-bench cpu ARGS` snapshot
# (wall_us, LABEL_us, LABEL_main_us).
read_cpu() {
  local -n into=$1; shift
  local key value
  while read -r key value; do
    into[${key%:}]=$value
  done < <("$BENCH" cpu "$@")
  [ -n "${into[wall_us]:-}" ]
}

# redis_scripts: prints the script calls (EVAL, EVALSHA) the presence Redis ran since its last
# CONFIG RESETSTAT and the microseconds it spent in them.
redis_scripts() {
  redis-cli -p "$P_PRESENCE_REDIS" INFO commandstats | tr -d '\r' |
    awk -F'[:,=]' '/^cmdstat_eval(sha)?:/ {calls += $3; usec += $5}
                   END {printf "%d %d\n", calls, usec}'
}

presence_start() {
  say "presence: redis-server, dynalite, a parley-presence replica" \
      "(flush every $PRESENCE_FLUSH_MS ms)"
  start_store presence-redis redis-server --bind 127.0.0.1 --port "$P_PRESENCE_REDIS" --save '' \
    --appendonly no --dir "$LOGS" --dbfilename presence.rdb
  presence_redis_pid=$last_pid
  start_store dynalite "$DYNALITE" --host 127.0.0.1 --port "$P_DYNAMO" --createTableMs 0
  dynalite_pid=$last_pid
  wait_port "$P_PRESENCE_REDIS" redis-server
  wait_port "$P_DYNAMO" dynalite
  # dynalite takes any credentials (SigV4 signing needs some); a long grace period, so that no
  # socket expires between the runs below.
  start presence env -u AWS_SESSION_TOKEN \
    PARLEY_REDIS_URL="redis://127.0.0.1:$P_PRESENCE_REDIS/0" \
    PARLEY_DYNAMO_ENDPOINT="http://127.0.0.1:$P_DYNAMO" AWS_REGION=eu-west-1 \
    AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench \
    PARLEY_PRESENCE_FLUSH_MS="$PRESENCE_FLUSH_MS" PARLEY_PRESENCE_GRACE_MS=600000 \
    "$BIN/parley-presence"
  presence_pid=$last_pid
  for _ in $(seq 100); do
    read_counters && return 0
    alive "$presence_pid" || break
    sleep 0.1
  done
  say "the presence replica did not register with the broker (see $LOGS/presence.log)"
  exit 1
}

# writes_per_heartbeat's numerator is rows_written: every row DynamoDB accepted from the flusher.
# Each socket's row is written once per flush interval in which it changed: the first write
# carries its opening (presence.open is an update like a heartbeat, coalesced with the heartbeats
# of its interval) and the last one its final state after the last heartbeat. The denominator
# counts heartbeats only (presence-sim's heartbeats_acked), not the openings.
presence_writes() {
  local duration_ms=$((PRESENCE_INTERVALS * PRESENCE_FLUSH_MS - PRESENCE_BEAT_MS / 2))
  local now boundary
  now=$(now_ms)
  # presence-sim opens its sockets one heartbeat interval after it starts: start it so that they
  # open 200 ms after the next flush boundary that leaves time for that.
  boundary=$(((now + PRESENCE_BEAT_MS + 300 + PRESENCE_FLUSH_MS - 1) / PRESENCE_FLUSH_MS *
              PRESENCE_FLUSH_MS))
  read_counters || { say "presence: no counters"; exit 1; }
  local rows_before=${pc[rows_written]} batches_before=${pc[flush_batches]}
  sleep_ms $((boundary - PRESENCE_BEAT_MS + 200 - $(now_ms)))
  say "presence: $PRESENCE_SOCKETS sockets heartbeating every $PRESENCE_BEAT_MS ms for" \
      "$PRESENCE_INTERVALS flush intervals"
  run_sim "$LOGS/presence-writes.out" --interval-ms "$PRESENCE_BEAT_MS" \
    --duration-ms "$duration_ms"
  local report
  mapfile -t report < <(sim_json "$LOGS/presence-writes.out" opened heartbeats_acked)
  if [ "${report[0]}" != "$PRESENCE_SOCKETS" ]; then
    say "presence-sim opened ${report[0]} of $PRESENCE_SOCKETS sockets"
    exit 1
  fi
  # Wait for the flush at the last boundary to report: no dirty entries left, rows_written
  # unchanged for a heartbeat, and (unless time is up) at least one row per socket per interval
  # (so that a zero left by an earlier quick flush is not taken for the last one).
  local last=$((boundary + PRESENCE_INTERVALS * PRESENCE_FLUSH_MS))
  local deadline=$((last + PRESENCE_FLUSH_MS + 30000))
  local floor_rows=$((PRESENCE_SOCKETS * PRESENCE_INTERVALS)) rows=-1 since=0
  sleep_ms $((last - $(now_ms)))
  while :; do
    now=$(now_ms)
    if read_counters && [ "${pc[dirty_entries]}" = 0 ]; then
      [ "${pc[rows_written]}" = "$rows" ] || { rows=${pc[rows_written]}; since=$now; }
      if ((now - since > HEARTBEAT_MS + 200)); then
        ((rows - rows_before >= floor_rows)) && break
        if ((now > deadline)); then
          say "presence: fewer rows than one per socket per flush interval"
          break
        fi
      fi
    elif ((now > deadline)); then
      say "presence: the write-behind did not finish: dirty_entries=${pc[dirty_entries]:-?}"
      exit 1
    fi
    sleep 0.25
  done
  presence_rows=$((pc[rows_written] - rows_before))
  presence_heartbeats=${report[1]}
  presence_batch_writes=$((pc[flush_batches] - batches_before))
  presence_flush_errors=${pc[flush_errors]}
  presence_last_flush_ms=${pc[flush_duration_ms]}
  say "  presence_writes: rows_written=$presence_rows heartbeats=$presence_heartbeats" \
      "batch_writes=$presence_batch_writes last_flush_ms=$presence_last_flush_ms" \
      "flush_errors=$presence_flush_errors"
}

# CPU use over each flood round (100 = one core), from snapshots just before presence-sim starts
# and after it exits (its start and end add some 50 ms to a window of FLOOD_MS).
presence_flood() {
  say "presence: flood, $FLOOD_INFLIGHT batches of $PRESENCE_BATCH in flight for $FLOOD_MS ms," \
      "$FLOOD_ROUNDS rounds"
  local watch=(--watch "presence:$presence_pid" --watch "redis:$presence_redis_pid"
               --watch "dynalite:$dynalite_pid" --watch "broker:$broker_pid")
  local round label wall line
  for round in $(seq "$FLOOD_ROUNDS"); do
    local -A before=() after=() pct=()
    redis-cli -p "$P_PRESENCE_REDIS" CONFIG RESETSTAT >/dev/null
    read_cpu before "${watch[@]}" || { say "presence: no CPU snapshot"; exit 1; }
    run_sim "$LOGS/presence-flood.out" --flood "$FLOOD_INFLIGHT" --no-open \
      --duration-ms "$FLOOD_MS"
    read_cpu after "${watch[@]}" || { say "presence: no CPU snapshot"; exit 1; }
    wall=$((after[wall_us] - before[wall_us]))
    for label in presence presence_main redis dynalite broker; do
      pct[$label]=$(((after[${label}_us] - before[${label}_us]) * 100 / wall))
    done
    local report calls usec
    mapfile -t report < <(sim_json "$LOGS/presence-flood.out" heartbeats_per_s cpu_ms)
    pct[client]=$((report[1] * 1000 * 100 / wall))
    read -r calls usec < <(redis_scripts)
    values[presence_flood_heartbeats_per_s]+="${report[0]} "
    values[presence_flood_redis_us_per_script]+="$((calls ? usec / calls : 0)) "
    values[presence_flood_redis_in_scripts_pct]+="$((usec * 100 / wall)) "
    line=" heartbeats_per_s=${report[0]} redis_us_per_script=$((calls ? usec / calls : 0))"
    line+=" redis_in_scripts_pct=$((usec * 100 / wall))"
    for label in presence presence_main redis dynalite broker client; do
      values[presence_flood_cpu_${label}_pct]+="${pct[$label]} "
      line+=" cpu_${label}_pct=${pct[$label]}"
    done
    say "  presence_flood:$line"
  done
}

# Stops the replica before the stores, giving its last write-behind time to finish.
presence_stop() {
  stop 300 "$presence_pid"
  local kept=() pid
  for pid in "${pids[@]}"; do [ "$pid" = "$presence_pid" ] || kept+=("$pid"); done
  pids=("${kept[@]}")
}

if ((PRESENCE)); then
  begin=$SECONDS
  presence_start
  presence_writes
  presence_flood
  presence_stop
  say "presence measured in $((SECONDS - begin)) s"
fi

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
for key in $(printf '%s\n' "${!values[@]}" | grep -E '_cpu_.*_pct$' | grep -v _latency_ |
             grep -v '^presence_' | sort); do
  figure "$key" "$key"
done
# Presence (see "presence" above): rows written per heartbeat next to the floor of one write per
# socket per flush interval, and the heartbeats one replica absorbs per second. Then context: the
# counts behind the ratio (batch_writes: BatchWriteItem calls; last_flush_ms: the last flush's
# duration), and over the flood rounds CPU use (100 = one core) of the replica (presence: whole
# process; presence_main: its request loop's thread, without the flusher and libzmq threads),
# of its Redis, dynalite, the broker and presence-sim (client); Redis's time per script call (one
# heartbeat request of PRESENCE_BATCH sockets is one EVAL), and the share of the wall-clock time
# it spent running scripts (near 100: Redis's one thread is what limits the rate).
if ((PRESENCE)); then
  awk -v rows="$presence_rows" -v beats="$presence_heartbeats" \
    'BEGIN {if (beats > 0) printf "writes_per_heartbeat: %.3f\n", rows / beats}'
  awk -v beat="$PRESENCE_BEAT_MS" -v flush="$PRESENCE_FLUSH_MS" \
    'BEGIN {printf "floor_writes_per_heartbeat: %.3f\n", beat / flush}'
  figure presence_heartbeats_per_s presence_flood_heartbeats_per_s
  printf 'presence_sockets: %s\n' "$PRESENCE_SOCKETS"
  printf 'presence_flush_intervals: %s\n' "$PRESENCE_INTERVALS"
  printf 'presence_heartbeats: %s\n' "$presence_heartbeats"
  printf 'presence_rows_written: %s\n' "$presence_rows"
  printf 'presence_batch_writes: %s\n' "$presence_batch_writes"
  printf 'presence_last_flush_ms: %s\n' "$presence_last_flush_ms"
  printf 'presence_flush_errors: %s\n' "$presence_flush_errors"
  for label in presence presence_main redis dynalite broker client; do
    figure "presence_flood_cpu_${label}_pct" "presence_flood_cpu_${label}_pct"
  done
  figure presence_flood_redis_us_per_script presence_flood_redis_us_per_script
  figure presence_flood_redis_in_scripts_pct presence_flood_redis_in_scripts_pct
fi

# ---- jira: the jira worker against the Jira sandbox (scripts/bench-jira.sh) ---------------
# On a quiet machine: everything above is stopped first.
if ((${PARLEY_BENCH_JIRA:-1})); then
  stop 50 "${pids[@]+"${pids[@]}"}"
  pids=()
  stop 50 "${store_pids[@]+"${store_pids[@]}"}"
  store_pids=()
  scripts/bench-jira.sh
fi

# ---- gateway: room fan-out against a Node ws relay and a bare lws relay (bench/gateway_bench.py)
if ((${PARLEY_BENCH_GATEWAY:-1})); then
  stop 50 "${pids[@]+"${pids[@]}"}"
  pids=()
  stop 50 "${store_pids[@]+"${store_pids[@]}"}"
  store_pids=()
  /usr/bin/python3 bench/gateway_bench.py
fi
