#!/usr/bin/env bash
# `make up`: everything the demo needs, idempotently (run it again at any time).
#
#   1. the local cluster (make cluster) and the images (make images)
#   2. the CRDs
#   3. host processes, each with a pid file in .cache/demo-run and a log in .cluster/logs:
#      MLflow (sqlite + --serve-artifacts, :5000), an S3 endpoint (moto_server, :9000,
#      bucket "thunderbolt"), and the operator watching the demo namespace
#   4. the demo namespace with the S3 credentials Secret (a shared-credentials file)
#
# Pods reach the host processes at the CNI bridge address in .cluster/host-ip.
set -euo pipefail
# shellcheck source=demo/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/demo/lib.sh"
cd "$REPO_ROOT"

log "cluster"
make -s cluster
HOST_IP="$(host_ip)"

log "images (cached when unchanged)"
make -s images

log "CRDs"
# create, else replace: kubectl 1.20's apply computes a patch that the 1.20 API server
# rejects for schemas with empty-string defaults; replace sends the whole object.
for f in crds/*.yaml; do
  name="$("$VENV/bin/python" -c 'import sys,yaml; print(yaml.safe_load(open(sys.argv[1]))["metadata"]["name"])' "$f")"
  if "${KUBECTL[@]}" get crd "$name" >/dev/null 2>&1; then
    "${KUBECTL[@]}" replace --validate=false -f "$f" >/dev/null
  else
    "${KUBECTL[@]}" create --validate=false -f "$f" >/dev/null
  fi
  "${KUBECTL[@]}" wait --for=condition=Established --timeout=60s "crd/$name" >/dev/null
done

log "namespace $DEMO_NAMESPACE"
"${KUBECTL[@]}" get namespace "$DEMO_NAMESPACE" >/dev/null 2>&1 \
  || "${KUBECTL[@]}" create namespace "$DEMO_NAMESPACE" >/dev/null

# A cluster rebuilt since (new kubeconfig) or a store wiped by `make cluster-down` means
# the running processes serve the old state: restart them.
if alive mlflow && [ ! -e "$C/mlflow/mlflow.db" ]; then stop mlflow; fi
if alive operator && stale operator "$KUBECONFIG_FILE"; then stop operator; fi

if alive mlflow; then
  log "MLflow already running (pid $(cat "$RUN/mlflow.pid"))"
else
  log "MLflow on $HOST_IP:$MLFLOW_PORT (store in .cluster/mlflow)"
  mkdir -p "$C/mlflow/artifacts"
  start mlflow "$LOGS/mlflow.log" "$VENV/bin/mlflow" server \
    --host "$HOST_IP" --port "$MLFLOW_PORT" --workers 1 \
    --backend-store-uri "sqlite:///$C/mlflow/mlflow.db" \
    --serve-artifacts --artifacts-destination "$C/mlflow/artifacts" \
    --allowed-hosts "$HOST_IP,$HOST_IP:$MLFLOW_PORT,localhost,localhost:$MLFLOW_PORT"
fi

if alive s3; then
  log "S3 endpoint already running (pid $(cat "$RUN/s3.pid"))"
else
  log "S3 endpoint (moto) on $HOST_IP:$S3_PORT"
  start s3 "$LOGS/s3.log" "$VENV/bin/moto_server" -H "$HOST_IP" -p "$S3_PORT"
fi
wait_http "http://$HOST_IP:$S3_PORT/" 60 "S3 endpoint"
AWS_ACCESS_KEY_ID="$S3_ACCESS_KEY" AWS_SECRET_ACCESS_KEY="$S3_SECRET_KEY" AWS_DEFAULT_REGION=us-east-1 \
  "$VENV/bin/python" - "http://$HOST_IP:$S3_PORT" "$S3_BUCKET" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1])
if sys.argv[2] not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
    s3.create_bucket(Bucket=sys.argv[2])
PY

log "Secret $DEMO_NAMESPACE/$S3_SECRET (shared-credentials file under key 'credentials')"
creds="$(mktemp)"
trap 'rm -f "$creds"' EXIT
printf '[default]\naws_access_key_id = %s\naws_secret_access_key = %s\n' "$S3_ACCESS_KEY" "$S3_SECRET_KEY" >"$creds"
"${KUBECTL[@]}" -n "$DEMO_NAMESPACE" create secret generic "$S3_SECRET" --from-file=credentials="$creds" \
  --dry-run=client -o yaml | "${KUBECTL[@]}" apply -f - >/dev/null

wait_http "http://$HOST_IP:$MLFLOW_PORT/health" 120 "MLflow"

if alive operator; then
  log "operator already running (pid $(cat "$RUN/operator.pid"))"
else
  log "operator watching $DEMO_NAMESPACE (log: .cluster/logs/operator.log)"
  start operator "$LOGS/operator.log" env \
    KUBECONFIG="$KUBECONFIG_FILE" \
    THUNDERBOLT_NAMESPACES="$DEMO_NAMESPACE" \
    THUNDERBOLT_MLFLOW_URI="http://$HOST_IP:$MLFLOW_PORT" \
    THUNDERBOLT_ARTIFACTS_URI="s3://$S3_BUCKET/models" \
    THUNDERBOLT_S3_ENDPOINT="http://$HOST_IP:$S3_PORT" \
    THUNDERBOLT_ARTIFACTS_SECRET="$S3_SECRET" \
    THUNDERBOLT_REPORT_URL="http://$HOST_IP:8081" \
    THUNDERBOLT_SERVING_IMAGE="thunderbolt-trainer:0.1.0" \
    THUNDERBOLT_TRAINER_IMAGE="thunderbolt-trainer:0.1.0" \
    "$VENV/bin/thunderbolt" operator --kubeconfig "$KUBECONFIG_FILE" "${OPERATOR_PORTS[@]}"
fi
wait_http "http://127.0.0.1:8082/healthz" 90 "operator"

# The read-only web dashboard, on loopback only (docs/dashboard.md).
DASHBOARD_PORT="${DASHBOARD_PORT:-8765}"
if alive dashboard && stale dashboard "$KUBECONFIG_FILE"; then stop dashboard; fi
if ! alive dashboard; then
  start dashboard "$LOGS/dashboard.log" "$VENV/bin/thunderbolt" dashboard \
    --kubeconfig "$KUBECONFIG_FILE" -n "$DEMO_NAMESPACE" --address 127.0.0.1 --port "$DASHBOARD_PORT"
fi
wait_http "http://127.0.0.1:$DASHBOARD_PORT/healthz" 60 "dashboard"

cat >&2 <<MSG
[$(date +%H:%M:%S)] up: cluster, CRDs, MLflow http://$HOST_IP:$MLFLOW_PORT, S3 http://$HOST_IP:$S3_PORT (bucket $S3_BUCKET),
           operator watching $DEMO_NAMESPACE, dashboard http://127.0.0.1:$DASHBOARD_PORT/.
           Logs in .cluster/logs/. Stop everything with: make down
MSG
