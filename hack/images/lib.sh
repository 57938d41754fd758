# shellcheck shell=bash
# Image helpers shared by hack/images scripts (sourced).
# shellcheck source=../cluster/lib.sh
. "$(cd "$(dirname "${BASH_SOURCE[0]}")/../cluster" && pwd)/lib.sh"

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
IMG_CACHE="$TB_CACHE/images"
BASE_IMAGE="${BASE_IMAGE:-localhost/thunderbolt-base:bookworm}"
CLUSTER_DIR="${CLUSTER_DIR:-$REPO_ROOT/.cluster}"
CONTAINERD_SOCK="${CONTAINERD_ADDRESS:-/run/thunderbolt/containerd/containerd.sock}"

ensure_build_tools() { apt_install buildah debootstrap runc containerd; }

# in_containerd IMAGE: true when containerd (k8s.io namespace) already has IMAGE.
in_containerd() {
  [ -S "$CONTAINERD_SOCK" ] || return 1
  # capture first: with pipefail, `ctr | grep -q` fails whenever ctr gets SIGPIPE
  grep -qxF "$1" <<<"$(ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls -q 2>/dev/null)"
}

# normalize IMAGE: containerd stores short names fully qualified (docker.io/library/x:y).
normalize() {
  local n="$1"
  case "$n" in
    */*) case "${n%%/*}" in *.*|*:*|localhost) ;; *) n="docker.io/$n";; esac ;;
    *) n="docker.io/library/$n" ;;
  esac
  case "${n##*/}" in *:*) ;; *) n="$n:latest";; esac
  printf '%s' "$n"
}

# import_archive TAR: load a docker-archive into the cluster's containerd.
import_archive() {
  [ -S "$CONTAINERD_SOCK" ] || die "containerd socket $CONTAINERD_SOCK not found: run 'make cluster' first"
  log "importing $(basename "$1") into containerd (k8s.io)"
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images import --no-unpack=false "$1" >&2
}

# Disk room for image builds. A rebuild of a 2 GB image leaves the old one in buildah's
# storage, and each image also lives as a cached archive and in containerd; a disk that
# fills up fails builds half-way and puts the node under disk pressure.
BUILD_MIN_FREE_GIB="${THUNDERBOLT_BUILD_MIN_FREE_GIB:-10}"
BUILD_HARD_MIN_FREE_GIB="${THUNDERBOLT_BUILD_HARD_MIN_FREE_GIB:-3}"

# free_gib PATH: whole GiB free on the filesystem holding PATH (or its nearest parent).
free_gib() {
  local p="$1"
  while [ ! -e "$p" ]; do p=$(dirname "$p"); done
  df -Pk "$p" | awk 'NR==2 {printf "%d", $4 / 1048576}'
}

buildah_root() { buildah info --format '{{.store.GraphRoot}}' 2>/dev/null || echo /var/lib/containers; }

# prune_replaced_builds: remove the images that newer builds of the same tags replaced
# (dangling: no name, no child). Skipped while another build uses the storage (its
# newest layer is dangling too), which the shared lock on fd 7 tells.
prune_replaced_builds() {
  local before after root
  root=$(buildah_root)
  before=$(free_gib "$root")
  # (a failed conversion to exclusive drops the shared lock too: take it back either way)
  if flock -n -x 7; then
    buildah rmi --prune >/dev/null 2>&1 || true
    after=$(free_gib "$root")
    [ "$after" -gt "$before" ] && log "pruned replaced image builds: ${before} -> ${after} GiB free"
  fi
  flock -s 7
  return 0
}

# hold_build_storage: a shared lock on buildah's storage for this build (fd 7).
hold_build_storage() {
  mkdir -p "$IMG_CACHE/locks"
  exec 7>"$IMG_CACHE/locks/storage.lock"
  flock -w 3600 -s 7 || die "timed out waiting for buildah's storage"
}

# ensure_build_room: prune replaced builds when free space is short, and stop with a clear
# message (rather than half a build) when it is still below the hard minimum.
ensure_build_room() {
  local root free
  root=$(buildah_root)
  free=$(free_gib "$root")
  [ "$free" -ge "$BUILD_MIN_FREE_GIB" ] && return 0
  prune_replaced_builds
  free=$(free_gib "$root")
  [ "$free" -ge "$BUILD_HARD_MIN_FREE_GIB" ] && return 0
  die "only $free GiB free on the disk holding $root; an image build needs about $BUILD_HARD_MIN_FREE_GIB GiB or more (free space: 'buildah rmi --prune', old files under $TB_CACHE/images/archives)"
}
