#!/usr/bin/env bash
# Device side of scripts/gpu/stage_trt_check.sh; one call per part, back to back. Needs the
# TensorRT bundle (/tmp/trt-env.sh, from ../shared/gpu/stage_trt.sh) and DALI (/tmp/gpu-env.sh,
# from ../shared/gpu/stage.sh) already received on this machine.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
read -r n sha < "$here/meta"
stage=/tmp/trt-check-stage/$sha
mkdir -p "$stage"
cp "$here"/part.* "$stage/"
have=$(ls "$stage" | grep -c '^part\.' || true)
if [ "$have" -lt "$n" ]; then
  echo "part $(ls "$here" | grep '^part\.') received: $have of $n"
  exit 0
fi
got=$(cat "$stage"/part.* | sha256sum | cut -d' ' -f1)
[ "$got" = "$sha" ] || { echo "bundle sha256 $got, expected $sha: parts missing or mixed; stage again" >&2; exit 1; }
rm -rf /tmp/site311 /tmp/trt-check/data && mkdir -p /tmp/site311 /tmp/trt-check
cat "$stage"/part.* | tar -x -C /tmp/trt-check
rm -rf "$stage"
python3 - <<'PY'
import glob, zipfile
for wheel in sorted(glob.glob('/tmp/trt-check/wheels/*.whl')):
    zipfile.ZipFile(wheel).extractall('/tmp/site311')
PY
rm -rf /tmp/trt-check/wheels /tmp/site311/*.data
# The TensorRT bundle's nvidia/__init__.py (from nvidia-cuda-runtime-cu12) makes `nvidia` a
# regular package first on the path, which hides nvidia.dali in /tmp/site: extend its path.
if [ -f /tmp/trt/site/nvidia/__init__.py ]; then
  echo "__path__ = __import__('pkgutil').extend_path(__path__, __name__)" > /tmp/trt/site/nvidia/__init__.py
fi
cat > /tmp/trt-check-env.sh <<'ENV'
# TensorRT 8.6 + Python 3.11 with DALI and this package's dependencies (scripts/gpu/stage_trt_check.sh).
. /tmp/gpu-env.sh
. /tmp/trt-env.sh
export TRT_PYTHONPATH=/tmp/site311:/tmp/site:$PWD
export DALI_TRT_ROS_CACHE=/tmp/trt-check/data/cache
ENV
. /tmp/trt-check-env.sh
"$TRT_PYTHON" - <<'PY'
import sys, numpy, cv2, onnx, onnxruntime, yaml, tensorrt
import nvidia.dali as dali
from dali_trt_ros.engines.cuda_runtime import cuda_runtime
cuda = cuda_runtime()
print('python', sys.version.split()[0], '| tensorrt', tensorrt.__version__, '| DALI', dali.__version__,
      '| onnxruntime', onnxruntime.__version__, '| cv2', cv2.__version__, '| numpy', numpy.__version__)
print('libcudart', cuda.path, cuda.runtime_version(), '| GPU', cuda.device_properties(0))
PY
echo "data: $(ls /tmp/trt-check/data/photos/calibration | wc -l) calibration photos, $(ls /tmp/trt-check/data/cache/models 2>/dev/null | wc -l) models"
echo 'ready: source /tmp/trt-check-env.sh && "$TRT_PYTHON" -m dali_trt_ros.tools.verify_tensorrt ...'
