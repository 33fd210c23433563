#!/usr/bin/env bash
# Seeds the demo tenant into the running compose stack (what scripts/seed-demo.sh does for
# `make run`), idempotently: installs Parley in the Jira sandbox as a Connect app with
# clientKey "demo" (the jira worker verifies the signed install hook and stores tenant demo
# with its shared secret and the sandbox's base URL, http://jira-sandbox:8020), then with
# parleyctl in a jira container: project SUP (anonymous visitors allowed, widget signing key
# made once in .run/compose/<project>/demo-widget.key) and the agent demo-agent (always on
# duty). Prints a demo page link and an agent console link with fresh tokens.
# Run by scripts/compose.sh up, with its environment (DOCKER_HOST, COMPOSE_*, the ports); with
# Docker, after `docker-compose -f deploy/docker-compose.yml -f deploy/docker-compose.local.yml
# up -d`, as it is (the defaults below are the compose files').
set -euo pipefail
cd "$(dirname "$0")/.."
export COMPOSE_FILE=${COMPOSE_FILE:-deploy/docker-compose.yml:deploy/docker-compose.local.yml}
JIRA_URL=http://127.0.0.1:${PARLEY_COMPOSE_JIRA_PORT:-18020}
BASE=${PARLEY_APP_BASE_URL:-http://127.0.0.1:18080}
STATE=.run/compose/${COMPOSE_PROJECT_NAME:-deploy}
mkdir -p "$STATE"
[ -s "$STATE/demo-widget.key" ] || (umask 077 && openssl rand -hex 32 >"$STATE/demo-widget.key")

# in_jira SCRIPT: runs SCRIPT with sh in the first jira container.
in_jira() { docker-compose exec -T -e DEMO_WIDGET_KEY jira sh -c "$1"; }

# The install hook goes sandbox -> gateway -> a jira replica; the answer names a failure
# (never print the whole answer: it holds the shared secret).
failure='import json, sys
answer = json.loads(sys.argv[1] or "{}")
if answer.get("installed") is not True:
    print(answer.get("error") or answer.get("app_status") or "no answer")
    sys.exit(1)'
for attempt in 1 2 3 4 5; do
  answer=$(curl -sS -XPOST -H 'Content-Type: application/json' \
    -d "{\"descriptor_url\": \"$BASE/atlassian-connect.json\", \"client_key\": \"demo\"}" \
    "$JIRA_URL/_sandbox/connect/install") || answer=""
  why=$(/usr/bin/python3 -c "$failure" "$answer") && break
  ((attempt < 5)) || { echo "compose-seed: Parley not installed in the Jira sandbox: $why" >&2; exit 1; }
  sleep 1
done
# One exec for the store, one for the tokens (each exec costs a second or two through
# podman); the widget key reaches the container through the environment, not the arguments.
DEMO_WIDGET_KEY=$(cat "$STATE/demo-widget.key")
export DEMO_WIDGET_KEY
in_jira 'parleyctl init >/dev/null &&
  parleyctl project set --tenant demo --project SUP --issue-type Support \
    --secret-key-env DEMO_WIDGET_KEY --anonymous yes --visibility when_online &&
  parleyctl agent set --tenant demo --account demo-agent --projects SUP \
    --schedule "UTC|mon-sun 00:00-24:00"'
tokens=$(in_jira 'parleyctl token customer --tenant demo --project SUP \
    --email ada@example.com --name "Ada Lovelace" --ttl-s 3600 &&
  parleyctl token agent --tenant demo --account demo-agent --ttl-s 28800')
customer=$(sed -n 1p <<<"$tokens")
agent=$(sed -n 2p <<<"$tokens")
cat <<MSG
seeded: tenant demo (a Connect installation of the Jira sandbox), project SUP, agent demo-agent
    customer: $BASE/demo.html#tenant=demo&project=SUP&token=$customer
    agent:    $BASE/agent.html#tenant=demo&token=$agent
MSG
