#!/usr/bin/env bash
# Issue 11 on the GPU machine: GPU tests and every speed figure, in one device call per part.
# Needs: ../shared/gpu/stage.sh (DALI + ONNX Runtime GPU, /tmp/gpu-env.sh) and
# scripts/gpu/stage_gpu_speed.sh (onnx + onnxconverter-common, the base models) staged first.
#     run  command="bash scripts/gpu/gpu_speed.sh tests"   # GPU test subset (limit 7 min)
#     run  command="bash scripts/gpu/gpu_speed.sh chain"   # chain goals + preprocessing (limit 8.5 min)
#     run  command="bash scripts/gpu/gpu_speed.sh extra"   # raw uploads, ORT CUDA, overlap (limit 5.5 min)
# Each part stays under the 10-minute call limit even when every step hits its own limit;
# expected well below (estimates: 1-2, 3-4, 2 min). No argument: all three (too long for one call). Results in $OUT/<step>/ (JSON written as each case finishes, so a step
# cut short keeps what it measured) plus $OUT/<step>.log; one failing step does not stop the
# others. RUNS scales the timed runs (default 40).
set -uo pipefail
out=${OUT:-/tmp/gpu-speed/out}
part=${1:-all}
runs=${RUNS:-40}
mkdir -p "$out"
# shellcheck disable=SC1091
. /tmp/gpu-env.sh
export DALI_TRT_ROS_CACHE=${DALI_TRT_ROS_CACHE:-/tmp/gpu-speed/cache}
export PYTHONPATH=$PWD:$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}
py=python3

step() {  # step NAME SECONDS COMMAND...: run with a time limit, log, never abort the script
  local name=$1 limit=$2
  shift 2
  local started=$SECONDS
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  echo "== $name rc=$rc in $((SECONDS - started)) s"
  tail -n 25 "$out/$name.log"
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  $py -c 'import sys, numpy, cv2, onnxruntime, nvidia.dali as d; print(sys.version.split()[0], "numpy", numpy.__version__, "cv2", cv2.__version__, "ORT", onnxruntime.__version__, onnxruntime.get_available_providers(), "DALI", d.__version__)'
  date -u; nproc; } > "$out/environment.txt" 2>&1
cat "$out/environment.txt"
step prepare_models 90 $py -m dali_trt_ros.tools.prepare_models --offline

if [ "$part" = tests ] || [ "$part" = all ]; then
  step pytest_gpu 300 $py -m pytest -q -rs -p no:cacheprovider test/test_device_postprocess.py \
    test/test_host_copies.py test/test_golden_chain.py test/test_preprocess_dali.py \
    test/test_engine_onnxruntime.py test/test_preprocess_dali_vs_reference.py
fi
if [ "$part" = chain ] || [ "$part" = all ]; then
  step chain_goals 280 $py benchmarks/chain_goals.py --runs "$runs" --out "$out/chain_goals"
  step preprocess_aa 100 $py -m dali_trt_ros.tools.bench_preprocess --backends dali-gpu,opencv-fair,opencv \
    --repeats "$runs" --max-seconds 1 --out "$out/preprocess_antialias"
  step preprocess_noaa 100 $py -m dali_trt_ros.tools.bench_preprocess --backends dali-gpu,opencv-fair \
    --repeats "$runs" --max-seconds 1 --no-antialias --out "$out/preprocess_no_antialias"
fi
if [ "$part" = extra ] || [ "$part" = all ]; then
  step raw_upload 90 $py benchmarks/raw_upload.py --runs "$runs" --out "$out/raw_upload"
  step ort_cuda 210 $py benchmarks/ort_cuda.py --runs "$runs" --out "$out/ort_cuda"
fi
echo "results under $out"
