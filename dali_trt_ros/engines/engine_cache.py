"""Serialized TensorRT engines on disk: the key that says when one may be reused, atomic writes.

An engine only runs on the TensorRT version and GPU model it was built with, and only computes
the right thing for the model, precision, DLA core, input shapes and INT8 calibration it was
built from; the builder settings (GPU fallback, workspace, tactic sources, optimization level)
decide what it runs and how fast. Each cached ``<name>.engine`` has a ``<name>.engine.json``
beside it recording all of those and the engine's own hash; a mismatch in any of them means
rebuild, and the reason is logged.

A TensorRT engine file is code: it can carry plugin layers and kernels that run with the
process's rights. So engines are loaded only from the configured cache folder or engine path,
only when their record matches the key, the cache folder is created readable by its owner only
(0700), and a folder that others can write to is reported (see docs/engines.md, Security).
"""

from dataclasses import asdict, dataclass, fields
import hashlib
import json
import logging
import os
import stat

from dali_trt_ros import atomic_files
from dali_trt_ros.checksums import bytes_sha256, file_sha256
from dali_trt_ros.errors import EngineCacheError

LOG = logging.getLogger(__name__)
METADATA_SUFFIX = '.json'


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
    gpu_fallback: bool
    workspace_mib: int
    tactic_sources: str
    builder_optimization_level: int
    tf32: bool
    calibration_sha256: str = ''
    dynamic_ranges_sha256: str = ''
    plugins_sha256: str = ''
    int8_fp16_tail_layers: int = 0

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


def make_cache_key(config, plan, facts, calibration_sha256=''):
    """Build the key of an engine for EngineConfig ``config`` built by BuildPlan ``plan``.

    ``facts`` is the DeviceFacts of this machine; ``calibration_sha256`` the hash of the INT8
    calibration data (calibration.calibration_data_sha256), '' when there is none.
    """
    plugins = hashlib.sha256()
    for path in config.plugins:
        plugins.update(file_sha256(path).encode())
    return EngineCacheKey(
        model_sha256=file_sha256(config.model),
        tensorrt_version=facts.tensorrt_version,
        device_name=facts.device_name,
        compute_capability='.'.join(str(part) for part in facts.compute_capability),
        precision=plan.precision,
        dla_core=-1 if plan.dla_core is None else int(plan.dla_core),
        input_shapes=canonical_input_shapes(plan.profiles),
        gpu_fallback=bool(plan.gpu_fallback),
        workspace_mib=int(config.workspace_mib),
        tactic_sources='default' if config.tactic_sources is None else
        ','.join(config.tactic_sources) or 'none',
        builder_optimization_level=-1 if config.builder_optimization_level is None else
        int(config.builder_optimization_level),
        tf32=bool(config.cuda_tf32),
        calibration_sha256=calibration_sha256 or '',
        dynamic_ranges_sha256=file_sha256(config.dynamic_ranges) if config.dynamic_ranges
        else '',
        plugins_sha256=plugins.hexdigest() if config.plugins else '',
        int8_fp16_tail_layers=int(config.int8_fp16_tail_layers) if plan.precision == 'int8'
        else 0,
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
    """Whether a cached engine may be used, and why (for the log).

    ``engine_sha256`` is the hash its record vouches for: the bytes actually loaded are checked
    against it again, so a file swapped after the check is not run.
    """

    reuse: bool
    reason: str
    engine_sha256: str = ''


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
    return CacheDecision(True, f'{engine_path} matches (key {key.digest()[:12]})', engine_sha256)


def read_cached_engine(engine_path, decision):
    """Return the bytes of a cached engine that ``decision`` (check_cached_engine) allowed.

    Raises EngineCacheError if the file changed since the check.
    """
    with open(engine_path, 'rb') as stream:
        data = stream.read()
    if not decision.reuse or bytes_sha256(data) != decision.engine_sha256:
        raise EngineCacheError(f'{engine_path} changed after its record was checked; not '
                               'loading it (delete it to rebuild)')
    return data


def stored_build_notes(engine_path):
    """Return the notes of a stored engine's record ([] when it has none or cannot be read)."""
    try:
        with open(engine_path + METADATA_SUFFIX, encoding='utf-8') as stream:
            return list(json.load(stream).get('notes', []))
    except (OSError, ValueError, AttributeError):
        return []


def append_build_notes(engine_path, notes):
    """Add lines to the record of a stored engine (e.g. the layer report made after loading)."""
    metadata_path = engine_path + METADATA_SUFFIX
    with open(metadata_path, encoding='utf-8') as stream:
        record = json.load(stream)
    record['notes'] = list(record.get('notes', [])) + list(notes)
    write_atomically(metadata_path, json.dumps(record, indent=2, sort_keys=True).encode())


def make_private_dir(directory):
    """Create ``directory`` (and missing parents) readable by its owner only (0700).

    An existing folder is left as it is, but if other users can write to it (or it belongs to
    someone else) a warning says so: whoever can write there can replace an engine, and an
    engine is code. Returns the warning text, or '' when the folder is private.
    """
    directory = os.path.abspath(os.path.expanduser(directory))
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        info = os.stat(directory)
    except OSError as error:
        raise EngineCacheError(f'cannot create the engine cache folder {directory}: {error}; '
                               'set engine_cache_dir to a writable folder') from error
    problems = []
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        problems.append(f'is writable by other users (mode {stat.S_IMODE(info.st_mode):o})')
    if hasattr(os, 'getuid') and info.st_uid != os.getuid():
        problems.append(f'belongs to user id {info.st_uid}')
    if not problems:
        return ''
    warning = (f'engine cache folder {directory} ' + ' and '.join(problems) + ': anyone who can '
               'write there can replace an engine, and engines run code; use chmod 700 or a '
               'folder of your own')
    LOG.warning('%s', warning)
    return warning


def write_atomically(path, data):
    """Write bytes atomically (atomic_files.write_atomically); EngineCacheError if we cannot."""
    try:
        atomic_files.write_atomically(path, data)
    except OSError as error:
        raise EngineCacheError(f'cannot write {path}: {error}; set engine_cache_dir to a '
                               'writable folder') from error


def store_engine(engine_path, serialized, key, build_notes=()):
    """Write an engine and its record; the record last, so a crash never leaves a valid pair."""
    data = bytes(serialized)
    make_private_dir(os.path.dirname(os.path.abspath(engine_path)))
    write_atomically(engine_path, data)
    record = {'key': asdict(key), 'engine_sha256': bytes_sha256(data),
              'notes': list(build_notes)}
    write_atomically(engine_path + METADATA_SUFFIX,
                     json.dumps(record, indent=2, sort_keys=True).encode())
