"""Produce each model's ONNX file once, record its sha256, and verify it on every reuse."""

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from dali_trt_ros.errors import ModelError
from dali_trt_ros.models.cache import (
    default_cache_dir, read_manifest, record_in_manifest, sha256_of_bytes, sha256_of_file,
    write_atomically)
from dali_trt_ros.models.registry import SOURCES, model_recipe
from dali_trt_ros.models.sources import ensure_package, fetch_command_text, read_member

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class PreparedModel:
    """A verified ONNX file in the cache and how this run obtained it."""

    name: str
    path: Path
    sha256: str
    status: str            # 'cached', 'built', or 'rebuilt: <why>'
    seconds: float


def prepare_model(name, cache_dir=None, offline=False, force=False):
    """Return the verified ONNX of model ``name``, building it only if needed.

    A cached file is reused when the manifest holds its sha256 for the current recipe and the
    file still has that sha256; otherwise it is rebuilt (from cached downloads when present,
    so ``offline`` only fails when a download is missing).
    """
    started = time.perf_counter()
    recipe = model_recipe(name)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    path = cache_dir / recipe.onnx
    entry = read_manifest(cache_dir).get(name)
    reason = 'rebuilt: forced' if force and entry is not None else 'built'
    if entry is not None and not force:
        reason = stale_reason(entry, recipe, path)
        if reason is None:
            return PreparedModel(name, path, entry['sha256'], 'cached',
                                 time.perf_counter() - started)
        LOG.warning('%s: %s; rebuilding it', path, reason)
        reason = 'rebuilt: ' + reason
    data, provenance = build_model_bytes(recipe, cache_dir, offline)
    write_atomically(path, data)
    digest = sha256_of_bytes(data)
    record_in_manifest(cache_dir, name, {
        'onnx': recipe.onnx, 'sha256': digest, 'size': len(data),
        'recipe_version': recipe.recipe_version, 'trained': recipe.trained,
        **provenance})
    LOG.info('%s: %s %s (sha256 %s)', name, reason, path, digest)
    return PreparedModel(name, path, digest, reason, time.perf_counter() - started)


def stale_reason(entry, recipe, path):
    """Return why a cached model cannot be reused, or None when it can."""
    if entry.get('recipe_version') != recipe.recipe_version:
        return (f'built by recipe version {entry.get("recipe_version")}, the current one is '
                f'{recipe.recipe_version}')
    if not path.exists():
        return 'the file is missing'
    actual = sha256_of_file(path)
    if actual != entry.get('sha256'):
        return f'sha256 {actual} differs from the recorded {entry.get("sha256")} (modified file)'
    return None


def verify_model(name, cache_dir=None):
    """Return the cached model if it matches its manifest entry; never builds anything.

    Raise ModelError telling to run prepare_models when the model is missing or modified.
    """
    started = time.perf_counter()
    recipe = model_recipe(name)
    cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
    path = cache_dir / recipe.onnx
    entry = read_manifest(cache_dir).get(name)
    if entry is None:
        raise ModelError(f'model {name} is not prepared in {cache_dir}; run '
                         f'"prepare_models {name} --cache-dir {cache_dir}"')
    reason = stale_reason(entry, recipe, path)
    if reason is not None:
        raise ModelError(f'{path}: {reason}; run "prepare_models {name} --cache-dir '
                         f'{cache_dir}" to rebuild it')
    return PreparedModel(name, path, entry['sha256'], 'cached', time.perf_counter() - started)


def build_model_bytes(recipe, cache_dir, offline):
    """Return (serialized ONNX, provenance dict for the manifest) for one recipe."""
    import onnx
    tools = {'onnx': onnx.__version__}
    if recipe.builder == 'deeplab':
        from dali_trt_ros.models.deeplab import build_deeplabv3
        model = build_deeplabv3(metadata={'model': recipe.name}, **recipe.options)
        provenance = {'source': {'generator': 'dali_trt_ros.models.deeplab', **recipe.options}}
    elif recipe.builder == 'tflite':
        import tflite2onnx
        from dali_trt_ros.models.tflite_convert import tflite_to_onnx
        source = SOURCES[recipe.source]
        package = ensure_package(source, cache_dir, offline)
        member = read_member(source, package)
        tflite_bytes = member[slice(*recipe.byte_range)] if recipe.byte_range else member
        source_entry = {'client': source.client, 'package': source.package,
                        'version': source.version, 'file': source.filename,
                        'sha256': source.sha256, 'member': source.member,
                        'member_sha256': source.member_sha256,
                        'tflite_sha256': sha256_of_bytes(tflite_bytes),
                        'license': source.license}
        model = tflite_to_onnx(tflite_bytes, {
            'model': recipe.name, 'trained': 'true', 'license': source.license,
            'source': f'{source.client} {source.package} {source.version}',
            'source_fetch': fetch_command_text(source),
            'source_sha256': source.sha256, 'source_member': source.member,
            'tflite_sha256': source_entry['tflite_sha256'],
            'converter': f'tflite2onnx {tflite2onnx.__version__} + dali_trt_ros operators'})
        provenance = {'source': source_entry}
        tools['tflite2onnx'] = tflite2onnx.__version__
    else:
        raise ModelError(f'model {recipe.name} has unknown builder {recipe.builder!r}')
    return model.SerializeToString(), {**provenance, 'tools': tools}
