#!/usr/bin/env bash
# Stop every process hack/cluster/up.sh started (by pid file) and remove the cluster's state:
# pods (so CNI tears down their network), iptables chains, mounts, the bridge, .cluster/.
# Why: leave the machine as it was; a fresh `make cluster` then starts from scratch
# (the built binaries stay cached under ~/.cache/thunderbolt).
set -uo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
  exec sudo -E bash "$0" "$@"
fi

REPO_ROOT="$(cd "$HERE/../.." && pwd)"
# One up/down at a time on this machine (test fixtures may call `make cluster` concurrently).
mkdir -p /run/lock && exec 9>/run/lock/thunderbolt-cluster.lock
flock -w 600 9 || die "another hack/cluster script holds /run/lock/thunderbolt-cluster.lock"
C="${CLUSTER_DIR:-$REPO_ROOT/.cluster}"
RUN_DIR=/run/thunderbolt
SOCK="$RUN_DIR/containerd/containerd.sock"
BRIDGE=thunderbolt0
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

if [ ! -d "$C" ] && [ ! -d "$RUN_DIR" ] && ! ip link show "$BRIDGE" >/dev/null 2>&1; then
  log "no cluster state in $C: nothing to do"
  exit 0
fi

COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy)

pid_of() { cat "$C/run/$1.pid" 2>/dev/null; }

# ours NAME MATCH: the pid from NAME's pid file, if that process still runs our command.
ours() {
  local pid
  pid=$(pid_of "$1") || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && grep -q -- "$2" <<<"$(tr '\0' ' ' <"/proc/$pid/cmdline")" || return 1
  echo "$pid"
}

# stop NAME:MATCH...: SIGTERM them all, wait up to 10 s, then SIGKILL what is left.
stop() {
  local spec name pid pids=() i
  for spec in "$@"; do
    name=${spec%%:*}
    if pid=$(ours "$name" "${spec#*:}"); then
      log "stopping $name (pid $pid)"
      kill -TERM "$pid" 2>/dev/null
      pids+=("$pid")
    fi
    rm -f "$C/run/$name.pid"
  done
  for ((i = 0; i < 40 && ${#pids[@]} > 0; i++)); do
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && break; pid=""; done
    [ -z "$pid" ] && return 0
    sleep 0.25
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null; done
}

CTR() { ctr --address "$SOCK" -n k8s.io "$@"; }
tasks_left() { CTR tasks ls -q 2>/dev/null | grep -c . ; }

# 1. Let the kubelet tear pods down properly (CNI DEL, unmounts) while it still runs.
if [ -x "$C/bin/kubectl" ] && [ -s "$C/kubeconfig" ] && [ -S "$SOCK" ]; then
  stop kube-controller-manager:kube-controller-manager kube-scheduler:kube-scheduler
  K=("$C/bin/kubectl" --kubeconfig "$C/kubeconfig" --request-timeout=10s)
  if "${K[@]}" get --raw /readyz >/dev/null 2>&1; then
    log "deleting all pods so the kubelet releases their network and volumes"
    "${K[@]}" delete pods --all --all-namespaces --force --grace-period=0 --wait=false >/dev/null 2>&1
    for ((i = 0; i < 60; i++)); do
      [ "$(tasks_left)" = 0 ] && break
      sleep 0.5
    done
  fi
fi

# 2. Control plane and node agents.
stop kube-proxy:kube-proxy kubelet:kubelet kube-controller-manager:kube-controller-manager \
  kube-scheduler:kube-scheduler
stop kube-apiserver:kube-apiserver
stop "etcd:$C/etcd"

# 3. Whatever containers are left, then containerd and its shims.
if [ -S "$SOCK" ]; then
  for t in $(CTR tasks ls -q 2>/dev/null); do
    CTR tasks kill -s SIGKILL "$t" >/dev/null 2>&1
  done
  sleep 1
  for t in $(CTR tasks ls -q 2>/dev/null); do CTR tasks delete -f "$t" >/dev/null 2>&1; done
  for c in $(CTR containers ls -q 2>/dev/null); do CTR containers rm "$c" >/dev/null 2>&1; done
fi
stop "containerd:$C/containerd/config.toml"
for p in /proc/[0-9]*; do
  # shims started by our containerd carry its unique socket path in their command line
  if grep -q -- "-address $SOCK" <<<"$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")"; then
    log "stopping leftover shim ${p#/proc/}"
    kill -KILL "${p#/proc/}" 2>/dev/null
  fi
done

# 4. iptables: kube-proxy's own cleanup, then kubelet's KUBE-* and the CNI plugins' CNI-* chains.
kp=$(readlink -f "$C/bin/kubectl" 2>/dev/null)
kp="${kp%/kubectl}/kube-proxy"
[ -x "$kp" ] && "$kp" --cleanup >/dev/null 2>&1
for ipt in iptables ip6tables; do
  command -v "$ipt" >/dev/null || continue
  for table in filter nat mangle; do
    rules=$("$ipt" -t "$table" -S 2>/dev/null) || continue
    # delete jumps into our chains from any chain, then flush and delete the chains
    echo "$rules" | grep -E -- '^-A .* -j (KUBE-|CNI-)' | sed 's/^-A /-D /' | while read -r r; do
      eval "$ipt -t $table $r" 2>/dev/null
    done
    chains=$(echo "$rules" | sed -nE 's/^-N ((KUBE-|CNI-)[^ ]*)$/\1/p')
    for ch in $chains; do "$ipt" -t "$table" -F "$ch" 2>/dev/null; done
    for ch in $chains; do "$ipt" -t "$table" -X "$ch" 2>/dev/null; done
  done
done

# 5. Mounts under our state dirs (deepest first), pod network namespaces, the bridge.
for root in "$C" "$RUN_DIR"; do
  [ -d "$root" ] || continue
  real=$(readlink -f "$root")
  awk '{print $5}' /proc/self/mountinfo | grep -E "^$real(/|$)" | sort -r | while read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
done
# containerd's CRI names pod network namespaces cni-<uuid>; no other CRI runs on these machines
for ns in /run/netns/cni-*; do
  [ -e "$ns" ] || continue
  umount "$ns" 2>/dev/null || umount -l "$ns" 2>/dev/null
  rm -f "$ns"
done
if ip link show "$BRIDGE" >/dev/null 2>&1; then
  log "removing bridge $BRIDGE"
  ip link del "$BRIDGE"
fi

# 6. State: only what up.sh made. Others keep their own files in .cluster/ (demo pid files,
# MLflow data); those stay, and .cluster/ goes only when nothing else is left in it.
t=$SECONDS
for comp in "${COMPONENTS[@]}"; do rm -f "$C/run/$comp.pid" "$C/logs/$comp.log"; done
rm -rf "${C:?}"/{pki,kubeconfigs,bin,etcd,kubelet,cni,containerd} "${C:?}"/{kubeconfig,env,host-ip,.fixture.lock} "$RUN_DIR"
rmdir "$C/run" "$C/logs" "$C" 2>/dev/null
[ $((SECONDS - t)) -lt 5 ] || log "removing the state in $C took $((SECONDS - t))s"
if [ -d "$C" ]; then log "left in $C (not ours): $(find "$C" -mindepth 1 -maxdepth 1 -printf '%f ')"; fi
log "cluster down; state removed (cached binaries stay in $K8S_CACHE)"
