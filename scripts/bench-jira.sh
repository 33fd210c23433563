#!/usr/bin/env bash
# The jira worker's part of `make bench` (scripts/bench.sh runs it last; it also runs alone):
# parley-broker + one parley-jira replica on their own redis-server and dynalite, against the
# Jira sandbox (sandboxes/jira), driven by `parley-bench jira-client` through the broker the
# way a gateway sends messages (one conversation.message in flight per conversation, under the
# conversation's order key). All on 127.0.0.1 ports picked free.
#
#   jira_overhead_p99_ms         what Parley adds to each message on top of the sandbox's own
#                                time for its comment: for each of JIRA_MESSAGES messages sent
#                                one at a time, the client's end-to-end latency minus the
#                                sandbox's own handling time of that POST .../comment (its
#                                request record, same order); p99 over the messages, median
#                                over JIRA_ROUNDS rounds (jira_overhead_p50_ms likewise)
#   jira_msgs_per_s_per_replica  messages persisted per second by the one replica with the
#                                sandbox answering every call in JIRA_LATENCY_MS (50), JIRA_SLOTS
#                                conversations in flight and PARLEY_JIRA_TENANT_CONCURRENCY =
#                                JIRA_CONCURRENCY; median over the rounds
# and context: the end-to-end and sandbox percentiles behind the overhead; the same comment
# POST sent straight to the sandbox by a C client (libcurl, keep-alive, one at a time:
# jira_direct_*) and Parley's end-to-end percentiles minus those (jira_over_direct_*, what a
# client sees added, the sandbox's own wake-up and write included on both sides); CPU use (100 =
# one core) of the replica, the sandbox, the broker and the load generator during the
# throughput windows.
#
# Settings (environment): PARLEY_BENCH_JIRA_ROUNDS (3), PARLEY_BENCH_JIRA_MESSAGES (400),
# PARLEY_BENCH_JIRA_LATENCY_MS (50), PARLEY_BENCH_JIRA_SLOTS (64),
# PARLEY_BENCH_JIRA_CONCURRENCY (64), PARLEY_BENCH_DURATION_MS (3000 -> the throughput window
# is twice that), PARLEY_BENCH_WARMUP_MS (500).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${PARLEY_BIN:-build/bin}
BENCH=${PARLEY_BENCH_BIN:-build/bin/parley-bench}
ROUNDS=${PARLEY_BENCH_JIRA_ROUNDS:-3}
MESSAGES=${PARLEY_BENCH_JIRA_MESSAGES:-400}
LATENCY_MS=${PARLEY_BENCH_JIRA_LATENCY_MS:-50}
SLOTS=${PARLEY_BENCH_JIRA_SLOTS:-64}
CONCURRENCY=${PARLEY_BENCH_JIRA_CONCURRENCY:-64}
DURATION_MS=$((2 * ${PARLEY_BENCH_DURATION_MS:-3000}))
WARMUP_MS=$((2 * ${PARLEY_BENCH_WARMUP_MS:-500}))
PYTHON=/usr/bin/python3
LOGS=build/bench/jira
mkdir -p "$LOGS"
rm -f "$LOGS"/*.log
say() { echo "bench-jira: $*" >&2; }

for bin in "$BIN/parley-broker" "$BIN/parley-jira" "$BIN/parleyctl" "$BENCH" \
           node_modules/.bin/dynalite; do
  [ -x "$bin" ] || { say "$bin is missing (run make, or scripts/deps.sh)"; exit 1; }
done

pids=()
stop_all() {
  local status=$?
  trap - EXIT INT TERM
  local i
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do wait "${pids[i]}" 2>/dev/null || true; done
  exit "$status"
}
trap stop_all EXIT
trap 'exit 130' INT TERM
start() { # start NAME CMD...: in the background, output to $LOGS/NAME.log
  local name=$1; shift
  "$@" >"$LOGS/$name.log" 2>&1 &
  pids+=($!)
  last_pid=$!
}
wait_port() {
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  say "$2 did not start on port $1 (see $LOGS/)"
  exit 1
}

read -r P_REQ P_EIN P_EOUT P_STATS P_REDIS P_DYNAMO P_JIRA <<<"$("$BENCH" ports 7)"
export PARLEY_BROKER_ENDPOINT=tcp://127.0.0.1:$P_REQ
export PARLEY_BROKER_EVENTS_IN=tcp://127.0.0.1:$P_EIN
export PARLEY_BROKER_EVENTS_OUT=tcp://127.0.0.1:$P_EOUT
export PARLEY_BROKER_STATS_ADDRESS=127.0.0.1:$P_STATS
export PARLEY_REDIS_URL=redis://127.0.0.1:$P_REDIS/0
export PARLEY_DYNAMO_ENDPOINT=http://127.0.0.1:$P_DYNAMO
export AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench
unset AWS_SESSION_TOKEN
export PARLEY_SECRETS_KEY=${PARLEY_SECRETS_KEY:-$(openssl rand -base64 32)}
export PARLEY_LOG_LEVEL=${PARLEY_LOG_LEVEL:-warn}
SANDBOX=http://127.0.0.1:$P_JIRA
TOKEN=bench-token

say "redis-server, dynalite, the Jira sandbox, the broker, one parley-jira replica"
start redis redis-server --bind 127.0.0.1 --port "$P_REDIS" --save '' --appendonly no
start dynalite node_modules/.bin/dynalite --host 127.0.0.1 --port "$P_DYNAMO" --createTableMs 0
start sandbox "$PYTHON" sandboxes/jira/jira_sandbox.py --port "$P_JIRA" \
  --api-user "bench@parley.test:$TOKEN"
sandbox_pid=$last_pid
start broker "$BIN/parley-broker"
broker_pid=$last_pid
wait_port "$P_REDIS" redis-server
wait_port "$P_DYNAMO" dynalite
wait_port "$P_JIRA" "the Jira sandbox"
"$BIN/parleyctl" init >/dev/null
BENCH_TOKEN=$TOKEN "$BIN/parleyctl" tenant set --id bench --base-url "$SANDBOX" --auth token \
  --api-user bench@parley.test --api-token-env BENCH_TOKEN >/dev/null
SIGNING=bench "$BIN/parleyctl" project set --tenant bench --project SUP --issue-type Support \
  --secret-key-env SIGNING --visibility always >/dev/null
start jira env PARLEY_JIRA_ALLOW_HTTP=1 PARLEY_JIRA_TENANT_CONCURRENCY="$CONCURRENCY" \
  PARLEY_WORKER_CAPACITY=$((SLOTS * 2)) "$BIN/parley-jira"
jira_pid=$last_pid
for _ in $(seq 100); do
  curl -sf "http://$PARLEY_BROKER_STATS_ADDRESS/stats" 2>/dev/null | grep -q '"replicas": 1' &&
    break
  sleep 0.1
done

latency() { curl -sf -XPOST -d "{\"ms\": $1}" "$SANDBOX/_sandbox/latency" >/dev/null; }

# The issue the direct client comments on (its comments are told apart from Parley's by key).
DIRECT=$(curl -sf -u "bench@parley.test:$TOKEN" -H 'Content-Type: application/json' \
  -d '{"fields": {"project": {"key": "SUP"}, "issuetype": {"name": "Task"},
                  "summary": "direct client"}}' "$SANDBOX/rest/api/3/issue" |
  "$PYTHON" -c 'import json, sys; print(json.load(sys.stdin)["key"])')

declare -A values
add() { values[$1]+="$2 "; }

# overhead OUT: pairs each latency in OUT with the sandbox's time for that comment.
# ... and takes DIRECT's latencies (the same POST straight to the sandbox) as the client-side
# view of the sandbox's time.
overhead() {
  curl -sf "$SANDBOX/_sandbox/requests" >"$LOGS/records.json"
  "$PYTHON" - "$1" "$LOGS/records.json" "$2" "$DIRECT" <<'PY'
import json, sys
def latencies(path):
    line = next(l for l in open(path) if l.startswith("latencies_us:"))
    return [int(v) / 1000 for v in line.split(":", 1)[1].strip().split(",")]
e2e, direct = latencies(sys.argv[1]), latencies(sys.argv[3])
posts = [r for r in json.load(open(sys.argv[2]))["records"]
         if r["method"] == "POST" and r["path"].endswith("/comment") and r.get("status") == 201
         and f"/{sys.argv[4]}/" not in r["path"]]
own = [r["ms"] for r in posts[-len(e2e):]]
assert len(own) == len(e2e), (len(own), len(e2e))
def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]
added = [a - b for a, b in zip(e2e, own)]
for name, series in (("overhead", added), ("e2e", e2e), ("sandbox", own),
                     ("direct", direct)):
    print(f"{name}_p50_ms {pct(series, 0.50):.3f}")
    print(f"{name}_p99_ms {pct(series, 0.99):.3f}")
for p in (0.50, 0.99):
    print(f"over_direct_p{int(p * 100)}_ms {pct(e2e, p) - pct(direct, p):.3f}")
PY
}

for round in $(seq "$ROUNDS"); do
  say "round $round/$ROUNDS: $MESSAGES messages one at a time, sandbox answering at once"
  latency 0
  curl -sf -XDELETE "$SANDBOX/_sandbox/requests" >/dev/null
  "$BENCH" jira-client --tenant bench --project SUP --inflight 1 --messages "$MESSAGES" \
    --timeout-ms 30000 >"$LOGS/overhead.out" 2>>"$LOGS/client.log"
  "$BENCH" http-post --endpoint "$SANDBOX/rest/api/3/issue/$DIRECT/comment" \
    --messages "$MESSAGES" --jobs-key "bench@parley.test:$TOKEN" --timeout-ms 30000 \
    >"$LOGS/direct.out" 2>>"$LOGS/client.log"
  line=""
  while read -r key value; do
    add "$key" "$value"
    line+=" $key=$value"
  done < <(overhead "$LOGS/overhead.out" "$LOGS/direct.out")
  say " $line"
  say "round $round/$ROUNDS: $SLOTS conversations in flight, sandbox answering in" \
      "$LATENCY_MS ms"
  latency "$LATENCY_MS"
  "$BENCH" jira-client --tenant bench --project SUP --inflight "$SLOTS" \
    --warmup-ms "$WARMUP_MS" --duration-ms "$DURATION_MS" --timeout-ms 30000 \
    --watch "jira:$jira_pid" --watch "sandbox:$sandbox_pid" --watch "broker:$broker_pid" \
    >"$LOGS/throughput.out" 2>>"$LOGS/client.log"
  line=""
  while read -r key value; do
    key=${key%:}
    add "throughput_$key" "$value"
    line+=" $key=$value"
  done <"$LOGS/throughput.out"
  say " $line"
  [ "$(grep '^errors:' "$LOGS/throughput.out" | cut -d' ' -f2)" = 0 ] ||
    { say "errors in the throughput run (see $LOGS/)"; exit 1; }
done

median() {
  tr ' ' '\n' <<<"${values[$1]:-}" | grep -v '^$' | sort -g |
    awk '{v[NR] = $1}
         END {if (NR) printf "%s", (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}
figure() { local v; v=$(median "$2"); [ -n "$v" ] && printf '%s: %s\n' "$1" "$v"; return 0; }

figure jira_overhead_p99_ms overhead_p99_ms
figure jira_msgs_per_s_per_replica throughput_rps
figure jira_overhead_p50_ms overhead_p50_ms
figure jira_e2e_p50_ms e2e_p50_ms
figure jira_e2e_p99_ms e2e_p99_ms
figure jira_sandbox_p50_ms sandbox_p50_ms
figure jira_sandbox_p99_ms sandbox_p99_ms
figure jira_direct_p50_ms direct_p50_ms
figure jira_direct_p99_ms direct_p99_ms
figure jira_over_direct_p50_ms over_direct_p50_ms
figure jira_over_direct_p99_ms over_direct_p99_ms
figure jira_loaded_p50_us throughput_p50_us
figure jira_loaded_p99_us throughput_p99_us
for label in jira sandbox broker client; do
  figure "jira_throughput_cpu_${label}_pct" "throughput_cpu_${label}_pct"
done
printf 'jira_sandbox_latency_ms: %s\njira_slots: %s\njira_tenant_concurrency: %s\n' \
  "$LATENCY_MS" "$SLOTS" "$CONCURRENCY"
