#!/usr/bin/env bash
# Seeds the local store with a demo tenant through parleyctl (idempotent: every run writes the
# same items). Used by `make run`, in two steps:
#   scripts/seed-demo.sh            before the processes start: tenant demo (an API-token
#                                   tenant at first), project SUP, agent demo-agent
#   scripts/seed-demo.sh --connect  once the gateway and the jira worker run: installs Parley in
#                                   the Jira sandbox as a Connect app with clientKey "demo", so
#                                   the demo tenant becomes a Connect installation with a
#                                   shared secret, the key agents' tokens are signed with
#                                   (`parleyctl token agent`); the agent demo-agent is an
#                                   account of the sandbox (run-local.sh starts it so)
# The demo's secrets are made once and kept in .run/:
#   .run/demo-jira.token   the demo tenant's Jira API token (the Jira sandbox accepts it)
#   .run/demo-widget.key   project SUP's widget signing key (signs customers' auto-login tokens)
# Environment: the same as parleyctl (PARLEY_DYNAMO_ENDPOINT, PARLEY_SECRETS_KEY, ...), plus
# PARLEY_DEMO_JIRA_URL (default http://127.0.0.1:8020, the local Jira sandbox) and, for
# --connect, PARLEY_APP_BASE_URL (default http://127.0.0.1:8080, the gateway).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${PARLEY_BIN:-build/bin}
JIRA_URL=${PARLEY_DEMO_JIRA_URL:-http://127.0.0.1:8020}

if [ "${1:-}" = --connect ]; then
  descriptor="${PARLEY_APP_BASE_URL:-http://127.0.0.1:8080}/atlassian-connect.json"
  answer=$(curl -s -XPOST -H 'Content-Type: application/json' \
    -d "{\"descriptor_url\": \"$descriptor\", \"client_key\": \"demo\"}" \
    "$JIRA_URL/_sandbox/connect/install") || answer=""
  installed='import json, sys; sys.exit(json.loads(sys.argv[1]).get("installed") is not True)'
  if /usr/bin/python3 -c "$installed" "${answer:-null}" 2>/dev/null; then
    echo "seeded: tenant demo is now a Connect installation of the Jira sandbox (agent tokens work)"
    exit 0
  fi
  echo "seed-demo: the Jira sandbox could not install Parley from $descriptor:" >&2
  echo "  ${answer:-no answer}" | cut -c1-300 >&2
  exit 1
fi

mkdir -p .run
[ -s .run/demo-jira.token ] || openssl rand -hex 16 > .run/demo-jira.token
[ -s .run/demo-widget.key ] || openssl rand -hex 32 > .run/demo-widget.key
DEMO_JIRA_TOKEN=$(cat .run/demo-jira.token)
DEMO_WIDGET_KEY=$(cat .run/demo-widget.key)
export DEMO_JIRA_TOKEN DEMO_WIDGET_KEY

ctl() { "$BIN/parleyctl" "$@" >/dev/null; }
ctl init
ctl tenant set --id demo --base-url "$JIRA_URL" \
  --auth token --api-user agent@demo.parley.local --api-token-env DEMO_JIRA_TOKEN
ctl project set --tenant demo --project SUP --issue-type Support \
  --secret-key-env DEMO_WIDGET_KEY --anonymous yes --visibility when_online
ctl agent set --tenant demo --account demo-agent --projects SUP \
  --schedule "UTC|mon-sun 00:00-24:00"
echo "seeded: tenant demo, project SUP (widget key in .run/demo-widget.key), agent demo-agent"
