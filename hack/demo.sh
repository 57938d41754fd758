#!/usr/bin/env bash
# `make demo`: the iris search with spectral_norm as a parameter, through to a served model.
#
# Applies examples/iris-modeldeployment.yaml (the serving target) and
# examples/iris-spectral-norm.yaml (the search, which promotes its best trial), follows
# the pipeline view until the best model is served, sends a V2 inference request, and
# compares the objective with and without spectral normalization.
set -euo pipefail
# shellcheck source=demo/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/demo/lib.sh"
cd "$REPO_ROOT"
TB=("$VENV/bin/thunderbolt")
K=(--kubeconfig "$KUBECONFIG_FILE" -n "$DEMO_NAMESPACE")
TIMEOUT="${DEMO_TIMEOUT:-1800}"

for name in operator mlflow s3; do
  alive "$name" || die "$name is not running: run 'make up' first"
done

if [ "${DEMO_FRESH:-1}" = 1 ]; then
  log "removing an earlier run of the demo (set DEMO_FRESH=0 to keep it)"
  "${KUBECTL[@]}" -n "$DEMO_NAMESPACE" delete experiment iris-sn --ignore-not-found --wait=true >/dev/null
  "${KUBECTL[@]}" -n "$DEMO_NAMESPACE" delete modeldeployment iris --ignore-not-found --wait=true >/dev/null
fi

log "applying the serving target and the search"
"${KUBECTL[@]}" -n "$DEMO_NAMESPACE" apply --validate=false -f examples/iris-modeldeployment.yaml
"${KUBECTL[@]}" -n "$DEMO_NAMESPACE" apply --validate=false -f examples/iris-spectral-norm.yaml

log "following the pipeline (search -> train -> best -> promote); Ctrl-C stops watching, not the search"
"${TB[@]}" describe experiment iris-sn "${K[@]}" --watch --brief --interval 5 --timeout "$TIMEOUT"

echo
log "leaderboard"
"${TB[@]}" leaderboard iris-sn "${K[@]}"

echo
log "serving: waiting for ModelDeployment iris to be Available"
"${TB[@]}" describe modeldeployment iris "${K[@]}" --watch --interval 3 --timeout 600 | tail -n 20
CLUSTER_IP="$("${KUBECTL[@]}" -n "$DEMO_NAMESPACE" get service iris -o jsonpath='{.spec.clusterIP}')"
PORT="$("${KUBECTL[@]}" -n "$DEMO_NAMESPACE" get service iris -o jsonpath='{.spec.ports[0].port}')"
log "V2 inference request through Service iris ($CLUSTER_IP:$PORT; in-cluster: http://iris.$DEMO_NAMESPACE.svc:$PORT)"
"$VENV/bin/python" hack/demo/infer.py "http://$CLUSTER_IP:$PORT" iris

echo
log "objective with and without spectral normalization"
mkdir -p out
"${TB[@]}" compare iris-sn --by spectral_norm --png out/iris-sn-spectral-norm.png "${K[@]}"
log "done. Try: thunderbolt get trials -n $DEMO_NAMESPACE --kubeconfig .cluster/kubeconfig; make down to stop."
