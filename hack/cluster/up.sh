#!/usr/bin/env bash
# Bring up (or confirm) a real single-node Kubernetes 1.20 cluster from Debian packages:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, containerd+runc+CNI bridge,
# kubelet, kube-proxy (iptables). Idempotent: processes that are alive are left alone.
# Why this and not kind: the project's machines have no Docker engine and no registry.
# See docs/local-cluster.md.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib.sh
. "$HERE/lib.sh"

if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || die "run as root (kubelet and containerd need it)"
  exec sudo -E bash "$0" "$@"
fi

REPO_ROOT="$(cd "$HERE/../.." && pwd)"
# One up/down at a time on this machine (test fixtures may call `make cluster` concurrently).
mkdir -p /run/lock && exec 9>/run/lock/thunderbolt-cluster.lock
flock -w 3600 9 || die "another hack/cluster script holds /run/lock/thunderbolt-cluster.lock"
C="${CLUSTER_DIR:-$REPO_ROOT/.cluster}"
RUN_DIR=/run/thunderbolt
SOCK="$RUN_DIR/containerd/containerd.sock"
BRIDGE=thunderbolt0
POD_CIDR=10.88.0.0/16
GATEWAY=10.88.0.1          # bridge gateway = node IP = apiserver address = "host IP" for pods
SVC_CIDR=10.96.0.0/12
API_SVC_IP=10.96.0.1
NODE_IP="$GATEWAY"
NODE_NAME=thunderbolt-node
CONTEXT=thunderbolt-local
API_PORT=6443
# not 2379: a distro etcd service started by `apt-get install etcd-server` may hold it
ETCD_PORT=12379
PAUSE_IMAGE=localhost/thunderbolt-pause:3.4.1
export PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

mkdir -p "$C"/{run,logs,pki,kubeconfigs,bin,etcd,kubelet,cni/net.d,cni/ipam,containerd} "$RUN_DIR"

# ---------------------------------------------------------------- binaries
K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

dir_has_all() {
  local d="$1" b
  [ -n "$d" ] && [ -d "$d" ] || return 1
  for b in "${K8S_BINS[@]}"; do [ -x "$d/$b" ] || return 1; done
}

k8s_minor() { "$1/kube-apiserver" --version 2>/dev/null | sed -nE 's/.*v1\.([0-9]+).*/\1/p'; }

resolve_bins() {
  local cand=() d
  [ -n "${KUBEBUILDER_ASSETS:-}" ] && cand+=("$KUBEBUILDER_ASSETS")
  d=$(dirname "$(command -v kube-apiserver 2>/dev/null || echo /nonexistent/x)")
  cand+=("$d")
  for d in "${cand[@]}"; do
    if dir_has_all "$d"; then
      if [ "$(k8s_minor "$d")" = "20" ] || [ -n "${THUNDERBOLT_K8S_ANY_VERSION:-}" ]; then
        K8S_BIN="$d"
        log "using Kubernetes binaries from $d"
        return
      fi
      log "ignoring $d: not Kubernetes 1.20 (these scripts pass 1.20 flags; THUNDERBOLT_K8S_ANY_VERSION=1 to try anyway)"
    fi
  done
  bash "$HERE/build-k8s.sh"
  K8S_BIN="$K8S_CACHE/bin"
}

resolve_etcd() {
  if [ -n "${KUBEBUILDER_ASSETS:-}" ] && [ -x "$KUBEBUILDER_ASSETS/etcd" ]; then
    ETCD="$KUBEBUILDER_ASSETS/etcd"
  elif command -v etcd >/dev/null; then
    ETCD=$(command -v etcd)
  else
    apt_install etcd-server
    ETCD=$(command -v etcd)
  fi
}

ensure_host_packages() {
  local need=()
  command -v containerd >/dev/null || need+=(containerd)
  command -v runc >/dev/null || need+=(runc)
  [ -x /usr/lib/cni/bridge ] || [ -x /opt/cni/bin/bridge ] || need+=(containernetworking-plugins)
  command -v iptables >/dev/null || need+=(iptables)
  command -v conntrack >/dev/null || need+=(conntrack)
  command -v openssl >/dev/null || need+=(openssl)
  command -v curl >/dev/null || need+=(curl)
  command -v gcc >/dev/null || need+=(gcc libc6-dev)
  [ ${#need[@]} -eq 0 ] || apt_install "${need[@]}"
  if [ -x /usr/lib/cni/bridge ]; then CNI_BIN=/usr/lib/cni; else CNI_BIN=/opt/cni/bin; fi
}

# ---------------------------------------------------------------- processes
pidfile() { echo "$C/run/$1.pid"; }

# alive NAME: the pid file names a live process whose command line is still ours.
alive() {
  local pid
  pid=$(cat "$(pidfile "$1")" 2>/dev/null) || return 1
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  grep -q -- "$2" <<<"$(tr '\0' ' ' <"/proc/$pid/cmdline")"
}

# start NAME MATCH CMD...: start CMD detached unless NAME is alive; log to .cluster/logs.
start() {
  local name="$1" match="$2"
  shift 2
  if alive "$name" "$match"; then return 0; fi
  log "starting $name"
  setsid "$@" >>"$C/logs/$name.log" 2>&1 </dev/null 9>&- &
  echo $! >"$(pidfile "$name")"

}

wait_for() {
  local what="$1" secs="$2" log_name="$3"
  shift 3
  local deadline=$((SECONDS + secs))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  log "timed out after ${secs}s waiting for $what; last lines of $C/logs/$log_name.log:"
  tail -25 "$C/logs/$log_name.log" >&2 || true
  exit 1
}

# ---------------------------------------------------------------- config
gen_pki() {
  local p="$C/pki"
  [ -s "$p/ca.crt" ] && [ -s "$p/apiserver.crt" ] && [ -s "$p/kubelet-client.crt" ] && [ -s "$p/sa.key" ] && return 0
  log "generating CA, apiserver, kubelet-client and service-account keys"
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=thunderbolt-local-ca" \
    -keyout "$p/ca.key" -out "$p/ca.crt" 2>/dev/null
  cat >"$p/apiserver.ext" <<EOF
subjectAltName=IP:$NODE_IP,IP:$API_SVC_IP,IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth
EOF
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout "$p/apiserver.key" \
    -out "$p/apiserver.csr" 2>/dev/null
  openssl x509 -req -in "$p/apiserver.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
    -days 3650 -extfile "$p/apiserver.ext" -out "$p/apiserver.crt" 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >"$p/client.ext"
  openssl req -newkey rsa:2048 -nodes -subj "/O=system:masters/CN=kube-apiserver-kubelet-client" \
    -keyout "$p/kubelet-client.key" -out "$p/kubelet-client.csr" 2>/dev/null
  openssl x509 -req -in "$p/kubelet-client.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
    -days 3650 -extfile "$p/client.ext" -out "$p/kubelet-client.crt" 2>/dev/null
  openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
  openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
  chmod 600 "$p"/*.key
}

token() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

gen_tokens() {
  local f="$C/pki/tokens.csv"
  [ -s "$f" ] && return 0
  log "generating static tokens"
  {
    echo "$(token),admin,admin,\"system:masters\""
    echo "$(token),system:kube-controller-manager,kcm,"
    echo "$(token),system:kube-scheduler,sched,"
    echo "$(token),system:kube-proxy,kproxy,"
    echo "$(token),system:node:$NODE_NAME,kubelet,\"system:nodes\""
  } >"$f"
  chmod 600 "$f"
}

tok_for() { awk -F, -v u="$1" '$2==u {print $1}' "$C/pki/tokens.csv"; }

# kubeconfig FILE USER CONTEXT: a kubeconfig with the CA inlined and the user's static token.
kubeconfig() {
  local ca
  ca=$(base64 -w0 <"$C/pki/ca.crt")
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $CONTEXT
  cluster:
    server: https://$NODE_IP:$API_PORT
    certificate-authority-data: $ca
users:
- name: $2
  user:
    token: $(tok_for "$2")
contexts:
- name: $3
  context:
    cluster: $CONTEXT
    user: $2
current-context: $3
EOF
  chmod 600 "$1"
}

gen_kubeconfigs() {
  local k="$C/kubeconfigs"
  kubeconfig "$C/kubeconfig" admin "$CONTEXT"
  kubeconfig "$k/controller-manager" system:kube-controller-manager default
  kubeconfig "$k/scheduler" system:kube-scheduler default
  kubeconfig "$k/kube-proxy" system:kube-proxy default
  kubeconfig "$k/kubelet" "system:node:$NODE_NAME" default
}

gen_containerd_config() {
  local mtu
  mtu=$(ip -o link show "$(ip -4 route show default 2>/dev/null | awk '{print $5; exit}')" 2>/dev/null \
    | sed -nE 's/.* mtu ([0-9]+).*/\1/p')
  mtu=${mtu:-1500}
  cat >"$C/cni/net.d/10-thunderbolt.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "thunderbolt",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "mtu": $mtu,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$C/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  cat >"$C/containerd/config.toml" <<EOF
version = 2
root = "$C/containerd/root"
state = "$RUN_DIR/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "$SOCK"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # No CAP_SYS_RESOURCE on these machines: negative oom_score_adj would fail runc create.
  restrict_oom_score_adj = true
  disable_apparmor = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$C/cni/net.d"
EOF
}

# pause_image: a docker-archive of the locally compiled pause binary (nothing is pulled).
build_pause_archive() {
  local out="$K8S_CACHE/pause-image.tar" w src
  [ -s "$out" ] && { PAUSE_TAR="$out"; return 0; }
  mkdir -p "$K8S_CACHE/bin"
  if [ ! -x "$K8S_CACHE/bin/pause" ]; then
    src=$(find "$K8S_CACHE/src" -maxdepth 5 -path '*/build/pause/linux/pause.c' 2>/dev/null | head -n1)
    src=${src:-$HERE/pause.c}
    log "compiling pause from $src (gcc -static)"
    gcc -Os -static -DVERSION=v3.4.1-thunderbolt -o "$K8S_CACHE/bin/pause" "$src"
    strip "$K8S_CACHE/bin/pause" 2>/dev/null || true
  fi
  w=$(mktemp -d)
  mkdir -p "$w/root"
  install -m 0755 "$K8S_CACHE/bin/pause" "$w/root/pause"
  tar -C "$w/root" --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$w/layer.tar" pause
  local diff
  diff=$(sha256sum "$w/layer.tar" | cut -d' ' -f1)
  cat >"$w/config.json" <<EOF
{"architecture":"amd64","os":"linux","config":{"Entrypoint":["/pause"],"User":"65535:65535"},"rootfs":{"type":"layers","diff_ids":["sha256:$diff"]},"history":[{"created_by":"thunderbolt hack/cluster/up.sh"}]}
EOF
  cat >"$w/manifest.json" <<EOF
[{"Config":"config.json","RepoTags":["$PAUSE_IMAGE"],"Layers":["layer.tar"]}]
EOF
  tar -C "$w" -cf "$out.part" manifest.json config.json layer.tar
  mv "$out.part" "$out"
  rm -rf "$w"
  PAUSE_TAR="$out"
}

ensure_bridge() {
  if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
    log "creating bridge $BRIDGE ($GATEWAY/16)"
    ip link add "$BRIDGE" type bridge
  fi
  grep -q "inet $GATEWAY/" <<<"$(ip -4 addr show dev "$BRIDGE")" || ip addr add "$GATEWAY/16" dev "$BRIDGE"
  ip link set "$BRIDGE" up
  echo 1 >/proc/sys/net/ipv4/ip_forward
  if [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ]; then
    echo 1 >/proc/sys/net/bridge/bridge-nf-call-iptables
  else
    modprobe br_netfilter 2>/dev/null || log "WARNING: br_netfilter unavailable: pod-to-Service traffic may fail"
  fi
}

# ---------------------------------------------------------------- checks
KCTL() { "$C/bin/kubectl" --kubeconfig "$C/kubeconfig" "$@"; }
api_ready() {
  curl -fsS --max-time 3 --cacert "$C/pki/ca.crt" -H "Authorization: Bearer $(tok_for admin)" \
    "https://$NODE_IP:$API_PORT/readyz" >/dev/null
}
node_ready() {
  [ "$(KCTL get node "$NODE_NAME" -o 'jsonpath={.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}
default_sa() { KCTL -n default get serviceaccount default >/dev/null 2>&1; }
# (grep reads a captured string: with pipefail, `ctr | grep -q` fails when ctr gets SIGPIPE)
pause_present() { grep -qxF "$PAUSE_IMAGE" <<<"$(ctr --address "$SOCK" -n k8s.io images ls -q)"; }

# Fast path: everything up and healthy -> done in about a second.
all_alive() {
  alive etcd "$C/etcd" && alive kube-apiserver kube-apiserver && alive kube-controller-manager kube-controller-manager \
    && alive kube-scheduler kube-scheduler && alive containerd "$C/containerd/config.toml" \
    && alive kubelet kubelet && alive kube-proxy kube-proxy
}
if [ -s "$C/kubeconfig" ] && [ -x "$C/bin/kubectl" ] && all_alive && api_ready && node_ready; then
  log "cluster already up: export KUBECONFIG=$C/kubeconfig (context $CONTEXT)"
  exit 0
fi

if [ -s "$RUN_DIR/owner" ] && [ "$(cat "$RUN_DIR/owner")" != "$C" ] && [ -S "$SOCK" ]; then
  die "another thunderbolt cluster ($(cat "$RUN_DIR/owner")) is running on this machine: 'make cluster-down' there first"
fi
echo "$C" >"$RUN_DIR/owner"

T0=$(date +%s)

ensure_host_packages
resolve_etcd
resolve_bins
ln -sfn "$K8S_BIN/kubectl" "$C/bin/kubectl"
gen_pki
gen_tokens
gen_kubeconfigs
gen_containerd_config
ensure_bridge
echo "$GATEWAY" >"$C/host-ip"
cat >"$C/env" <<EOF
# source this file: kubectl and ctr against the local cluster
export KUBECONFIG="$C/kubeconfig"
export PATH="$C/bin:\$PATH"
export CONTAINERD_ADDRESS="$SOCK"
export CONTAINERD_NAMESPACE=k8s.io
export THUNDERBOLT_HOST_IP="$GATEWAY"
EOF

# THUNDERBOLT_API_AUDIT=1: the API server writes an audit log (metadata only: who, what,
# which URI) of every LIST and WATCH to $C/logs/audit.log, so a bench can attribute API
# requests to their clients (bench/scale.py). Off by default; takes effect on a fresh
# API server (`make cluster-down` first).
AUDIT_FLAGS=()
if [ "${THUNDERBOLT_API_AUDIT:-0}" = 1 ]; then
  cat >"$C/audit-policy.yaml" <<EOF
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [list, watch]
- level: None
EOF
  AUDIT_FLAGS=(--audit-policy-file="$C/audit-policy.yaml" --audit-log-path="$C/logs/audit.log"
    --audit-log-maxsize=200 --audit-log-maxbackup=1)
fi

P="$C/pki"
start etcd "$C/etcd" "$ETCD" --name thunderbolt --data-dir "$C/etcd" \
  --listen-client-urls http://127.0.0.1:$ETCD_PORT --advertise-client-urls http://127.0.0.1:$ETCD_PORT \
  --listen-peer-urls http://127.0.0.1:$((ETCD_PORT + 1)) --initial-advertise-peer-urls http://127.0.0.1:$((ETCD_PORT + 1)) \
  --initial-cluster thunderbolt=http://127.0.0.1:$((ETCD_PORT + 1)) --listen-metrics-urls http://127.0.0.1:$((ETCD_PORT + 2)) \
  --quota-backend-bytes 2147483648 --log-level warn
wait_for etcd 30 etcd curl -fsS --max-time 2 http://127.0.0.1:$ETCD_PORT/health

start kube-apiserver kube-apiserver "$K8S_BIN/kube-apiserver" \
  --etcd-servers=http://127.0.0.1:$ETCD_PORT \
  --bind-address="$NODE_IP" --advertise-address="$NODE_IP" --secure-port="$API_PORT" --insecure-port=0 \
  --tls-cert-file="$P/apiserver.crt" --tls-private-key-file="$P/apiserver.key" --client-ca-file="$P/ca.crt" \
  --token-auth-file="$P/tokens.csv" --authorization-mode=Node,RBAC \
  --enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,DefaultTolerationSeconds,MutatingAdmissionWebhook,ValidatingAdmissionWebhook,ResourceQuota,NodeRestriction,Priority,RuntimeClass,StorageObjectInUseProtection \
  --service-cluster-ip-range="$SVC_CIDR" --service-node-port-range=30000-32767 \
  --service-account-key-file="$P/sa.pub" --service-account-signing-key-file="$P/sa.key" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --api-audiences=https://kubernetes.default.svc.cluster.local \
  --kubelet-client-certificate="$P/kubelet-client.crt" --kubelet-client-key="$P/kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP,Hostname \
  --allow-privileged=true --profiling=false --v=1 "${AUDIT_FLAGS[@]}"
wait_for kube-apiserver 90 kube-apiserver api_ready

K="$C/kubeconfigs"
start kube-controller-manager kube-controller-manager "$K8S_BIN/kube-controller-manager" \
  --kubeconfig="$K/controller-manager" \
  --bind-address=127.0.0.1 --port=0 \
  --service-account-private-key-file="$P/sa.key" --root-ca-file="$P/ca.crt" \
  --use-service-account-credentials=true --leader-elect=false --controllers='*,-nodeipam' \
  --cluster-signing-cert-file="$P/ca.crt" --cluster-signing-key-file="$P/ca.key" --v=1
start kube-scheduler kube-scheduler "$K8S_BIN/kube-scheduler" \
  --kubeconfig="$K/scheduler" \
  --bind-address=127.0.0.1 --port=0 --leader-elect=false --v=1

start containerd "$C/containerd/config.toml" containerd --config "$C/containerd/config.toml"
wait_for containerd 30 containerd ctr --address "$SOCK" version
if ! pause_present; then
  build_pause_archive
  log "importing $PAUSE_IMAGE into containerd"
  ctr --address "$SOCK" -n k8s.io images import "$PAUSE_TAR" >/dev/null
fi

mkdir -p "$C/kubelet/volume-plugins"
# Disk thresholds are absolute, not percentages: on disk pressure the kubelet deletes every
# image no running pod uses, and the project's images (imagePullPolicy Never) cannot come
# back by a pull. 1% of a large shared disk is gigabytes that a machine may well not have
# free, and losing the images then fails every later Trial with ErrImageNeverPull.
# hack/images/build.sh keeps room for builds instead (BUILD_MIN_FREE_GIB).
start kubelet kubelet "$K8S_BIN/kubelet" \
  --kubeconfig="$K/kubelet" --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" \
  --container-runtime=remote --container-runtime-endpoint="unix://$SOCK" --runtime-request-timeout=15m \
  --root-dir="$C/kubelet" --cert-dir="$C/kubelet/pki" --volume-plugin-dir="$C/kubelet/volume-plugins" \
  --fail-swap-on=false --cgroup-driver=cgroupfs --cgroups-per-qos=false --enforce-node-allocatable= \
  --authentication-token-webhook=false --anonymous-auth=false --client-ca-file="$P/ca.crt" \
  --authorization-mode=AlwaysAllow --address="$NODE_IP" --read-only-port=0 --healthz-bind-address=127.0.0.1 \
  --image-gc-high-threshold=100 --image-gc-low-threshold=99 \
  --eviction-hard='memory.available<100Mi,nodefs.available<512Mi,imagefs.available<512Mi' \
  --serialize-image-pulls=false --v=1
start kube-proxy kube-proxy "$K8S_BIN/kube-proxy" \
  --kubeconfig="$K/kube-proxy" --hostname-override="$NODE_NAME" --bind-address="$NODE_IP" \
  --proxy-mode=iptables --cluster-cidr="$POD_CIDR" --conntrack-max-per-core=0 \
  --conntrack-tcp-timeout-established=0 --conntrack-tcp-timeout-close-wait=0 \
  --healthz-bind-address=127.0.0.1:10256 --metrics-bind-address=127.0.0.1:10249 --v=1

wait_for "node $NODE_NAME Ready" 120 kubelet node_ready
wait_for "default service account" 60 kube-controller-manager default_sa
all_alive || die "a component exited; see $C/logs/"
log "cluster up in $(($(date +%s) - T0))s: export KUBECONFIG=$C/kubeconfig (context $CONTEXT); pods reach the host at $GATEWAY"
