#!/bin/sh
# Entry point of the Jira sandbox container. The sandbox listens on loopback only and only
# contacts loopback URLs (its safety rule), so socat relays:
#   0.0.0.0:$JIRA_SANDBOX_PORT (default 8020) -> the sandbox on 127.0.0.1:8021, and
#   each "PORT=HOST:HOSTPORT" of $JIRA_SANDBOX_APP_RELAYS: 127.0.0.1:PORT -> HOST:HOSTPORT,
#   so an app whose public URL is http://127.0.0.1:PORT (the gateway) is reached in its own
#   container (Connect descriptor, install hooks, webhooks).
# The sandbox gives out $JIRA_SANDBOX_PUBLIC_URL (default http://jira-sandbox:8020) as its
# base URL: the name the workers reach it by. Arguments are passed to jira_sandbox.py
# (--api-user, --project, ...). The sandbox runs as PID 1 and stops on SIGTERM with status 0.
set -eu
port=${JIRA_SANDBOX_PORT:-8020}
socat "TCP-LISTEN:$port,fork,reuseaddr" TCP:127.0.0.1:8021 &
for relay in ${JIRA_SANDBOX_APP_RELAYS:-}; do
  socat "TCP-LISTEN:${relay%%=*},bind=127.0.0.1,fork,reuseaddr" "TCP:${relay#*=}" &
done
exec python3 /opt/jira-sandbox/jira_sandbox.py --host 127.0.0.1 --port 8021 \
  --public-url "${JIRA_SANDBOX_PUBLIC_URL:-http://jira-sandbox:$port}" "$@"
