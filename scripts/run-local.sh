#!/usr/bin/env bash
# `make run`: the local stack on loopback - redis-server, dynalite (DynamoDB, emptied at each start, in
# .run/dynalite), the Jira sandbox, the broker, the gateway and one replica of every worker
# that exists - with logs to the terminal. Seeds the demo tenant and installs Parley in the Jira
# sandbox as it (scripts/seed-demo.sh), then prints the URLs, among them the demo shop page and
# the agent console with fresh tokens in their fragments. Ctrl-C (or SIGTERM) stops everything it started, gracefully (each
# process drains on SIGTERM). A secrets key for the local store is made once in .run/.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${PARLEY_BIN:-build/bin}
export PARLEY_BROKER_ENDPOINT=${PARLEY_BROKER_ENDPOINT:-tcp://127.0.0.1:5555}
export PARLEY_BROKER_EVENTS_IN=${PARLEY_BROKER_EVENTS_IN:-tcp://127.0.0.1:5556}
export PARLEY_BROKER_EVENTS_OUT=${PARLEY_BROKER_EVENTS_OUT:-tcp://127.0.0.1:5557}
export PARLEY_BROKER_STATS_ADDRESS=${PARLEY_BROKER_STATS_ADDRESS:-127.0.0.1:8090}
REDIS_PORT=${PARLEY_LOCAL_REDIS_PORT:-6390}
DYNAMO_PORT=${PARLEY_LOCAL_DYNAMO_PORT:-8010}
JIRA_PORT=${PARLEY_LOCAL_JIRA_PORT:-8020}
export PARLEY_GATEWAY_PORT=${PARLEY_GATEWAY_PORT:-8080}
export PARLEY_APP_BASE_URL=${PARLEY_APP_BASE_URL:-http://127.0.0.1:$PARLEY_GATEWAY_PORT}
# the widget, the demo page and the agent console (an empty value turns static files off)
export PARLEY_GATEWAY_STATIC_DIR=${PARLEY_GATEWAY_STATIC_DIR-$PWD/gateway/static}
export PARLEY_DEMO_JIRA_URL=${PARLEY_DEMO_JIRA_URL:-http://127.0.0.1:$JIRA_PORT}
export PARLEY_CONNECT_INSTALL_KEYS_URL=${PARLEY_CONNECT_INSTALL_KEYS_URL:-$PARLEY_DEMO_JIRA_URL/_sandbox/connect-install-keys}
export PARLEY_JIRA_ALLOW_HTTP=${PARLEY_JIRA_ALLOW_HTTP:-1}
export PARLEY_REDIS_URL=${PARLEY_REDIS_URL:-redis://127.0.0.1:$REDIS_PORT/0}
export PARLEY_DYNAMO_ENDPOINT=${PARLEY_DYNAMO_ENDPOINT:-http://127.0.0.1:$DYNAMO_PORT}
# The Jira sandbox keeps its issues and customers in memory, so the local DynamoDB starts
# empty too: otherwise it would map customers to accounts the fresh sandbox never had.
rm -rf .run/dynalite
mkdir -p .run/dynalite
[ -s .run/secrets.key ] || openssl rand -base64 32 > .run/secrets.key
export PARLEY_SECRETS_KEY=${PARLEY_SECRETS_KEY:-$(cat .run/secrets.key)}

pids=()
stop() {
  trap - INT TERM EXIT
  echo "stopping ${#pids[@]} processes, newest first..."
  # Workers first (they drain and flush to the stores), then the broker, then the stores.
  # The stores run in their own session, so the terminal's Ctrl-C does not reach them early.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill -TERM "${pids[i]}" 2>/dev/null || true
    wait "${pids[i]}" 2>/dev/null || true
  done
  echo "stopped."
}
wait_port() { # wait_port PORT NAME: until something listens on 127.0.0.1:PORT
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$2 did not start on port $1" >&2
  return 1
}
trap stop INT TERM EXIT

setsid redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save '' --appendonly no \
  --loglevel warning & pids+=($!)
setsid node_modules/.bin/dynalite --host 127.0.0.1 --port "$DYNAMO_PORT" --path .run/dynalite \
  --createTableMs 0 & pids+=($!)
[ -s .run/demo-jira.token ] || openssl rand -hex 16 > .run/demo-jira.token
# the demo's API user is the Jira account demo-agent, the agent seed-demo.sh configures
/usr/bin/python3 sandboxes/jira/jira_sandbox.py --port "$JIRA_PORT" \
  --api-user "agent@demo.parley.local:$(cat .run/demo-jira.token):demo-agent" >/dev/null \
  & pids+=($!)
wait_port "$REDIS_PORT" redis-server
wait_port "$DYNAMO_PORT" dynalite
wait_port "$JIRA_PORT" "the Jira sandbox"
scripts/seed-demo.sh
"$BIN/parley-broker" & pids+=($!)
for worker in "$BIN"/parley-echo "$BIN"/parley-presence "$BIN"/parley-jira \
              "$BIN"/parley-gateway; do
  [ -x "$worker" ] && { "$worker" & pids+=($!); }
done

for _ in $(seq 50); do
  curl -sf "http://$PARLEY_BROKER_STATS_ADDRESS/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done
# The demo tenant becomes a Connect installation (agents' tokens are signed with its shared
# secret) once the gateway serves the descriptor and a jira worker verifies the install hook.
jira_ready() {
  curl -sf "http://$PARLEY_BROKER_STATS_ADDRESS/stats" | /usr/bin/python3 -c \
    'import json, sys; sys.exit(not json.load(sys.stdin)["services"].get("jira", {}).get("replicas"))'
}
pages=""
for _ in $(seq 100); do
  curl -sf "$PARLEY_APP_BASE_URL/healthz" >/dev/null 2>&1 && jira_ready 2>/dev/null && break
  sleep 0.1
done
if scripts/seed-demo.sh --connect; then
  customer_token=$("$BIN/parleyctl" token customer --tenant demo --project SUP \
                     --email ada@example.com --name "Ada Lovelace" --ttl-s 3600) || true
  agent_token=$("$BIN/parleyctl" token agent --tenant demo --account demo-agent \
                  --ttl-s 28800) || true
  pages="
    customer: $PARLEY_APP_BASE_URL/demo.html#tenant=demo&project=SUP&token=$customer_token
    agent:    $PARLEY_APP_BASE_URL/agent.html#tenant=demo&token=$agent_token
              (open both, start a chat on the demo page, join it in the console; the tokens
              last 1 h and 8 h: new ones with $BIN/parleyctl token customer|agent, see README)"
fi
cat <<MSG

  Parley is running on loopback.
    stats:    http://$PARLEY_BROKER_STATS_ADDRESS/stats
    metrics:  http://$PARLEY_BROKER_STATS_ADDRESS/metrics
    health:   http://$PARLEY_BROKER_STATS_ADDRESS/healthz
    gateway:  $PARLEY_APP_BASE_URL  (Connect descriptor: $PARLEY_APP_BASE_URL/atlassian-connect.json)
    jira:     $PARLEY_DEMO_JIRA_URL/_sandbox/  (the Jira sandbox: issues and comments)
    redis:    $PARLEY_REDIS_URL
    dynamodb: $PARLEY_DYNAMO_ENDPOINT (dynalite in .run/dynalite; empty at each start)
    admin:    $BIN/parleyctl --help   (PARLEY_SECRETS_KEY is in .run/secrets.key)
    demo:     tenant demo, project SUP, agent demo-agent (scripts/seed-demo.sh)$pages
    try:      $BIN/parley-probe --requests 1000 --concurrency 50
              $BIN/presence-sim --sockets 100 --duration-ms 5000
  Ctrl-C stops everything.

MSG
wait -n "${pids[@]}" || true
echo "a process exited; stopping the rest"
