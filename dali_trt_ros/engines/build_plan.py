"""What a TensorRT build will do, decided without TensorRT: precision, device, fallback, shapes.

``plan_build`` turns the configuration, the model's inputs and the facts about this machine
(:class:`DeviceFacts`) into a :class:`BuildPlan` with the reasons for each decision and the
warnings to log. The TensorRT code only carries the plan out, so every decision here is tested
on machines without TensorRT, and ``build_engine --dry-run`` prints it.
"""

from dataclasses import dataclass, field
import os
import re

from dali_trt_ros.engines.base import format_shape, is_dynamic_dim
from dali_trt_ros.errors import ConfigError

# Whether DLA exists is asked of TensorRT itself (``num_DLA_cores`` of the runtime), never
# derived from a version number: the DLA API is in every header from 8.5 to 11.x, and the count is
# 0 on every machine without DLA cores.
# DLA cores run FP16 and INT8 only (TensorRT developer guide, "Working with DLA").
DLA_PRECISIONS = ('fp16', 'int8')


def parse_version(text):
    """Return a TensorRT version string such as '8.5.2.2' as a tuple of ints (8, 5, 2, 2)."""
    parts = []
    for piece in str(text).split('.'):
        digits = re.match(r'\d*', piece).group()
        if digits:
            parts.append(int(digits))
        if not digits or digits != piece:  # stop at suffixes such as 'post1' or '0rc1'
            break
    if not parts:
        raise ConfigError(f'cannot read TensorRT version {text!r}')
    return tuple(parts)


@dataclass(frozen=True)
class DeviceFacts:
    """What the build machine offers: TensorRT version, GPU, DLA cores, fast precisions.

    ``fast_fp16``/``fast_int8`` are None when unknown (only a Builder can tell, and none is
    created when a cached engine is reused).
    """

    tensorrt_version: str
    device_name: str
    compute_capability: tuple
    num_dla_cores: int = 0
    fast_fp16: bool = None
    fast_int8: bool = None


@dataclass(frozen=True)
class BuildPlan:
    """The decisions for one engine build and why they were made."""

    precision: str
    device: str
    dla_core: int
    gpu_fallback: bool
    profiles: dict
    int8_source: str = None
    calibration_shape: tuple = None
    warnings: tuple = ()
    reasons: tuple = ()
    notes: tuple = field(default=(), compare=False)

    def describe(self):
        """Return the plan as printable lines (used by build_engine --dry-run and the log)."""
        target = 'GPU' if self.device == 'gpu' else f'DLA core {self.dla_core}'
        if self.device == 'dla':
            target += ' with GPU fallback' if self.gpu_fallback else ' (no GPU fallback)'
        lines = [f'precision: {self.precision}', f'device: {target}']
        if self.int8_source:
            lines.append(f'int8 scales from: {self.int8_source}')
        if self.calibration_shape:
            lines.append(f'calibration batches: {format_shape(self.calibration_shape)} (the '
                         'calibration profile\'s opt shape)')
        for name, (low, best, high) in sorted(self.profiles.items()):
            if low == high:
                lines.append(f'input {name}: {format_shape(low)}')
            else:
                lines.append(f'input {name}: min {format_shape(low)} opt {format_shape(best)} '
                             f'max {format_shape(high)}')
        lines += [f'why: {reason}' for reason in self.reasons]
        lines += [f'WARNING: {warning}' for warning in self.warnings]
        return lines


def resolve_profiles(model_inputs, specs):
    """Return name -> (min, opt, max) shapes for every model input.

    A static model input uses its own shape; a dynamic one needs a configured static shape or a
    min/opt/max profile. Raises ConfigError naming the input and its dynamic axes otherwise.
    """
    by_name = {spec.name: spec for spec in specs}
    profiles = {}
    for tensor in model_inputs:
        spec = by_name.get(tensor.name)
        if spec is not None and spec.profile is not None:
            shapes = (spec.profile.min, spec.profile.opt, spec.profile.max)
            if any(len(shape) != len(tensor.shape) for shape in shapes):
                raise ConfigError(f'input {tensor.name!r}: profile rank differs from the model '
                                  f'shape {format_shape(tensor.shape)}')
            profiles[tensor.name] = shapes
        elif tensor.is_static:
            profiles[tensor.name] = (tensor.shape,) * 3
        elif spec is not None and spec.shape and not any(is_dynamic_dim(d) for d in spec.shape):
            profiles[tensor.name] = (tuple(spec.shape),) * 3
        else:
            dynamic_axes = [axis for axis, dim in enumerate(tensor.shape) if is_dynamic_dim(dim)]
            raise ConfigError(
                f'input {tensor.name!r} has dynamic axes {dynamic_axes} (model shape '
                f'{format_shape(tensor.shape)}); TensorRT needs sizes: set inputs: '
                f'[{{name: {tensor.name}, shape: [...]}}] or min_shape/opt_shape/max_shape')
    return profiles


def _dla_target(config, facts, profiles, warnings, reasons):
    """Return the DLA core to build for, or None to build for the GPU."""
    if config.dla_core is None:
        reasons.append('no dla_core configured: GPU')
        return None
    if facts.num_dla_cores == 0:
        if not config.gpu_fallback:
            raise ConfigError(f'dla_core {config.dla_core} requested with gpu_fallback false, but '
                              f'{facts.device_name} has no DLA cores (TensorRT '
                              f'{facts.tensorrt_version} reports 0): set gpu_fallback true to '
                              'build for the GPU here, or drop dla_core')
        warnings.append(f'dla_core {config.dla_core} requested but {facts.device_name} has no '
                        'DLA cores; building for the GPU (gpu_fallback is true)')
        return None
    if config.dla_core >= facts.num_dla_cores:
        raise ConfigError(f'dla_core {config.dla_core} requested but {facts.device_name} has '
                          f'{facts.num_dla_cores} DLA core(s): use 0..{facts.num_dla_cores - 1}')
    dynamic = sorted(name for name, (low, _, high) in profiles.items() if low != high)
    if dynamic:
        raise ConfigError(f'DLA needs static input shapes, but {dynamic} have min != max; set '
                          'one fixed shape per input (min = opt = max), or drop dla_core')
    reasons.append(f'dla_core {config.dla_core} of {facts.num_dla_cores} available')
    return config.dla_core


def _int8_source(config, warnings, reasons):
    calibration = config.calibration
    if config.dynamic_ranges:
        if not os.path.isfile(config.dynamic_ranges):
            raise ConfigError(f'dynamic_ranges file {config.dynamic_ranges!r} not found')
        reasons.append('int8 scales from the dynamic_ranges file; tensors it does not list get '
                       'no range and run in higher precision')
        return 'dynamic ranges file ' + config.dynamic_ranges
    if calibration.cache and os.path.isfile(calibration.cache):
        reasons.append('int8 scales from the existing calibration cache (delete it to '
                       'recalibrate)')
        return 'calibration cache ' + calibration.cache
    if calibration.images:
        if not os.path.isdir(calibration.images):
            raise ConfigError(f'calibration.images folder {calibration.images!r} not found')
        if not calibration.cache:
            warnings.append('calibration.cache not set: calibration runs again on every build')
        return ('entropy calibration (IInt8EntropyCalibrator2) over '
                f'{calibration.images}, at most {calibration.max_batches} batches')
    raise ConfigError('precision int8 needs scales: set calibration.images (a folder of '
                      'representative images), an existing calibration.cache, or '
                      'dynamic_ranges (a file of per-tensor ranges)')


def _calibration_shape(config, profiles):
    """Return the shape calibration batches must have: the calibration profile's opt shape.

    TensorRT calibrates an explicit-batch network at the kOPT shape of the calibration profile,
    whatever the calibrator's get_batch_size() says, so that is the batch the calibrator feeds.
    """
    if len(profiles) != 1:
        raise ConfigError(f'int8 calibration from images feeds one model input; the model has '
                          f'{sorted(profiles)}: use dynamic_ranges for multi-input models')
    [(name, (_, best, _))] = profiles.items()
    wanted = config.calibration.batch_size
    if wanted is not None and wanted != best[0]:
        raise ConfigError(f'calibration.batch_size is {wanted}, but TensorRT calibrates input '
                          f'{name!r} at its opt shape {format_shape(best)}: set '
                          f'calibration.batch_size to {best[0]} (or leave it out), or set '
                          f'opt_shape batch to {wanted}')
    return tuple(best)


def plan_build(config, model_inputs, facts):
    """Decide how to build ``config`` (EngineConfig) for a model with ``model_inputs`` here.

    Raises ConfigError for requests that cannot be met; degrades with a warning where the
    intent can still be served (no DLA on this device or TensorRT version -> GPU; fp32 on DLA ->
    fp16).
    """
    warnings, reasons = [], []
    profiles = resolve_profiles(model_inputs, config.inputs)
    dla_core = _dla_target(config, facts, profiles, warnings, reasons)
    precision = config.precision
    if dla_core is not None and precision not in DLA_PRECISIONS:
        warnings.append(f'DLA runs fp16 or int8 only; building fp16 instead of {precision}')
        precision = 'fp16'
    if precision == 'fp16' and facts.fast_fp16 is False:
        warnings.append(f'{facts.device_name} has no fast fp16; expect little speed-up')
    int8_source = calibration_shape = None
    if precision == 'int8':
        if facts.fast_int8 is False:
            warnings.append(f'{facts.device_name} has no fast int8; expect little speed-up')
        if parse_version(facts.tensorrt_version)[0] >= 10:
            warnings.append('TensorRT 10 deprecates implicit int8 (calibration / dynamic '
                            'ranges) in favour of explicitly quantized models; it still works')
        int8_source = _int8_source(config, warnings, reasons)
        if config.calibration.images and not config.dynamic_ranges:
            calibration_shape = _calibration_shape(config, profiles)
    if config.builder_optimization_level is not None and \
            parse_version(facts.tensorrt_version)[:2] < (8, 6):
        warnings.append(f'builder_optimization_level needs TensorRT 8.6+; ignored by '
                        f'{facts.tensorrt_version}')
    gpu_fallback = bool(config.gpu_fallback) if dla_core is not None else False
    if dla_core is not None:
        reasons.append('GPU fallback on: layers DLA cannot run go to the GPU (check the layer '
                       'placement report)' if gpu_fallback else
                       'GPU fallback off: the build fails if a layer cannot run on DLA')
    return BuildPlan(precision=precision, device='gpu' if dla_core is None else 'dla',
                     dla_core=dla_core, gpu_fallback=gpu_fallback, profiles=profiles,
                     int8_source=int8_source, calibration_shape=calibration_shape,
                     warnings=tuple(warnings), reasons=tuple(reasons))


def dla_gpu_fallback(requested_dla_core, plan, build_notes=()):
    """Say whether (and how) a DLA request ended up on the GPU; None when nothing fell back.

    ``requested_dla_core`` is the configured ``dla_core`` (None or -1: none requested);
    ``build_notes`` are the engine record's notes, whose ``on GPU: <layer>`` lines come from the
    builder's per-layer DLA check. The node reports this in its per-model diagnostics, because
    ``GPU_FALLBACK`` falls back silently and a DLA model on the GPU costs the GPU's time.
    """
    if requested_dla_core is None or requested_dla_core == -1:
        return None
    if plan.device != 'dla':
        return 'whole model on the GPU (this device has no DLA core)'
    on_gpu = sum(1 for line in build_notes if str(line).startswith('on GPU: '))
    return f'{on_gpu} layer(s) on the GPU' if on_gpu else None
