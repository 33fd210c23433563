#!/usr/bin/env bash
# Seeds the local store with a demo tenant through parleyctl (idempotent: every run writes the
# same items). Used by `make run`. The demo's secrets are made once and kept in .run/:
#   .run/demo-jira.token   the demo tenant's Jira API token (the Jira sandbox accepts it)
#   .run/demo-widget.key   project SUP's widget signing key (signs customers' auto-login tokens)
# Environment: the same as parleyctl (PARLEY_DYNAMO_ENDPOINT, PARLEY_SECRETS_KEY, ...), plus
# PARLEY_DEMO_JIRA_URL (default http://127.0.0.1:8020, the local Jira sandbox).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${PARLEY_BIN:-build/bin}
mkdir -p .run
[ -s .run/demo-jira.token ] || openssl rand -hex 16 > .run/demo-jira.token
[ -s .run/demo-widget.key ] || openssl rand -hex 32 > .run/demo-widget.key
DEMO_JIRA_TOKEN=$(cat .run/demo-jira.token)
DEMO_WIDGET_KEY=$(cat .run/demo-widget.key)
export DEMO_JIRA_TOKEN DEMO_WIDGET_KEY

ctl() { "$BIN/parleyctl" "$@" >/dev/null; }
ctl init
ctl tenant set --id demo --base-url "${PARLEY_DEMO_JIRA_URL:-http://127.0.0.1:8020}" \
  --auth token --api-user agent@demo.parley.local --api-token-env DEMO_JIRA_TOKEN
ctl project set --tenant demo --project SUP --issue-type Support \
  --secret-key-env DEMO_WIDGET_KEY --anonymous yes --visibility when_online
ctl agent set --tenant demo --account demo-agent --projects SUP \
  --schedule "UTC|mon-sun 00:00-24:00"
echo "seeded: tenant demo, project SUP (widget key in .run/demo-widget.key), agent demo-agent"
