#!/usr/bin/env bash
# bench_chain with TensorRT beside ONNX Runtime CUDA: same 1080p JPEG, one device call (~4 min).
# ONNX Runtime GPU runs in the device's Python 3.12 (/tmp/gpu-env.sh), TensorRT in the staged
# Python 3.11 (/tmp/trt-check-env.sh); both append to one chain.json, then the merged tables
# (with the per-stage breakdown: preprocess / inference / decode / overhead) are printed. Needs
# scripts/gpu/stage_trt_check.sh's data and the engines `verify_tensorrt build` made with the same
# settings (OPT_LEVEL, default 0, or "default" for TensorRT's own level; WORK, default
# /tmp/trt-check): fp16 plain + devpost, and for trt-fp16-level3 the SSD fp16 devpost engine
# built with --work $WORK/level3 and no --opt-level (docs/engines.md lists the commands).
#     run  command="bash scripts/gpu/bench_chain_trt.sh"          (results in $OUT)
# Passes: the SSD alone (goal: TensorRT FP16 chain p50 <= 2.5 ms; level-0 and level-3 engines),
# then all three models (device post-processing vs host decoding); then ONNX Runtime CUDA
# per-model times (verify_engines_gpu) for the >= 3x model-time goal, to set beside
# verify_tensorrt check's TensorRT run times. One failing part does not stop the others.
# TRT_SETUPS_SSD / TRT_SETUPS_ALL override the TensorRT set-ups of each pass (add trt-int8 or
# trt-fp32 when those engines were built).
set -uo pipefail
out=${OUT:-/tmp/trt-check/bench}
data=/tmp/trt-check/data
runs=${RUNS:-200}
opt=(--work "${WORK:-/tmp/trt-check}")
[ "${OPT_LEVEL:-0}" = default ] || opt+=(--opt-level "${OPT_LEVEL:-0}")
ssd=ssd_mobilenetv2_oidv4
all=ssd_mobilenetv2_oidv4,selfie_segmentation,deeplabv3_mobilenetv2_untrained
for pass in "$ssd|${TRT_SETUPS_SSD:-trt-fp16,trt-fp16-level3,trt-fp16-host}" \
            "$all|${TRT_SETUPS_ALL:-trt-fp16,trt-fp16-host}"; do
  models=${pass%%|*}
  trt_setups=${pass#*|}
  dir=$out/chain-$(echo "$models" | tr ',' '+' | cut -c1-60)
  common=(--models "$models" --frame "$data/photos/frame_1080p.jpg" --out "$dir" --data "$data"
          --runs "$runs" --append)
  ( . /tmp/gpu-env.sh && DALI_TRT_ROS_CACHE=$data/cache \
      python3 -m dali_trt_ros.tools.bench_chain --setups gpu-zerocopy,opencv+ort-cuda "${common[@]}" ) \
    || echo "ONNX Runtime set-ups failed (rc $?)"
  ( . /tmp/trt-check-env.sh && "$TRT_PYTHON" -m dali_trt_ros.tools.bench_chain \
      --setups "$trt_setups" "${opt[@]}" "${common[@]}" ) \
    || echo "TensorRT set-ups failed (rc $?)"
  ( . /tmp/trt-check-env.sh && "$TRT_PYTHON" -m dali_trt_ros.tools.bench_chain --report \
      --models "$models" --out "$dir" ) | tee "$dir/tables.md"
done
# The model files are named (GPU run 1 looked them up in a staged cache without its
# manifest.json and found none: "not prepared"; the staging now carries the manifest too).
models_dir=$data/cache/models
( . /tmp/gpu-env.sh && DALI_TRT_ROS_CACHE=$data/cache \
    python3 -m dali_trt_ros.tools.verify_engines_gpu --runs 100 "$models_dir/$ssd.onnx" \
      "$models_dir/selfie_segmentation.onnx" "$models_dir/deeplabv3_mobilenetv2_untrained.onnx" ) \
  2>&1 | tail -20 | tee "$out/ort_cuda_models.txt"
