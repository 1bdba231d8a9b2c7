#!/usr/bin/env bash
# Device side of stage_gpu_speed.sh: wheels into /tmp/site, models into /tmp/gpu-speed/cache.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
  --target /tmp/site "$here"/wheels/*.whl
mkdir -p /tmp/gpu-speed/cache/models
cp "$here"/models/* /tmp/gpu-speed/cache/models/
PYTHONPATH=/tmp/site python3 -c 'import onnx, onnxconverter_common, yaml; print("onnx", onnx.__version__, "onnxconverter-common", onnxconverter_common.__version__)'
ls -la /tmp/gpu-speed/cache/models
