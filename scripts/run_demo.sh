#!/usr/bin/env bash
# The README's demo command (`make demo`): set up, then run the demo on embedded photos.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/setup_env.sh
export AMENT_PREFIX_PATH="$root/.venv" PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=${ROS_DOMAIN_ID:-$(( RANDOM % 100 + 1 ))}
export FASTDDS_DEFAULT_PROFILES_FILE="$root/config/fastdds_large_images.xml"
if [ -f dali_trt_ros/tools/prepare_models.py ]; then
  .venv/bin/python -m dali_trt_ros.tools.prepare_models
fi
exec .venv/bin/python -m dali_trt_ros.tools.demo "$@"
