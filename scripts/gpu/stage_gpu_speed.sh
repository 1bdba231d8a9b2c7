#!/usr/bin/env bash
# Stage what scripts/gpu/gpu_speed.sh needs on the GPU machine beyond ../shared/gpu/stage.sh
# (DALI + ONNX Runtime GPU for the device's Python 3.12, installed in /tmp/site):
#   - cp312 wheels of onnx, onnxconverter-common (+ protobuf, ml_dtypes, typing_extensions,
#     PyYAML): the model variants (FP16, post-processing in the graph) are made on the device
#     by prepare_models, as at preparation time anywhere else;
#   - the three prepared base ONNX models with their manifest (31 MB).
# Run from the project root (after `python -m dali_trt_ros.tools.prepare_models` here):
#     bash scripts/gpu/stage_gpu_speed.sh
# Then ONE device call (about 10 s):
#     run  carry=[".gpuspeed"]  command="bash .gpuspeed/receive_gpu_speed.sh"
# It installs the wheels into /tmp/site (next to stage.sh's) and the models into
# /tmp/gpu-speed/cache/models (DALI_TRT_ROS_CACHE=/tmp/gpu-speed/cache).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
cache=${GPU_SPEED_WHEEL_CACHE:-$HOME/.cache/dali-trt-ros-gpu-speed}
models=${DALI_TRT_ROS_CACHE:-$HOME/.cache/dali_trt_ros}/models
mkdir -p "$cache"
exclude=$(git rev-parse --git-common-dir)/info/exclude
grep -qx '/.gpuspeed/' "$exclude" 2>/dev/null || echo '/.gpuspeed/' >> "$exclude"
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d "$cache" \
  onnx==1.23.2 onnxconverter-common==1.16.0 protobuf==7.36.2 ml_dtypes==0.6.0 \
  typing_extensions==4.16.0 PyYAML==6.0.3
rm -rf .gpuspeed && mkdir -p .gpuspeed/wheels .gpuspeed/models
cp "$cache"/*.whl .gpuspeed/wheels/
cp "$models/manifest.json" .gpuspeed/models/
for name in ssd_mobilenetv2_oidv4 selfie_segmentation deeplabv3_mobilenetv2_untrained; do
  cp "$models/$name.onnx" .gpuspeed/models/
done
cp scripts/gpu/receive_gpu_speed.sh .gpuspeed/
du -sh .gpuspeed
echo 'Device call:  run  carry=[".gpuspeed"]  command="bash .gpuspeed/receive_gpu_speed.sh"'
