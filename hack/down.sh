#!/usr/bin/env bash
# `make down`: stop the host processes `make up` started (by pid file), then the cluster.
set -euo pipefail
# shellcheck source=demo/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/demo/lib.sh"
cd "$REPO_ROOT"
stop dashboard
stop operator
stop s3
stop mlflow
rm -rf "$RUN"
make -s cluster-down
log "down"
