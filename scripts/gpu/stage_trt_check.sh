#!/usr/bin/env bash
# Stage what tools/verify_tensorrt.py and bench_chain's TensorRT set-ups need on the GPU machine,
# besides the two bundles the lead stages anyway:
#   ../shared/gpu/stage.sh      DALI (py3-none) + ONNX Runtime GPU for Python 3.12  -> /tmp/site
#   ../shared/gpu/stage_trt.sh  TensorRT 8.6 + CPython 3.11 (+ numpy 1.26.4)         -> /tmp/trt
# TensorRT only runs under that Python 3.11, and this package imports more than numpy there:
# cp311 builds of what DALI loads (libcst, optree, nvtx; stage.sh has cp312 ones) and of what the
# package imports (PyYAML, OpenCV headless, Pillow for the antialiased CPU resize, onnx to read
# model inputs, ONNX Runtime CPU as the reference), all chosen to work with numpy 1.26.4.
# It also carries the prepared ONNX models and real photos (scikit-image, written here by
# `verify_tensorrt photos`), so the device needs no registry and no scikit-image in 3.11.
#
# Run from the project root:   bash scripts/gpu/stage_trt_check.sh
# Needs here: network to PyPI, the project venv (.venv, for the photos step) and the prepared
# models (python -m dali_trt_ros.tools.prepare_models). Downloads are cached in
# ${PY311_WHEEL_CACHE:-$HOME/.cache/dali-trt-ros-py311}.
# Output: parts under .trtcheck/ (git-ignored), each with receive_trt_check.sh. Make the device
# calls back to back (the machine stays warm 30 s between calls), each carrying one folder:
#     run  carry=[".trtcheck/c0"]  command="bash .trtcheck/c0/receive_trt_check.sh"   ... up to cN
# The last one unpacks the wheels to /tmp/site311 and the data to /tmp/trt-check/data, makes the
# bundle's `nvidia` package a namespace package (its nvidia/__init__.py would hide DALI's
# nvidia.dali in /tmp/site), writes /tmp/trt-check-env.sh and checks the imports under 3.11.
# Checked here (2026-11-25) in a 3.11 interpreter with only these paths: all imports, and the
# ONNX Runtime CPU chain on the golden photos.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
here=scripts/gpu
cache=${PY311_WHEEL_CACHE:-$HOME/.cache/dali-trt-ros-py311}
mkdir -p "$cache"
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qx '/.trtcheck/' "$exclude" 2>/dev/null || echo '/.trtcheck/' >> "$exclude"

python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$cache" \
  PyYAML==6.0.2 opencv-python-headless==4.10.0.84 pillow==11.0.0 onnx==1.17.0 protobuf==5.28.3 \
  onnxruntime==1.20.1 libcst==1.9.0 optree==0.20.0 nvtx==0.2.17 six==1.16.0 packaging==24.2 \
  typing_extensions==4.12.2

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/payload/wheels" "$work/payload/data/cache/models"
cp "$cache"/*.whl "$work/payload/wheels/"
.venv/bin/python -m dali_trt_ros.tools.verify_tensorrt photos --out "$work/payload/data" > /dev/null
if [ "${STAGE_MODELS:-1}" = 1 ]; then
  # The models, their device post-processing variants (*.devpost.onnx, what the TensorRT and
  # ONNX Runtime CUDA chains run) and manifest.json: verify_engines_gpu and prepare_variant look
  # models up through the manifest (GPU run 1: "model ... is not prepared" without it).
  # STAGE_FP16_VARIANTS=1 adds the *.fp16*.onnx weights for ONNX Runtime FP16 (not needed here).
  models=$(.venv/bin/python -c 'from dali_trt_ros.models import MODELS, load_model_description
print(" ".join(str(load_model_description(n).onnx_path) for n in MODELS))')
  for m in $models; do
    [ -f "$m" ] || { echo "missing $m: run .venv/bin/python -m dali_trt_ros.tools.prepare_models" >&2; exit 1; }
    .venv/bin/python -c 'import sys
from dali_trt_ros.models import load_model_description
from dali_trt_ros.models.variants import prepare_variant
prepare_variant(load_model_description(sys.argv[1]), "device", "fp32")' \
      "$(basename "$m" .onnx)"
    cp "$m" "${m%.onnx}.devpost.onnx" "$work/payload/data/cache/models/"
    if [ "${STAGE_FP16_VARIANTS:-0}" = 1 ]; then
      cp "${m%.onnx}".fp16*.onnx "$work/payload/data/cache/models/"
    fi
  done
  cp "$(dirname "$m")/manifest.json" "$work/payload/data/cache/models/"
fi
tar -C "$work/payload" -cf "$work/bundle.tar" .
sha=$(sha256sum "$work/bundle.tar" | cut -d' ' -f1)

tree_bytes=$(git ls-files -co --exclude-standard -z | xargs -0 -r du -cb 2>/dev/null | tail -n 1 | cut -f1)
part_mib=${TRT_CHECK_PART_MIB:-$(( 58 - (${tree_bytes:-0} + 1048575) / 1048576 ))}
rm -rf .trtcheck && mkdir -p .trtcheck
split -b "${part_mib}m" -d -a 2 "$work/bundle.tar" .trtcheck/part.
parts=(.trtcheck/part.*)
n=${#parts[@]}
i=0
for p in "${parts[@]}"; do
  d=.trtcheck/c$i
  mkdir -p "$d"
  mv "$p" "$d/"
  cp "$here/receive_trt_check.sh" "$d/"
  echo "$n $sha" > "$d/meta"
  i=$((i + 1))
done
echo "Staged $n parts ($(du -m "$work/bundle.tar" | cut -f1) MiB). After stage.sh's and stage_trt.sh's calls, make these back to back:"
for ((i = 0; i < n; i++)); do
  echo "  run  carry=[\".trtcheck/c$i\"]  command=\"bash .trtcheck/c$i/receive_trt_check.sh\""
done
echo 'Then: source /tmp/trt-check-env.sh && "$TRT_PYTHON" -m dali_trt_ros.tools.verify_tensorrt ... (docs/engines.md)'
