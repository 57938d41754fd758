#!/usr/bin/env bash
# Create the project's virtual environment. On machines without an NVIDIA GPU the
# CPU build of torch is pinned first, so nothing later pulls gigabytes of CUDA wheels.
set -euo pipefail
venv=${1:-.venv}
python=${PYTHON:-python3}
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --disable-pip-version-check -q)
"${pip[@]}" --upgrade pip setuptools wheel
if ! command -v nvidia-smi >/dev/null 2>&1; then
  "${pip[@]}" "torch==${TORCH_VERSION:-2.13.0}"
fi
"${pip[@]}" -e ".[operator,serve,train,cli,test]"
# Debian's chromium for the dashboard's browser tests: Playwright drives it at
# /usr/bin/chromium (`playwright install` is never run: it would download browsers).
if ! command -v chromium >/dev/null 2>&1; then
  # shellcheck source=hack/cluster/lib.sh
  . "$(dirname "$0")/cluster/lib.sh"
  if is_debian; then
    apt_install chromium
  else
    echo "warning: install chromium (at /usr/bin/chromium) for the dashboard browser tests" >&2
  fi
fi
echo "installed into $venv"
