#!/usr/bin/env bash
# Builds the base image localhost/bookworm:base once: no registry is reachable here, so
# Parley's Dockerfiles start FROM it (ARG BASE; operators use debian:bookworm-slim). Debian 12
# by debootstrap (minbase) from the apt mirror this machine uses, with the updates and security
# suites, upgraded, then trimmed the way debian:bookworm-slim is (no docs, man pages or
# locales, no apt lists), and imported into podman. Does nothing when the image exists.
# Run by scripts/compose.sh, which points podman at Parley's own storage (deploy/podman/).
# Environment: PARLEY_BASE_IMAGE (default localhost/bookworm:base), PARLEY_DEBIAN_MIRROR and
# PARLEY_DEBIAN_SECURITY_MIRROR (default: read from apt's sources). Needs root and debootstrap.
set -euo pipefail
IMAGE=${PARLEY_BASE_IMAGE:-localhost/bookworm:base}
SUITE=bookworm

if podman image exists "$IMAGE"; then
  echo "base image: $IMAGE is there"
  exit 0
fi

# apt_uri SUITE: the first URI apt's sources use for SUITE (one-line and deb822 formats).
apt_uri() {
  /usr/bin/python3 - "$1" <<'PY'
import glob, sys
suite = sys.argv[1]
for path in ["/etc/apt/sources.list"] + sorted(glob.glob("/etc/apt/sources.list.d/*")):
    try:
        text = open(path).read()
    except OSError:
        continue
    if path.endswith(".sources"):
        for block in text.split("\n\n"):
            fields = {}
            for line in block.splitlines():
                if ":" in line and not line.startswith((" ", "#")):
                    name, _, value = line.partition(":")
                    fields[name.strip().lower()] = value.split()
            if "deb" in fields.get("types", []) and suite in fields.get("suites", []):
                print(fields["uris"][0]); sys.exit(0)
    else:
        for line in text.splitlines():
            words = [w for w in line.split("#")[0].split() if not w.startswith("[")]
            if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                print(words[1]); sys.exit(0)
PY
}

MIRROR=${PARLEY_DEBIAN_MIRROR:-$(apt_uri "$SUITE")}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${PARLEY_DEBIAN_SECURITY_MIRROR:-$(apt_uri "$SUITE-security")}
SECURITY=${SECURITY:-http://deb.debian.org/debian-security}
echo "base image: building $IMAGE with debootstrap from $MIRROR (a minute or two, once)"

rootfs=$(mktemp -d /var/tmp/parley-rootfs.XXXXXX)
chmod 755 "$rootfs" # apt's _apt user downloads into it
steps=$rootfs.log
trap 'rm -rf "$rootfs" "$steps"' EXIT
trap 'echo "base image: failed; the end of its log:" >&2; tail -20 "$steps" >&2' ERR
nice -n 19 debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$steps" 2>&1

# What debian:bookworm-slim does: dpkg leaves out docs, man pages and locales from now on and
# skips fsync (a container layer is written whole or not at all); apt keeps no packages.
cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
echo force-unsafe-io >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
echo 'Acquire::Languages "none";' >"$rootfs/etc/apt/apt.conf.d/docker-no-languages"
rm -f "$rootfs/etc/apt/sources.list"
cat >"$rootfs/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# Security and point-release updates, in the chroot (name resolution from this machine's).
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
{
  chroot "$rootfs" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive chroot "$rootfs" apt-get -y -qq upgrade
  chroot "$rootfs" apt-get clean
} >>"$steps" 2>&1
rm -f "$rootfs/etc/resolv.conf"

# Trim what debootstrap installed before the excludes applied.
find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$rootfs/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$rootfs"/usr/share/{man,groff,info,lintian,linda}/* "$rootfs"/var/lib/apt/lists/* \
  "$rootfs"/var/cache/apt/* "$rootfs"/var/log/*.log "$rootfs"/var/log/apt/*
find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias \
  -exec rm -rf {} +

tar -C "$rootfs" --numeric-owner -c . |
  podman import -q --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' - "$IMAGE" >/dev/null
echo "base image: $IMAGE built ($(podman image inspect -f '{{.Size}}' "$IMAGE") bytes)"
