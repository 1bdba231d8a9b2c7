#!/usr/bin/env bash
# Stage what benchmarks/bench_process_bag.py needs on the device beyond ../shared/gpu/stage.sh
# (DALI + ONNX Runtime GPU) and scripts/gpu/stage_gpu_speed.sh (models, onnx, PyYAML): rosbags
# and its dependencies for the device's Python 3.12, and the scikit-image photos (the device has
# no scikit-image). Run here, from the project root; it fills .bagdeps/ (git-ignored via
# .git/info/exclude, ~4 MB), which the device call carries:
#     run  command="bash scripts/gpu/bench_process_bag.sh"  carry=[".bagdeps"]
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
exclude=$(git rev-parse --git-path info/exclude)
grep -qx "/.bagdeps/" "$exclude" 2>/dev/null || echo "/.bagdeps/" >> "$exclude"
rm -rf .bagdeps && mkdir -p .bagdeps/wheels .bagdeps/site .bagdeps/photos
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
  --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
  --platform manylinux2014_x86_64 -d .bagdeps/wheels \
  rosbags==0.11.9 apsw==3.54.1.0 backports.zstd==1.8.0 lz4==4.4.5 ruamel.yaml==0.19.1
python3 - <<'PY'
import glob, zipfile
for wheel in glob.glob('.bagdeps/wheels/*.whl'):
    zipfile.ZipFile(wheel).extractall('.bagdeps/site')
PY
rm -rf .bagdeps/wheels
skimage_data=$(.venv/bin/python -c 'import skimage.data, os; print(os.path.dirname(skimage.data.__file__))')
for photo in astronaut.png chelsea.png coffee.png motorcycle_left.png rocket.jpg; do
  cp "$skimage_data/$photo" .bagdeps/photos/
done
du -sh .bagdeps
