#!/usr/bin/env bash
# Build a Dockerfile with buildah (no Docker daemon) and import it into the local cluster.
#
#   hack/images/build.sh DOCKERFILE_DIR IMAGE:TAG [--context DIR] [--no-import] [--build-arg K=V]...
#
# DOCKERFILE_DIR holds the Dockerfile. The build context is the repository root when
# DOCKERFILE_DIR lies inside the repository (the project's Dockerfiles COPY src/ etc.),
# otherwise DOCKERFILE_DIR itself; --context overrides. BASE_IMAGE defaults to the local
# base image. The host's pip configuration, CA bundle and local wheel/index directories are
# mounted read-only so `pip install` in RUN steps works as on the host (CPU torch wheel).
# Skips the build when the content hash (Dockerfile dir + COPY/ADD sources + build args +
# base image id) is unchanged and containerd already has that image. Removes the builds a
# new one replaces, and stops early when the disk has no room for a build (lib.sh).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

usage() { sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[ $# -ge 2 ] || usage
DF_DIR="$1"
IMAGE="$2"
shift 2
CONTEXT=""
IMPORT=1
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --context) CONTEXT="$2"; shift 2 ;;
    --context=*) CONTEXT="${1#*=}"; shift ;;
    --no-import) IMPORT=0; shift ;;
    --build-arg) ARGS+=("$2"); shift 2 ;;
    --build-arg=*) ARGS+=("${1#*=}"); shift ;;
    *) usage ;;
  esac
done
[ -f "$DF_DIR/Dockerfile" ] || die "no Dockerfile in $DF_DIR"
DF_DIR="$(cd "$DF_DIR" && pwd)"
if [ -z "$CONTEXT" ]; then
  case "$DF_DIR/" in "$REPO_ROOT/"*) CONTEXT="$REPO_ROOT" ;; *) CONTEXT="$DF_DIR" ;; esac
fi
CONTEXT="$(cd "$CONTEXT" && pwd)"
has_base_arg=0
for a in "${ARGS[@]+"${ARGS[@]}"}"; do case "$a" in BASE_IMAGE=*) has_base_arg=1 ;; esac; done
if [ "$has_base_arg" = 0 ]; then
  ARGS+=("BASE_IMAGE=$BASE_IMAGE")
  buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1 || bash "$HERE/base.sh" --no-import
fi

# The host pip setup mounted into the build already finds the CPU torch wheel; the
# Dockerfiles' default torch index (download.pytorch.org) is unreachable on machines
# limited to PyPI and would only cost retries. LOCAL_TORCH_INDEX_URL overrides.
case " ${ARGS[*]} " in
  *" TORCH_INDEX_URL="*) ;;
  *) ARGS+=("TORCH_INDEX_URL=${LOCAL_TORCH_INDEX_URL:-https://pypi.org/simple}") ;;
esac

REF=$(normalize "$IMAGE")
SAFE=$(printf '%s' "$REF" | tr '/:@' '___')
mkdir -p "$IMG_CACHE/archives" "$IMG_CACHE/stamps"
ARCHIVE="$IMG_CACHE/archives/$SAFE.docker.tar"
STAMP="$IMG_CACHE/stamps/$SAFE"

# One build of a given image at a time (test fixtures and `make images` may race).
mkdir -p "$IMG_CACHE/locks"
exec 8>"$IMG_CACHE/locks/$SAFE.lock"
flock -w 3600 8 || die "timed out waiting for another build of $REF"

base_id=""
for a in "${ARGS[@]}"; do
  case "$a" in BASE_IMAGE=*) base_id=$(buildah inspect --type image --format '{{.FromImageID}}' "${a#*=}" 2>/dev/null || true) ;; esac
done
HASH=$(python3 "$HERE/buildctx.py" hash "$CONTEXT" "$DF_DIR/Dockerfile" "${ARGS[@]}" "base=$base_id")
# The commit the content was first built from, for images that record it (Trials show it
# as codeRevision). Left out of HASH: the same content at a later commit is not rebuilt.
if grep -q '^ARG THUNDERBOLT_CODE_REVISION' "$DF_DIR/Dockerfile"; then
  case " ${ARGS[*]} " in
    *" THUNDERBOLT_CODE_REVISION="*) ;;
    *) rev=$(git -C "$CONTEXT" rev-parse HEAD 2>/dev/null || true)
       if [ -n "$rev" ] && [ -n "$(git -C "$CONTEXT" status --porcelain -- src 2>/dev/null | head -1)" ]; then
         rev="$rev-dirty"
       fi
       [ -n "$rev" ] && ARGS+=("THUNDERBOLT_CODE_REVISION=$rev") ;;
  esac
fi

ctr_digest() {
  [ -S "$CONTAINERD_SOCK" ] || return 0
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images ls 2>/dev/null | awk -v r="$REF" '$1==r {print $3}'
}

stamp_hash=$(sed -n 1p "$STAMP" 2>/dev/null || true)
stamp_digest=$(sed -n 2p "$STAMP" 2>/dev/null || true)
if [ "$stamp_hash" = "$HASH" ] && [ -s "$ARCHIVE" ]; then
  if [ "$IMPORT" = 0 ]; then
    log "$REF unchanged (hash ${HASH:0:12}); archive $ARCHIVE"
    exit 0
  fi
  if [ -n "$stamp_digest" ] && [ "$(ctr_digest)" = "$stamp_digest" ]; then
    log "$REF unchanged (hash ${HASH:0:12}) and already in containerd: skipped"
    exit 0
  fi
  import_archive "$ARCHIVE"
  printf '%s\n%s\n' "$HASH" "$(ctr_digest)" >"$STAMP"
  log "$REF imported from cache"
  exit 0
fi

ensure_build_tools
hold_build_storage
ensure_build_room
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
VOLS=()
while read -r p; do
  [ -n "$p" ] && VOLS+=(-v "$p:$p:ro")
done < <(python3 "$HERE/buildctx.py" pipconf "$WORK/pip.conf")
VOLS+=(-v "$WORK/pip.conf:/etc/pip.conf:ro")
BARGS=()
for a in "${ARGS[@]}"; do BARGS+=(--build-arg "$a"); done

log "building $REF from $DF_DIR/Dockerfile (context $CONTEXT)"
t0=$(date +%s)
# --layers: steps before a changed COPY (venv, torch) come from buildah's layer cache
buildah bud --network host --pull=never --layers -f "$DF_DIR/Dockerfile" -t "$REF" \
  "${BARGS[@]}" "${VOLS[@]}" "$CONTEXT" >&2
log "built $REF in $(($(date +%s) - t0))s; exporting docker-archive"
rm -f "$ARCHIVE" "$ARCHIVE.part"
buildah push "$REF" "docker-archive:$ARCHIVE.part:$REF" >/dev/null
mv "$ARCHIVE.part" "$ARCHIVE"
if [ "$IMPORT" = 1 ]; then
  import_archive "$ARCHIVE"
  printf '%s\n%s\n' "$HASH" "$(ctr_digest)" >"$STAMP"
else
  printf '%s\n\n' "$HASH" >"$STAMP"
fi
prune_replaced_builds
log "$REF ready ($(du -h "$ARCHIVE" | cut -f1) archive) in $(($(date +%s) - t0))s"
