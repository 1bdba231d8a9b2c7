"""What to build and where: build plan -> cache key -> engine path -> reuse decision, once.

``resolve_engine`` is the one place that turns an EngineConfig and the facts of this machine into
those four things; the TensorRT backend then carries the result out and ``build_engine
--dry-run`` prints it, so the two can never disagree. Nothing here needs TensorRT.
"""

from dataclasses import dataclass
import os
import re

from dali_trt_ros.checksums import file_sha256
from dali_trt_ros.engines.build_plan import plan_build
from dali_trt_ros.engines.calibration import calibration_data_sha256, list_calibration_images
from dali_trt_ros.engines.engine_cache import (check_cached_engine, default_engine_path,
                                               make_cache_key)
from dali_trt_ros.engines.onnx_model import read_model_io

DEFAULT_CACHE_DIR = os.path.join('~', '.cache', 'dali_trt_ros', 'engines')


@dataclass(frozen=True)
class EngineRequest:
    """The resolved build: plan, key, where the engine lives and whether the file there is usable.

    ``decision`` is an engine_cache.CacheDecision; ``calibration_sha256`` the hash the INT8
    calibration data and its cache are tied to ('' without calibration).
    """

    plan: object
    key: object
    engine_path: str
    cache_dir: str
    decision: object
    timing_cache_path: str
    calibration_sha256: str = ''


def calibration_sha256(config, plan):
    """Return the hash of everything INT8 scales depend on ('' when the plan has no INT8 scales).

    Calibration from images: image names and bytes, preprocessing, batch shape and count; an
    existing calibration cache alone: its bytes; dynamic ranges: covered by their own key field.
    """
    if plan.precision != 'int8' or config.dynamic_ranges:
        return ''
    calibration = config.calibration
    if calibration.images:
        paths = list_calibration_images(calibration.images)
        return calibration_data_sha256(paths, calibration.preprocess, plan.calibration_shape,
                                       calibration.max_batches)
    return file_sha256(calibration.cache)


def engine_cache_dir(config):
    """Return the engine cache folder of ``config`` (expanded), the default if none is set."""
    return os.path.expanduser(config.engine_cache_dir or DEFAULT_CACHE_DIR)


def default_timing_cache_path(cache_dir, facts, model_sha256, precision, dla_core):
    """Return the timing cache of one model, precision and target on this TensorRT and GPU.

    Tactic timings only hold for the GPU and TensorRT version they were measured on, and
    TensorRT 8.6 refuses a cache that holds Myelin graphs of another network (measured on the
    H100: every build after the first logged "Myelin error from unknown graph" and "The timing
    cache will not be used!" when one cache was shared by all models). So the name carries the
    model's hash, the precision and the target as well: a rebuild of the same model (changed
    workspace, tactic sources, optimization level, a new TensorRT patch on the same GPU is a new
    file) starts from its own earlier timings.
    """
    target = 'gpu' if dla_core is None else f'dla{dla_core}'
    label = re.sub(r'[^A-Za-z0-9.]+', '_', f'{facts.tensorrt_version}-{facts.device_name}')
    return os.path.join(cache_dir, f'timing.{model_sha256[:16]}.{precision}.{target}.'
                                   f'{label.strip("_")}.cache')


def resolve_engine(config, facts, model_inputs=None):
    """Return the EngineRequest for EngineConfig ``config`` here (DeviceFacts ``facts``).

    ``model_inputs`` (TensorInfo list) is read from the ONNX model when not given. Raises
    ConfigError for requests that cannot be met (see build_plan.plan_build).
    """
    if model_inputs is None:
        model_inputs, _ = read_model_io(config.model)
    plan = plan_build(config, model_inputs, facts)
    data_sha256 = calibration_sha256(config, plan)
    key = make_cache_key(config, plan, facts, data_sha256)
    cache_dir = engine_cache_dir(config)
    engine_path = config.engine_path or default_engine_path(cache_dir, config.model,
                                                            plan.precision, plan.dla_core)
    return EngineRequest(plan=plan, key=key, engine_path=engine_path, cache_dir=cache_dir,
                         decision=check_cached_engine(engine_path, key),
                         timing_cache_path=config.timing_cache or default_timing_cache_path(
                             cache_dir, facts, key.model_sha256, plan.precision, plan.dla_core),
                         calibration_sha256=data_sha256)
