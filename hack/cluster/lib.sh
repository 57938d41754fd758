# shellcheck shell=bash
# Shared helpers for hack/cluster and hack/images scripts (sourced, not executed).
# Kept in one place so the cache location and apt logic agree across scripts.

K8S_VERSION="${K8S_VERSION:-1.20.2}"
TB_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/thunderbolt"
K8S_CACHE="$TB_CACHE/k8s-$K8S_VERSION"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

is_debian() { [ -r /etc/debian_version ] && command -v apt-get >/dev/null 2>&1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=""
# apt_install PKG... installs the Debian packages that are not installed yet.
apt_install() {
  local missing=() p
  for p in "$@"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  is_debian || die "missing packages: ${missing[*]} (install them, or their equivalents, and retry)"
  if [ -z "$APT_UPDATED" ]; then
    log "apt-get update"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    APT_UPDATED=1
  fi
  log "apt-get install ${missing[*]}"
  # Keep packages from starting their own daemons (a system etcd/containerd would compete
  # with ours): a temporary policy-rc.d, unless the machine already has one.
  local policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    policy=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null
    as_root chmod 0755 "$policy"
  fi
  local rc=0
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "${missing[@]}" >&2 || rc=$?
  [ -z "$policy" ] || as_root rm -f "$policy"
  [ "$rc" = 0 ] || die "apt-get install ${missing[*]} failed"
}

# ensure_deb_src adds a bookworm deb-src entry so `apt-get source` can fetch kubernetes.
ensure_deb_src() {
  if grep -rqsE '^(deb-src|Types:.*deb-src)' /etc/apt/sources.list /etc/apt/sources.list.d/ \
    && grep -rqsE 'bookworm' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    if grep -q "kubernetes_" <<<"$(apt-get source --print-uris -qq kubernetes 2>/dev/null)"; then
      return 0
    fi
  fi
  log "adding a bookworm deb-src entry"
  as_root tee /etc/apt/sources.list.d/thunderbolt-src.sources >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  APT_UPDATED=1
}
