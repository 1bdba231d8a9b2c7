#!/usr/bin/env bash
# bench_chain with TensorRT (FP32/FP16/INT8) beside ONNX Runtime CUDA: same 1080p JPEG, one
# device call. ONNX Runtime GPU runs in the device's Python 3.12 (/tmp/gpu-env.sh), TensorRT in
# the staged Python 3.11 (/tmp/trt-check-env.sh); both append to one chain.json, then the merged
# tables are printed. Needs scripts/gpu/stage_trt_check.sh's data and the engines built by
# `verify_tensorrt build` (same settings: OPT_LEVEL, default 0, or "default" for TensorRT's own
# level; WORK, default /tmp/trt-check, the engine cache folder's parent).
#     run  command="bash scripts/gpu/bench_chain_trt.sh"          (results in $OUT)
# Passes: the SSD alone (goal: TensorRT FP16 chain p50 <= 2.5 ms), then all three models; then
# ONNX Runtime CUDA per-model times (verify_engines_gpu) for the >= 3x model-time goal, to set
# beside verify_tensorrt check's TensorRT run times. One failing part does not stop the others.
set -uo pipefail
out=${OUT:-/tmp/trt-check/bench}
data=/tmp/trt-check/data
runs=${RUNS:-200}
opt=(--work "${WORK:-/tmp/trt-check}")
[ "${OPT_LEVEL:-0}" = default ] || opt+=(--opt-level "${OPT_LEVEL:-0}")
for models in ssd_mobilenetv2_oidv4 ssd_mobilenetv2_oidv4,selfie_segmentation,deeplabv3_mobilenetv2_untrained; do
  dir=$out/chain-$(echo "$models" | tr ',' '+' | cut -c1-60)
  common=(--models "$models" --frame "$data/photos/frame_1080p.jpg" --out "$dir" --data "$data"
          --runs "$runs" --accuracy --append)
  ( . /tmp/gpu-env.sh && DALI_TRT_ROS_CACHE=$data/cache \
      python3 -m dali_trt_ros.tools.bench_chain --setups gpu-zerocopy,opencv+ort-cuda "${common[@]}" ) \
    || echo "ONNX Runtime set-ups failed (rc $?)"
  ( . /tmp/trt-check-env.sh && "$TRT_PYTHON" -m dali_trt_ros.tools.bench_chain \
      --setups trt-fp32,trt-fp16,trt-int8 "${opt[@]}" "${common[@]}" ) \
    || echo "TensorRT set-ups failed (rc $?)"
  ( . /tmp/trt-check-env.sh && "$TRT_PYTHON" -m dali_trt_ros.tools.bench_chain --report \
      --models "$models" --out "$dir" ) | tee "$dir/tables.md"
done
( . /tmp/gpu-env.sh && DALI_TRT_ROS_CACHE=$data/cache \
    python3 -m dali_trt_ros.tools.verify_engines_gpu --runs 100 ) 2>&1 | tail -20 | tee "$out/ort_cuda_models.txt"
