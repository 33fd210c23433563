#!/usr/bin/env bash
# Builds the images of the compose stack with podman, at low CPU priority and in parallel,
# exactly as the build sections of the compose files say (context, dockerfile, args, image
# tag: read from `docker-compose config`), each image once even when several services share
# it. podman's layer cache makes a rebuild without changes take seconds. The machine's CA
# bundle is mounted read-only at /run/build-ca.crt during the build (for npm behind a
# TLS-inspecting proxy; see deploy/stores/Dockerfile); it never lands in a layer.
# Run by scripts/compose.sh (which sets COMPOSE_FILE, PARLEY_BASE_IMAGE and podman's
# configuration); prints one line per image and its size.
set -euo pipefail
cd "$(dirname "$0")/.."
CA=${PARLEY_BUILD_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
LOGS=$(mktemp -d /tmp/parley-build.XXXXXX)
trap 'rm -rf "$LOGS"' EXIT

# One line per image: tag, context, dockerfile, then NAME=VALUE build args.
images=$(docker-compose config | /usr/bin/python3 -c '
import sys, yaml
seen = {}
for name, service in sorted(yaml.safe_load(sys.stdin)["services"].items()):
    build = service.get("build")
    if build and service["image"] not in seen:
        args = [f"{k}={v}" for k, v in sorted((build.get("args") or {}).items())]
        seen[service["image"]] = [service["image"], build["context"],
                                  build.get("dockerfile", "Dockerfile")] + args
for words in seen.values():
    print("\t".join(words))')

log_of() { echo "$LOGS/$(echo "$1" | tr '/:' '__').log"; } # log_of TAG: its build log

volume=()
[ -s "$CA" ] && volume=(-v "$CA:/run/build-ca.crt:ro")
pids=() tags=()
while IFS=$'\t' read -r tag context dockerfile rest; do
  args=()
  for arg in $rest; do args+=(--build-arg "$arg"); done
  log_file=$(log_of "$tag")
  (
    began=$SECONDS
    nice -n 19 podman build --layers "${volume[@]}" "${args[@]}" -f "$context/$dockerfile" \
      -t "$tag" "$context" >"$log_file" 2>&1
    echo $((SECONDS - began)) >"$log_file.s"
  ) &
  pids+=($!) tags+=("$tag")
done <<<"$images"

failed=0
for i in "${!pids[@]}"; do
  if wait "${pids[i]}"; then
    echo "image: ${tags[i]} $(podman image inspect -f '{{.Size}}' "${tags[i]}" |
      awk '{printf "%.1f MB", $1 / 1e6}'), built in $(cat "$(log_of "${tags[i]}").s") s"
  else
    failed=1
    echo "image: ${tags[i]} FAILED; the end of its build log:" >&2
    tail -25 "$(log_of "${tags[i]}")" >&2
  fi
done
exit "$failed"
