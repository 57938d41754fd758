#!/bin/sh
# A trial without Python: awk computes a stand-in learning curve from the learning rate
# (read from THUNDERBOLT_PARAM_LR, the environment variable the operator sets for the
# parameter `lr`) and appends `name=value` lines to the metrics file. The File collector
# reads that file when the container ends.
set -eu
lr="${THUNDERBOLT_PARAM_LR:?}"
epochs="${1:-6}"
out="${METRICS_FILE:-/workspace/metrics.txt}"
echo "shell trial: lr=$lr epochs=$epochs -> $out"
epoch=1
while [ "$epoch" -le "$epochs" ]; do
  awk -v lr="$lr" -v e="$epoch" 'BEGIN {
    miss = log(lr) / log(10) - log(0.05) / log(10); if (miss < 0) miss = -miss
    ceiling = 0.95 - 0.25 * miss; if (ceiling < 0.05) ceiling = 0.05
    acc = ceiling * (1 - exp(-e / 2.0))
    printf "epoch=%d accuracy=%.5f loss=%.5f\n", e, acc, 1 - acc
  }' >> "$out"
  epoch=$((epoch + 1))
  sleep 0.2
done
