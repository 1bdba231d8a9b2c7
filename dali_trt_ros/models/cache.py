"""Where prepared models live, and the manifest that records their checksums.

Layout under the cache root (``$DALI_TRT_ROS_CACHE``, else ``$XDG_CACHE_HOME/dali_trt_ros``,
else ``~/.cache/dali_trt_ros``)::

    models/manifest.json      one entry per produced ONNX file: sha256, size, source, tools
    models/<name>.onnx        produced models
    models/downloads/         registry packages exactly as fetched (checked by sha256)
"""

import json
import os
from pathlib import Path

from dali_trt_ros import atomic_files
from dali_trt_ros.checksums import bytes_sha256 as sha256_of_bytes  # noqa: F401 (re-exported)
from dali_trt_ros.checksums import file_sha256 as sha256_of_file  # noqa: F401 (re-exported)
from dali_trt_ros.errors import ModelError

MANIFEST_NAME = 'manifest.json'
MANIFEST_FORMAT = 1


def default_cache_dir():
    """Return the model cache directory from the environment (not created here)."""
    root = os.environ.get('DALI_TRT_ROS_CACHE')
    if not root:
        xdg = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
        root = os.path.join(xdg, 'dali_trt_ros')
    return Path(root) / 'models'


def downloads_dir(cache_dir):
    """Return the folder that holds fetched registry packages."""
    return Path(cache_dir) / 'downloads'


def write_atomically(path, data):
    """Write a cache file atomically, readable by all (cached models are shared read-only)."""
    atomic_files.write_atomically(str(path), data, mode=0o644)


def read_manifest(cache_dir):
    """Return the manifest's model entries (an empty dict when there is none yet)."""
    path = Path(cache_dir) / MANIFEST_NAME
    if not path.exists():
        return {}
    try:
        content = json.loads(path.read_text(encoding='utf-8'))
    except (OSError, ValueError) as error:
        raise ModelError(f'model manifest {path} is unreadable ({error}); delete it and run '
                         f'prepare_models again to rebuild the models') from error
    if not isinstance(content, dict) or not isinstance(content.get('models'), dict):
        raise ModelError(f'model manifest {path} has an unexpected layout; delete it and run '
                         'prepare_models again')
    return content['models']


def record_in_manifest(cache_dir, name, entry):
    """Store (or replace) one model's entry in the manifest."""
    models = read_manifest(cache_dir)
    models[name] = entry
    content = {'format': MANIFEST_FORMAT, 'models': dict(sorted(models.items()))}
    text = json.dumps(content, indent=2, sort_keys=True) + '\n'
    write_atomically(Path(cache_dir) / MANIFEST_NAME, text.encode('utf-8'))
