#!/usr/bin/env bash
# Runs deploy/docker-compose.yml for real on this machine, where no Docker engine runs: podman
# (as root, with Parley's own configuration and storage from deploy/podman/, nothing global
# changed) serves the Docker API on a socket of its own, and docker-compose drives it.
#
#   scripts/compose.sh up      install what is missing, build the base image (once) and the
#                              images, start the stack, wait until it is healthy, seed the
#                              demo tenant, print the URLs; the stack keeps running
#   scripts/compose.sh down    stop and remove the stack (containers, network, volumes)
#   scripts/compose.sh test    up, the end-to-end tests (tests/deploy), down: what CI runs
#   scripts/compose.sh build   the base image and the images only
#   scripts/compose.sh config  validate the compose files (docker-compose config)
#   scripts/compose.sh compose ARGS...  docker-compose ARGS on the stack (ps, logs, exec -T,
#                              up -d --scale jira=3 --no-recreate, ...)
#   scripts/compose.sh ctl ARGS...      parleyctl ARGS in a jira container
#   scripts/compose.sh reset   down, then wipe Parley's podman storage (a cold start)
#
# Environment (defaults for up; test uses project parley-e2e and ports 28080/28090/28020):
#   PARLEY_COMPOSE_PROJECT (parley), PARLEY_COMPOSE_GATEWAY_PORT (18080),
#   PARLEY_COMPOSE_STATS_PORT (18090), PARLEY_COMPOSE_JIRA_PORT (18020): the project name and
#   the host ports, all on 127.0.0.1, apart from `make run` (8080/8090) and the tests.
# Every subcommand is idempotent; `test` and a failed `up` tear down what they started.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
cmd=${1:-}
[ $# -gt 0 ] && shift

if [ "$cmd" = test ]; then
  : "${PARLEY_COMPOSE_PROJECT:=parley-e2e}" "${PARLEY_COMPOSE_GATEWAY_PORT:=28080}"
  : "${PARLEY_COMPOSE_STATS_PORT:=28090}" "${PARLEY_COMPOSE_JIRA_PORT:=28020}"
fi
export PARLEY_COMPOSE_PROJECT=${PARLEY_COMPOSE_PROJECT:-parley}
export PARLEY_COMPOSE_GATEWAY_PORT=${PARLEY_COMPOSE_GATEWAY_PORT:-18080}
export PARLEY_COMPOSE_STATS_PORT=${PARLEY_COMPOSE_STATS_PORT:-18090}
export PARLEY_COMPOSE_JIRA_PORT=${PARLEY_COMPOSE_JIRA_PORT:-18020}
export PARLEY_APP_BASE_URL=${PARLEY_APP_BASE_URL:-http://127.0.0.1:$PARLEY_COMPOSE_GATEWAY_PORT}
export PARLEY_BASE_IMAGE=${PARLEY_BASE_IMAGE:-localhost/bookworm:base}
# podman: Parley's configuration and storage (deploy/podman/); its own API socket per project
export CONTAINERS_CONF=$ROOT/deploy/podman/containers.conf
export CONTAINERS_STORAGE_CONF=$ROOT/deploy/podman/storage.conf
RUN_DIR=/run/parley-podman
SOCKET=$RUN_DIR/$PARLEY_COMPOSE_PROJECT.sock
SERVICE_PID=$RUN_DIR/$PARLEY_COMPOSE_PROJECT.pid
export DOCKER_HOST=unix://$SOCKET
export COMPOSE_PROJECT_NAME=$PARLEY_COMPOSE_PROJECT
export COMPOSE_FILE=$ROOT/deploy/docker-compose.yml:$ROOT/deploy/docker-compose.local.yml
export COMPOSE_HTTP_TIMEOUT=300
STATE=$ROOT/.run/compose/$PARLEY_COMPOSE_PROJECT
STATS_URL=http://127.0.0.1:$PARLEY_COMPOSE_STATS_PORT
JIRA_URL=http://127.0.0.1:$PARLEY_COMPOSE_JIRA_PORT

log() { echo "compose: $*"; }

# Installs podman, runc, docker-compose and debootstrap from apt when one is missing.
ensure_packages() {
  scripts/deps.sh podman runc netavark aardvark-dns iptables docker-compose debootstrap curl \
    openssl python3-yaml python3-pytest python3-websockets
}

service_up() { curl -fsS --max-time 2 --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; }

# Starts `podman system service` on this project's socket unless it already answers.
start_service() {
  mkdir -p "$RUN_DIR"
  service_up && return 0
  rm -f "$SOCKET"
  setsid podman system service --time=0 "unix://$SOCKET" \
    >"$RUN_DIR/$PARLEY_COMPOSE_PROJECT.log" 2>&1 </dev/null &
  echo $! >"$SERVICE_PID"
  for _ in $(seq 100); do service_up && return 0; sleep 0.1; done
  log "podman system service did not answer on $SOCKET" >&2
  tail -5 "$RUN_DIR/$PARLEY_COMPOSE_PROJECT.log" >&2
  return 1
}

stop_service() {
  [ -s "$SERVICE_PID" ] || return 0
  local pid
  pid=$(cat "$SERVICE_PID")
  if kill "$pid" 2>/dev/null; then
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$SERVICE_PID" "$SOCKET"
}

secrets_key() {
  mkdir -p "$STATE"
  [ -s "$STATE/secrets.key" ] || (umask 077 && openssl rand -base64 32 >"$STATE/secrets.key")
  PARLEY_SECRETS_KEY=$(cat "$STATE/secrets.key")
  export PARLEY_SECRETS_KEY
}

validate() {
  docker-compose -f deploy/docker-compose.yml config -q
  docker-compose config -q
  log "compose files valid"
}

build() {
  nice -n 19 scripts/podman-base-image.sh
  scripts/compose-build.sh
}

# Waits until the broker and the gateway answer /healthz on their published ports, the
# broker lists a jira and a presence replica, the sandbox answers, and every container passes
# its own healthcheck (run by hand: podman's timers need systemd, absent here).
wait_healthy() {
  local deadline=$((SECONDS + ${PARLEY_COMPOSE_WAIT_S:-180})) ready ctr
  ready='import json, sys
services = json.load(sys.stdin)["services"]
sys.exit(not all(services.get(s, {}).get("replicas", 0) >= 1 for s in ("jira", "presence")))'
  until curl -fsS -o /dev/null "$STATS_URL/healthz" 2>/dev/null &&
        curl -fsS -o /dev/null "$PARLEY_APP_BASE_URL/healthz" 2>/dev/null &&
        curl -fsS -o /dev/null "$JIRA_URL/healthz" 2>/dev/null &&
        curl -fsS "$STATS_URL/stats" 2>/dev/null | /usr/bin/python3 -c "$ready"; do
    if ((SECONDS > deadline)); then
      log "the stack did not become healthy; containers and their last log lines:" >&2
      docker-compose ps >&2 || true
      docker-compose logs --tail=15 >&2 || true
      return 1
    fi
    sleep 0.5
  done
  for ctr in $(podman ps -q --filter "label=com.docker.compose.project=$COMPOSE_PROJECT_NAME"); do
    until podman healthcheck run "$ctr" >/dev/null 2>&1; do
      if ((SECONDS > deadline)); then
        log "healthcheck of $(podman inspect -f '{{.Name}}' "$ctr") fails" >&2
        return 1
      fi
      sleep 1
    done
  done
  log "healthy: broker, gateway, jira, presence, stores and the Jira sandbox"
}

# Everything `up` does but seeding: packages, podman service, images, containers, health.
start_stack() {
  local out
  ensure_packages
  start_service
  secrets_key
  validate
  build
  log "starting project $COMPOSE_PROJECT_NAME"
  out=$(docker-compose up -d --no-build --remove-orphans 2>&1) || { echo "$out" >&2; return 1; }
  wait_healthy
}

# Removes the project's containers, network and volumes, quietly (a project that is already
# gone is no error). Needs the podman service.
remove_project() {
  local out
  out=$(docker-compose down -v --remove-orphans --timeout 30 2>&1) || { echo "$out" >&2; return 1; }
}

# remove_project, then this project's podman service. Starts the service first when asked
# to (`down` of a stack whose service has gone).
down() {
  local status=0
  if service_up || { [ "$cmd" = down ] && command -v podman >/dev/null && start_service; }; then
    remove_project || status=$?
  fi
  stop_service
  return "$status"
}

case "$cmd" in
  up)
    trap 'log "up failed; tearing down"; down' EXIT
    trap 'exit 130' INT TERM
    start_stack
    scripts/compose-seed.sh
    trap - EXIT
    cat <<MSG

  Parley runs in docker-compose project $COMPOSE_PROJECT_NAME (podman).
    gateway:  $PARLEY_APP_BASE_URL   (demo page and agent console: the links above)
    stats:    $STATS_URL/stats   $STATS_URL/metrics
    jira:     $JIRA_URL/_sandbox/   (the Jira sandbox: issues and comments)
    scale:    scripts/compose.sh compose up -d --scale jira=3 --no-recreate
    logs:     scripts/compose.sh compose logs -f jira
    stop:     scripts/compose.sh down

MSG
    ;;
  down)
    down
    log "project $COMPOSE_PROJECT_NAME is down"
    ;;
  test)
    trap 'down' EXIT
    trap 'exit 130' INT TERM
    start=$SECONDS
    ensure_packages
    start_service
    remove_project # what an interrupted run may have left
    start_stack
    scripts/compose-seed.sh >/dev/null
    log "stack up and seeded in $((SECONDS - start)) s; running tests/deploy"
    /usr/bin/python3 -m pytest -q -rP -p no:cacheprovider tests/deploy
    ;;
  build)
    ensure_packages
    build
    ;;
  config)
    validate
    ;;
  compose)
    start_service
    secrets_key
    exec docker-compose "$@"
    ;;
  ctl)
    start_service
    exec docker-compose exec -T jira parleyctl "$@"
    ;;
  reset)
    down
    # (podman warns that the storage.conf it was given still exists: it is ours, kept)
    podman system reset --force 2>&1 | grep -v 'storage.conf\|remove this file' || true
    log "Parley's podman storage is empty (/var/lib/parley-podman)"
    ;;
  *)
    sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
