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
