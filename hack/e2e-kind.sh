#!/usr/bin/env bash
# `make e2e-kind`: the whole product on a current Kubernetes (kind), installed with Helm.
#
# Needs docker, kind, helm and kubectl on PATH. The local 1.20 cluster (`make up`) cannot
# test what needs newer API servers (CEL validation rules, Pod Security admission); this
# does: the namespace enforces Pod Security "restricted", so every pod the chart and the
# operator create is checked by the real admission controller.
#
#   KIND_CLUSTER (thunderbolt-e2e)  KIND_NODE_IMAGE (kind's default)  KEEP=1 keeps the cluster
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"
CLUSTER="${KIND_CLUSTER:-thunderbolt-e2e}"
VERSION="${IMAGE_VERSION:-0.1.0}"
SYSTEM_NS=thunderbolt-system
DEMO_NS=thunderbolt-demo
VENV="${VENV:-$REPO_ROOT/.venv}"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

missing=()
for tool in docker kind helm kubectl; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  cat >&2 <<MSG
e2e-kind needs: docker kind helm kubectl. Missing: ${missing[*]}.
This target is for machines with a Docker engine. Without Docker, use the local cluster
built from Debian packages instead: make demo (see docs/quickstart.md).
MSG
  exit 2
fi
docker info >/dev/null 2>&1 || { echo "docker is installed but the daemon does not answer (docker info failed)" >&2; exit 2; }

if ! kind get clusters | grep -qx "$CLUSTER"; then
  log "kind create cluster $CLUSTER"
  kind create cluster --name "$CLUSTER" ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 120s
fi
CTX="kind-$CLUSTER"
tmp="$(mktemp -d)"
K=(kubectl --context "$CTX")

log "docker build (the same Dockerfiles buildah uses locally)"
docker build -f trainer-image/Dockerfile -t "thunderbolt-trainer:$VERSION" .
docker build -f operator/Dockerfile -t "thunderbolt-operator:$VERSION" .
kind load docker-image --name "$CLUSTER" "thunderbolt-trainer:$VERSION" "thunderbolt-operator:$VERSION"

log "namespaces with Pod Security 'restricted' enforced"
for ns in "$SYSTEM_NS" "$DEMO_NS"; do
  "${K[@]}" create namespace "$ns" --dry-run=client -o yaml | "${K[@]}" apply -f -
  "${K[@]}" label namespace "$ns" --overwrite \
    pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest
done

log "helm install (operator + MLflow), watching $DEMO_NS"
helm upgrade --install thunderbolt charts/thunderbolt --kube-context "$CTX" -n "$SYSTEM_NS" \
  --set "watchNamespaces={$DEMO_NS}" --set "image.tag=$VERSION" --set mlflow.persistence.enabled=true \
  --wait --timeout 10m

log "server-side field validation (Kubernetes >= 1.25): unknown fields are refused, not dropped"
"$VENV/bin/python" - examples/iris-spectral-norm.yaml >"$tmp/unknown.yaml" <<'PY'
import sys, yaml
doc = next(yaml.safe_load_all(open(sys.argv[1])))
doc["metadata"]["name"] = "unknown-field"
doc["spec"]["maxTrialz"] = 3  # a typo no schema trap lists: only field validation sees it
print(yaml.safe_dump(doc))
PY
if "${K[@]}" -n "$DEMO_NS" apply --validate=strict --server-side -f "$tmp/unknown.yaml" 2>"$tmp/unknown.err"; then
  echo "an Experiment with an unknown field was accepted" >&2; exit 1
fi
grep -q 'maxTrialz' "$tmp/unknown.err" || { cat "$tmp/unknown.err" >&2; exit 1; }

log "CEL rules (x-kubernetes-validations): canary weights that do not increase are refused"
"$VENV/bin/python" - examples/iris-modeldeployment.yaml >"$tmp/cel.yaml" <<'PY'
import sys, yaml
doc = next(yaml.safe_load_all(open(sys.argv[1])))
doc["metadata"]["name"] = "cel-check"
doc["spec"]["strategy"] = {"type": "Canary", "canary": {"steps": [{"weight": 50}, {"weight": 20}]}}
print(yaml.safe_dump(doc))
PY
if "${K[@]}" -n "$DEMO_NS" apply -f "$tmp/cel.yaml" 2>"$tmp/cel.err"; then
  echo "a ModelDeployment with decreasing canary weights was accepted" >&2; exit 1
fi
grep -q 'canary step weights must increase' "$tmp/cel.err" || { cat "$tmp/cel.err" >&2; exit 1; }

log "demo: search, promotion, serving"
"${K[@]}" -n "$DEMO_NS" apply -f examples/iris-modeldeployment.yaml
"${K[@]}" -n "$DEMO_NS" apply -f examples/iris-spectral-norm.yaml
TB=("$VENV/bin/thunderbolt")
"${TB[@]}" describe experiment iris-sn -n "$DEMO_NS" --context "$CTX" --watch --brief --interval 10 --timeout 2400
"${TB[@]}" describe modeldeployment iris -n "$DEMO_NS" --context "$CTX" --watch --timeout 600 | tail -n 15

log "V2 inference through the Service (port-forward)"
"${K[@]}" -n "$DEMO_NS" port-forward svc/iris 18080:8080 >/dev/null 2>&1 &
pf=$!
trap 'kill "$pf" 2>/dev/null || true' EXIT
sleep 3
"$VENV/bin/python" hack/demo/infer.py http://127.0.0.1:18080 iris
"${TB[@]}" compare iris-sn --by spectral_norm -n "$DEMO_NS" --context "$CTX"

if [ "${KEEP:-0}" != 1 ]; then
  log "deleting kind cluster $CLUSTER (KEEP=1 keeps it)"
  kind delete cluster --name "$CLUSTER"
fi
log "e2e-kind passed"
