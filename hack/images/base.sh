#!/usr/bin/env bash
# Build localhost/thunderbolt-base:bookworm from debootstrap (no registry to pull from).
# Caches the rootfs tarball and the docker-archive; imports into the cluster's containerd
# unless --no-import. Why: the project's Dockerfiles FROM this via ARG BASE_IMAGE.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

IMPORT=1
[ "${1:-}" = "--no-import" ] && IMPORT=0
mkdir -p "$IMG_CACHE"
ROOTFS_TAR="$IMG_CACHE/bookworm-minbase-python3.tar"
ARCHIVE="$IMG_CACHE/thunderbolt-base-bookworm.docker.tar"
ensure_build_tools
mkdir -p "$IMG_CACHE/locks"
exec 8>"$IMG_CACHE/locks/base.lock"
flock -w 1800 8 || die "timed out waiting for another base image build"

if [ ! -s "$ROOTFS_TAR" ]; then
  apt_install debootstrap
  tmp=$(mktemp -d "$IMG_CACHE/rootfs.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  log "debootstrap bookworm minbase + python3 (about a minute)"
  debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$tmp/rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$IMG_CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$IMG_CACHE/debootstrap.log" >&2; die "debootstrap failed"; }
  rm -rf "$tmp/rootfs"/var/cache/apt/archives/*.deb "$tmp/rootfs"/var/lib/apt/lists/* "$tmp/rootfs"/tmp/*
  tar -C "$tmp/rootfs" --numeric-owner -cf "$ROOTFS_TAR.part" .
  mv "$ROOTFS_TAR.part" "$ROOTFS_TAR"
  rm -rf "$tmp"
  trap - EXIT
fi

if ! buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1 || [ ! -s "$ARCHIVE" ] \
  || [ "$ROOTFS_TAR" -nt "$ARCHIVE" ]; then
  log "committing $BASE_IMAGE from the rootfs tarball"
  ctr_id=$(buildah from scratch)
  trap 'buildah rm "$ctr_id" >/dev/null 2>&1 || true' EXIT
  buildah add "$ctr_id" "$ROOTFS_TAR" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --env PYTHONDONTWRITEBYTECODE=1 --cmd /usr/bin/python3 \
    --label org.opencontainers.image.title=thunderbolt-base "$ctr_id"
  buildah commit --rm "$ctr_id" "$BASE_IMAGE" >/dev/null
  trap - EXIT
  rm -f "$ARCHIVE"
  buildah push "$BASE_IMAGE" "docker-archive:$ARCHIVE.part:$BASE_IMAGE" >/dev/null
  mv "$ARCHIVE.part" "$ARCHIVE"
fi

STAMP="$IMG_CACHE/stamps/base-imported"
if [ "$IMPORT" = 1 ] && { ! in_containerd "$BASE_IMAGE" || [ "$ARCHIVE" -nt "$STAMP" ]; }; then
  import_archive "$ARCHIVE"
  mkdir -p "$(dirname "$STAMP")"
  touch "$STAMP"
fi
log "base image $BASE_IMAGE ready"
