#!/usr/bin/env bash
# Build the Kubernetes 1.20.2 binaries from Debian bookworm's source package.
# Why: no Docker/kind/registry here, but Debian ships the full source with vendor/.
# Output: $K8S_CACHE/bin/{kube-apiserver,...,kubectl,pause}; rebuilt only when missing.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)
OUT="$K8S_CACHE/bin"
mkdir -p "$OUT"

missing=()
for b in "${BINS[@]}" pause; do [ -x "$OUT/$b" ] || missing+=("$b"); done
if [ ${#missing[@]} -eq 0 ]; then
  log "k8s $K8S_VERSION binaries cached in $OUT"
  exit 0
fi
is_debian || die "no Kubernetes $K8S_VERSION binaries found. Install kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl (e.g. a KUBEBUILDER_ASSETS dir plus kubelet/kube-proxy) and point KUBEBUILDER_ASSETS at them, or run on Debian bookworm to build from source."

apt_install golang-go rsync golang-github-modern-go-reflect2-dev gcc libc6-dev dpkg-dev make
ensure_deb_src

SRC_ROOT="$K8S_CACHE/src"
mkdir -p "$SRC_ROOT"
TREE=$(find "$SRC_ROOT" -maxdepth 1 -type d -name "kubernetes-*" | head -n1)
if [ -z "$TREE" ] || [ ! -f "$TREE/.thunderbolt-patched" ]; then
  rm -rf "$SRC_ROOT"/kubernetes*
  log "fetching Debian source package kubernetes $K8S_VERSION"
  (cd "$SRC_ROOT" && apt-get source -qq kubernetes >&2)
  TREE=$(find "$SRC_ROOT" -maxdepth 1 -type d -name "kubernetes-*" | head -n1)
  [ -n "$TREE" ] || die "apt-get source kubernetes gave no source tree"
  case "$TREE" in *"$K8S_VERSION"*) ;; *) die "$TREE is not Kubernetes $K8S_VERSION (need Debian bookworm's source)";; esac
  [ -d "$TREE/vendor/github.com/modern-go/reflect2" ] || die "$TREE has no vendor/ (a +ds source?)"
  log "patching vendored modern-go/reflect2 with Debian's 1.0.2 (Go >= 1.18 crash fix)"
  R="$TREE/vendor/github.com/modern-go/reflect2"
  cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go "$R/"
  rm -f "$R"/go_above_17.go "$R"/go_below_17.go "$R"/go_below_19.go "$R"/*_test.go
  mkdir -p "$TREE/.go/src/k8s.io"
  ln -sfn ../../.. "$TREE/.go/src/k8s.io/kubernetes"
  touch "$TREE/.thunderbolt-patched"
fi

whats=()
for b in "${missing[@]}"; do [ "$b" = pause ] || whats+=("cmd/$b"); done
if [ ${#whats[@]} -gt 0 ]; then
  log "building ${whats[*]} (cold: ~7-10 min on 2 cores)"
  (
    cd "$TREE"
    export GOPATH="$TREE/.go" CGO_ENABLED=0 GO111MODULE=off GOFLAGS="${GOFLAGS:--p=$(nproc)}"
    export GOCACHE="${GOCACHE:-$K8S_CACHE/gocache}"
    export KUBE_GIT_VERSION="v$K8S_VERSION" KUBE_GIT_TREE_STATE=clean KUBE_GIT_MAJOR=1 KUBE_GIT_MINOR=20
    make WHAT="${whats[*]}" >&2
  )
  for w in "${whats[@]}"; do
    b=${w#cmd/}
    f=$(find "$TREE/_output" -type f -name "$b" -path '*/bin/*' | head -n1)
    [ -n "$f" ] || die "build produced no $b"
    install -m 0755 "$f" "$OUT/$b"
  done
fi

if [ ! -x "$OUT/pause" ]; then
  log "building the pause binary (gcc -static)"
  gcc -Os -static -o "$OUT/pause" "$TREE/build/pause/linux/pause.c" -DVERSION=v3.4.1-thunderbolt
  strip "$OUT/pause" 2>/dev/null || true
fi
log "k8s binaries ready in $OUT"
