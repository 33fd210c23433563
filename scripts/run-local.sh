#!/usr/bin/env bash
# `make run`: the local stack on loopback - the broker and one replica of every worker that
# exists - with logs to the terminal. Prints the stats URL. Ctrl-C (or SIGTERM) stops
# everything it started, gracefully (each process drains on SIGTERM).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${PARLEY_BIN:-build/bin}
export PARLEY_BROKER_ENDPOINT=${PARLEY_BROKER_ENDPOINT:-tcp://127.0.0.1:5555}
export PARLEY_BROKER_EVENTS_IN=${PARLEY_BROKER_EVENTS_IN:-tcp://127.0.0.1:5556}
export PARLEY_BROKER_EVENTS_OUT=${PARLEY_BROKER_EVENTS_OUT:-tcp://127.0.0.1:5557}
export PARLEY_BROKER_STATS_ADDRESS=${PARLEY_BROKER_STATS_ADDRESS:-127.0.0.1:8090}

pids=()
stop() {
  trap - INT TERM EXIT
  echo "stopping ${#pids[@]} processes..."
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  echo "stopped."
}
trap stop INT TERM EXIT

"$BIN/parley-broker" & pids+=($!)
for worker in "$BIN"/parley-echo; do
  [ -x "$worker" ] && { "$worker" & pids+=($!); }
done

for _ in $(seq 50); do
  curl -sf "http://$PARLEY_BROKER_STATS_ADDRESS/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
cat <<MSG

  Parley is running on loopback.
    stats:    http://$PARLEY_BROKER_STATS_ADDRESS/stats
    metrics:  http://$PARLEY_BROKER_STATS_ADDRESS/metrics
    health:   http://$PARLEY_BROKER_STATS_ADDRESS/healthz
    try:      $BIN/parley-probe --requests 1000 --concurrency 50
  Ctrl-C stops everything.

MSG
wait -n "${pids[@]}" || true
echo "a process exited; stopping the rest"
