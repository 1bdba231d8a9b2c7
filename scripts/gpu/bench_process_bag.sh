#!/usr/bin/env bash
# process_bag throughput on the GPU machine (issue 12 goal: 1080p JPEG, detector + segmenter,
# masks written, >= 200 frames/s and >= 2x its own batch-1 rate). One device call, ~3-5 min:
#     run  command="bash scripts/gpu/bench_process_bag.sh"  carry=[".bagdeps"]
# Needs, staged on the same warm machine: ../shared/gpu/stage.sh (/tmp/gpu-env.sh),
# scripts/gpu/stage_gpu_speed.sh (models in /tmp/gpu-speed/cache, onnx + PyYAML in /tmp/site),
# and .bagdeps/ from scripts/gpu/stage_bag_bench.sh (run here first). Writes $OUT/results.json
# after every set-up (a failing set-up keeps the others) and $OUT/table.md; bags in /tmp.
set -uo pipefail
out=${OUT:-/tmp/bench-process-bag}
mkdir -p "$out"
# shellcheck disable=SC1091
. /tmp/gpu-env.sh
export DALI_TRT_ROS_CACHE=${DALI_TRT_ROS_CACHE:-/tmp/gpu-speed/cache}
export PYTHONPATH=$PWD:$PWD/.bagdeps/site:/tmp/site${PYTHONPATH:+:$PYTHONPATH}
{ nvidia-smi --query-gpu=name,driver_version --format=csv,noheader; nproc; date -u
  python3 -c 'import sys, rosbags, onnxruntime, nvidia.dali as d; print(sys.version.split()[0], "ORT", onnxruntime.__version__, "DALI", d.__version__, "rosbags ok")'
} 2>&1 | tee "$out/environment.txt"
timeout 120 python3 -m dali_trt_ros.tools.prepare_models --offline > "$out/prepare_models.log" 2>&1 \
  || { echo "prepare_models failed:"; tail -20 "$out/prepare_models.log"; }
timeout 480 python3 benchmarks/bench_process_bag.py --photo-folder .bagdeps/photos \
  --work-dir /tmp/bench-process-bag-work --out "$out" 2>&1 | tee "$out/bench.log" | tail -40
