"""Serialized TensorRT engines on disk: the key that says when one may be reused, atomic writes.

An engine only runs on the TensorRT version and GPU model it was built with, and only computes
the right thing for the model, precision, DLA core, input shapes and INT8 calibration it was
built from. Each cached ``<name>.engine`` has a ``<name>.engine.json`` beside it recording those
facts and the engine's own hash; a mismatch in any of them means rebuild, and the reason is
logged.
"""

from dataclasses import asdict, dataclass, fields
import hashlib
import json
import os
import tempfile

from dali_trt_ros.errors import EngineCacheError

METADATA_SUFFIX = '.json'
_CHUNK = 1 << 20


def file_sha256(path):
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as stream:
        for block in iter(lambda: stream.read(_CHUNK), b''):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class EngineCacheKey:
    """Everything a built engine depends on; equal keys mean the cached engine may be reused."""

    model_sha256: str
    tensorrt_version: str
    device_name: str
    compute_capability: str
    precision: str
    dla_core: int
    input_shapes: str
    calibration_sha256: str = ''
    dynamic_ranges_sha256: str = ''
    plugins_sha256: str = ''

    def digest(self):
        """Return one hex digest of all fields (for names and logs)."""
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def differences(self, other):
        """Return 'field: old -> new' lines for every field that differs from ``other``."""
        changes = []
        for item in fields(self):
            mine, theirs = getattr(self, item.name), getattr(other, item.name)
            if mine != theirs:
                changes.append(f'{item.name}: {_short(theirs)} -> {_short(mine)}')
        return changes


def _short(value):
    text = str(value)
    return text[:12] + '…' if len(text) == 64 else text


def canonical_input_shapes(profiles):
    """Return input shapes as stable text: 'name=min/opt/max;…' sorted by name.

    ``profiles`` maps input name -> (min, opt, max) shape tuples.
    """
    parts = []
    for name in sorted(profiles):
        low, best, high = profiles[name]
        parts.append(f'{name}=' + '/'.join('x'.join(str(d) for d in s) for s in (low, best, high)))
    return ';'.join(parts)


def make_cache_key(model_path, facts, precision, dla_core, profiles, calibration_sha256='',
                   dynamic_ranges_path=None, plugin_paths=()):
    """Build the key for a model, the device ``facts`` (DeviceFacts) and the build options."""
    plugins = hashlib.sha256()
    for path in plugin_paths:
        plugins.update(file_sha256(path).encode())
    return EngineCacheKey(
        model_sha256=file_sha256(model_path),
        tensorrt_version=facts.tensorrt_version,
        device_name=facts.device_name,
        compute_capability='.'.join(str(part) for part in facts.compute_capability),
        precision=precision,
        dla_core=-1 if dla_core is None else int(dla_core),
        input_shapes=canonical_input_shapes(profiles),
        calibration_sha256=calibration_sha256 or '',
        dynamic_ranges_sha256=file_sha256(dynamic_ranges_path) if dynamic_ranges_path else '',
        plugins_sha256=plugins.hexdigest() if plugin_paths else '',
    )


def default_engine_path(cache_dir, model_path, precision, dla_core):
    """Return '<cache_dir>/<model stem>.<precision>.<gpu|dlaN>.engine'.

    The name is stable across rebuilds, so a stale engine is found, reported and replaced
    instead of piling up beside the new one.
    """
    stem = os.path.splitext(os.path.basename(model_path))[0]
    target = 'gpu' if dla_core is None else f'dla{dla_core}'
    return os.path.join(cache_dir, f'{stem}.{precision}.{target}.engine')


@dataclass(frozen=True)
class CacheDecision:
    """Whether a cached engine may be used, and why (for the log)."""

    reuse: bool
    reason: str


def check_cached_engine(engine_path, key):
    """Decide whether the engine file at ``engine_path`` was built for ``key``."""
    if not os.path.isfile(engine_path):
        return CacheDecision(False, f'no cached engine at {engine_path}')
    metadata_path = engine_path + METADATA_SUFFIX
    if not os.path.isfile(metadata_path):
        return CacheDecision(False, f'{engine_path} has no {METADATA_SUFFIX} record of how it was '
                                    'built (foreign or interrupted build)')
    try:
        with open(metadata_path, encoding='utf-8') as stream:
            record = json.load(stream)
        cached = EngineCacheKey(**record['key'])
        engine_sha256 = record['engine_sha256']
    except (OSError, ValueError, KeyError, TypeError) as error:
        return CacheDecision(False, f'{metadata_path} is unreadable ({error})')
    changes = key.differences(cached)
    if changes:
        return CacheDecision(False, f'{engine_path} is stale: ' + '; '.join(changes))
    if file_sha256(engine_path) != engine_sha256:
        return CacheDecision(False, f'{engine_path} does not match its record (truncated or '
                                    'replaced)')
    return CacheDecision(True, f'{engine_path} matches (key {key.digest()[:12]})')


def write_atomically(path, data):
    """Write bytes to ``path`` so readers see the old file or the whole new one, never a part.

    The data goes to a temporary file in the same directory, is flushed to disk, then renamed
    over ``path`` (os.replace is atomic within one file system).
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        handle, temp_path = tempfile.mkstemp(prefix='.' + os.path.basename(path) + '.',
                                             suffix='.tmp', dir=directory)
    except OSError as error:
        raise EngineCacheError(f'cannot write to {directory}: {error}; set engine_cache_dir to '
                               'a writable folder') from error
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_path, path)
    except BaseException:
        if os.path.exists(temp_path):
            os.unlink(temp_path)
        raise


def store_engine(engine_path, serialized, key, build_notes=()):
    """Write an engine and its record; the record last, so a crash never leaves a valid pair."""
    data = bytes(serialized)
    write_atomically(engine_path, data)
    record = {'key': asdict(key), 'engine_sha256': hashlib.sha256(data).hexdigest(),
              'notes': list(build_notes)}
    write_atomically(engine_path + METADATA_SUFFIX,
                     json.dumps(record, indent=2, sort_keys=True).encode())
