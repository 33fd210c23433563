#!/usr/bin/env bash
# Installs what Parley needs on Debian 12 when it is missing; quick when everything is there.
# apt: build libraries, servers used by the tests, test tools. npm: packages pinned in
# package-lock.json (installed into ./node_modules).
#   scripts/deps.sh            all of that
#   scripts/deps.sh PKG...     only these apt packages (scripts/compose.sh: podman and co.)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential pkg-config clang
  libzmq3-dev libczmq-dev libwebsockets-dev libwebsockets-evlib-ev libev-dev libmsgpack-dev
  libcurl4-openssl-dev
  libhiredis-dev libjansson-dev libcmocka-dev libssl-dev
  redis-server nodejs npm curl
  python3 python3-pytest python3-zmq python3-msgpack python3-websockets python3-boto3
  python3-jsonschema python3-yaml python3-jwt python3-cryptography
)
# with arguments: just those packages, and no npm
(($#)) && APT_PACKAGES=("$@")

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
# node and npm may come from elsewhere than Debian (then the packages above are not needed).
if command -v node >/dev/null && command -v npm >/dev/null; then
  filtered=()
  for pkg in "${missing[@]}"; do [[ "$pkg" == nodejs || "$pkg" == npm ]] || filtered+=("$pkg"); done
  missing=("${filtered[@]+"${filtered[@]}"}")
fi
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

(($#)) && exit 0
if [ -f package-lock.json ]; then
  stamp=node_modules/.parley-lock
  if [ ! -f "$stamp" ] || ! cmp -s package-lock.json "$stamp"; then
    echo "deps: npm ci"
    npm ci --no-audit --no-fund --loglevel=error
    cp package-lock.json "$stamp"
  fi
fi
