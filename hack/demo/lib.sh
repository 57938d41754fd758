# shellcheck shell=bash disable=SC2034
# Shared by hack/up.sh, hack/down.sh and hack/demo.sh: paths, logging, pid-file processes.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
C="$REPO_ROOT/.cluster"
VENV="${VENV:-$REPO_ROOT/.venv}"
KUBECONFIG_FILE="$C/kubeconfig"
KUBECTL=("$C/bin/kubectl" --kubeconfig "$KUBECONFIG_FILE")
DEMO_NAMESPACE="${DEMO_NAMESPACE:-thunderbolt-demo}"
MLFLOW_PORT="${MLFLOW_PORT:-5000}"
S3_PORT="${S3_PORT:-9000}"
S3_BUCKET="${S3_BUCKET:-thunderbolt}"
S3_SECRET="${S3_SECRET:-s3-credentials}"
# moto accepts any credentials; these only have to be the same on both sides.
S3_ACCESS_KEY="thunderbolt-demo"
S3_SECRET_KEY="thunderbolt-demo-secret"
OPERATOR_PORTS=(--metrics-port 8080 --report-port 8081 --health-port 8082)
# Pid files live outside .cluster/: `make cluster-down` deletes .cluster/, and the host
# processes must still be found (and stopped) after that.
RUN="$REPO_ROOT/.cache/demo-run"
LOGS="$C/logs"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

host_ip() {
  [ -s "$C/host-ip" ] || die "no $C/host-ip: is the cluster up? (make cluster)"
  cat "$C/host-ip"
}

# alive NAME: the process recorded in $RUN/NAME.pid is running.
alive() {
  local pidfile="$RUN/$1.pid"
  [ -s "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null
}

# stale NAME FILE: FILE changed after the process recorded for NAME started (or is gone).
stale() {
  [ ! -e "$2" ] || [ "$2" -nt "$RUN/$1.pid" ]
}

# start NAME LOGFILE CMD...: start CMD in the background (own session), record its pid.
start() {
  local name="$1" logfile="$2"
  shift 2
  mkdir -p "$RUN" "$LOGS"
  setsid "$@" >>"$logfile" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

# stop NAME: TERM the recorded process group, wait up to 20 s, then KILL; remove the pid file.
stop() {
  local name="$1" pidfile="$RUN/$1.pid" pid
  [ -s "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    log "stopping $name (pid $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# wait_http URL SECONDS NAME: until URL answers at all (any HTTP status).
wait_http() {
  local url="$1" seconds="$2" name="$3"
  "$VENV/bin/python" - "$url" "$seconds" "$name" <<'PY' || die "$3 did not answer at $1 (see $LOGS)"
import sys, time, urllib.error, urllib.request
url, seconds = sys.argv[1], float(sys.argv[2])
deadline = time.monotonic() + seconds
while True:
    try:
        urllib.request.urlopen(url, timeout=3)
        break
    except urllib.error.HTTPError:
        break
    except OSError:
        if time.monotonic() > deadline:
            sys.exit(1)
        time.sleep(0.5)
PY
}
