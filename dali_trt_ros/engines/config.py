"""Engine configuration: one dict (from YAML or ROS parameters) -> a checked EngineConfig.

``EngineConfig.from_dict`` rejects unknown keys and wrong types with a ConfigError that names the
key, so a typo in a launch file fails at start-up instead of silently using a default.
"""

from dataclasses import dataclass, field
import os

from dali_trt_ros.engines.base import TensorInfo
from dali_trt_ros.errors import ConfigError

BACKENDS = ('onnxruntime', 'tensorrt')
PROVIDERS = ('cpu', 'cuda')
PRECISIONS = ('fp32', 'fp16', 'int8')
# trt.TacticSource members (8.5 .. 10.x); the last two exist from 8.5 on.
TACTIC_SOURCES = ('CUBLAS', 'CUBLAS_LT', 'CUDNN', 'EDGE_MASK_CONVOLUTIONS', 'JIT_CONVOLUTIONS')
# IBuilderConfig.builder_optimization_level (TensorRT 8.6+): 0 builds fastest, 3 is the default,
# 5 searches longest.
OPTIMIZATION_LEVELS = range(0, 6)


@dataclass(frozen=True)
class InputProfile:
    """Shapes TensorRT optimizes a dynamic input for (min <= opt <= max, per axis)."""

    min: tuple
    opt: tuple
    max: tuple

    @property
    def is_static(self):
        """Return True if min, opt and max are the same shape."""
        return self.min == self.opt == self.max


@dataclass(frozen=True)
class TensorSpec:
    """A configured input or output: expected name, shape and dtype, plus a TensorRT profile."""

    name: str
    shape: tuple = None
    dtype: object = None
    profile: InputProfile = None

    def as_tensor_info(self):
        """Return the expectation as a TensorInfo (an unconfigured shape stays None)."""
        return TensorInfo(self.name, self.shape, self.dtype)


@dataclass(frozen=True)
class CalibrationConfig:
    """Where INT8 calibration data comes from and where its cache goes."""

    images: str = None
    cache: str = None
    # None: the calibration profile's opt batch, which is what TensorRT calibrates with.
    batch_size: int = None
    max_batches: int = 32
    preprocess: dict = None


@dataclass(frozen=True)
class EngineConfig:
    """Everything needed to load (and for TensorRT, build) one inference engine."""

    model: str
    backend: str = 'onnxruntime'
    providers: tuple = ('cpu',)
    device_id: int = 0
    precision: str = 'fp32'
    dla_core: int = None
    gpu_fallback: bool = True
    engine_cache_dir: str = None
    engine_path: str = None
    workspace_mib: int = 1024
    timing_cache: str = None
    # None: TensorRT's defaults. Names of trt.TacticSource members otherwise.
    tactic_sources: tuple = None
    builder_optimization_level: int = None
    plugins: tuple = ()
    dynamic_ranges: str = None
    inputs: tuple = ()
    outputs: tuple = ()
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    cpu_threads: int = 0
    # TF32 (Ampere and newer, Orin included) speeds up fp32 convolutions but rounds their inputs
    # to 10 mantissa bits; off by default so CUDA results match the CPU within a tight tolerance.
    cuda_tf32: bool = False

    @classmethod
    def from_dict(cls, data):
        """Build a checked config from a plain dict; raise ConfigError naming any bad key."""
        if not isinstance(data, dict):
            raise ConfigError(f'engine config must be a mapping, got {type(data).__name__}')
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f'engine config: unknown key(s) {unknown}; known keys: '
                              f'{sorted(known)}')
        if 'model' not in data:
            raise ConfigError("engine config: 'model' (path of the ONNX model) is required")
        values = {
            'model': _path(data, 'model'),
            'backend': _choice(data, 'backend', BACKENDS, 'onnxruntime'),
            'providers': _providers(data),
            'device_id': _int(data, 'device_id', 0, minimum=0),
            'precision': _choice(data, 'precision', PRECISIONS, 'fp32'),
            'dla_core': _dla_core(data),
            'gpu_fallback': _bool(data, 'gpu_fallback', True),
            'engine_cache_dir': _path(data, 'engine_cache_dir'),
            'engine_path': _path(data, 'engine_path'),
            'workspace_mib': _int(data, 'workspace_mib', 1024, minimum=1),
            'timing_cache': _path(data, 'timing_cache'),
            'tactic_sources': _tactic_sources(data),
            'builder_optimization_level': _optional_int(data, 'builder_optimization_level',
                                                        OPTIMIZATION_LEVELS),
            'plugins': tuple(_path_list(data, 'plugins')),
            'dynamic_ranges': _path(data, 'dynamic_ranges'),
            'inputs': _tensor_specs(data, 'inputs'),
            'outputs': _tensor_specs(data, 'outputs'),
            'calibration': _calibration(data.get('calibration')),
            'cpu_threads': _int(data, 'cpu_threads', 0, minimum=0),
            'cuda_tf32': _bool(data, 'cuda_tf32', False),
        }
        return cls(**values)


def _bad(key, what, value):
    return ConfigError(f'engine config: {key!r} must be {what}, got {value!r}')


def _path(data, key):
    value = data.get(key)
    if value is None or value == '':
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise _bad(key, 'a file path', value)
    return os.path.expanduser(os.fspath(value))


def _path_list(data, key):
    value = data.get(key) or []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise _bad(key, 'a list of file paths', value)
    return [_path({key: item}, key) for item in value]


def _choice(data, key, choices, default):
    value = data.get(key, default)
    if isinstance(value, str):
        value = value.lower()
    if value not in choices:
        raise _bad(key, f'one of {list(choices)}', value)
    return value


def _int(data, key, default, minimum=None):
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(key, 'an integer', value)
    if minimum is not None and value < minimum:
        raise _bad(key, f'>= {minimum}', value)
    return value


def _bool(data, key, default):
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise _bad(key, 'true or false', value)
    return value


def _optional_int(data, key, allowed):
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise _bad(key, f'null or an integer {allowed.start}..{allowed.stop - 1}', value)
    return value


def _tactic_sources(data):
    value = data.get('tactic_sources')
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise _bad('tactic_sources', f'null or a list from {list(TACTIC_SOURCES)}', value)
    names = [item.upper() for item in value]
    unknown = [name for name in names if name not in TACTIC_SOURCES]
    if unknown:
        raise _bad('tactic_sources', f'a list from {list(TACTIC_SOURCES)}', value)
    return tuple(sorted(set(names)))


def _providers(data):
    value = data.get('providers', ['cpu'])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise _bad('providers', f'a non-empty list from {list(PROVIDERS)}', value)
    providers = []
    for item in value:
        name = item.lower() if isinstance(item, str) else item
        if name not in PROVIDERS:
            raise _bad('providers', f'a list from {list(PROVIDERS)}', value)
        providers.append(name)
    return tuple(providers)


def _dla_core(data):
    value = data.get('dla_core')
    # -1 is the ROS-parameter way to say "none" (parameters cannot be null).
    if value is None or value == -1:
        return None
    return _int(data, 'dla_core', None, minimum=0)


def _shape(key, value):
    if not isinstance(value, (list, tuple)):
        raise _bad(key, 'a list of dimensions', value)
    shape = []
    for dim in value:
        if isinstance(dim, bool) or not isinstance(dim, (int, str)) and dim is not None:
            raise _bad(key, 'a list of ints (-1, null or a name for a dynamic dimension)', value)
        shape.append(dim)
    return tuple(shape)


def _static_shape(key, value):
    shape = _shape(key, value)
    if any(not isinstance(dim, int) or dim <= 0 for dim in shape):
        raise _bad(key, 'a list of positive ints', value)
    return shape


def _dtype(key, value):
    if value is None:
        return None
    import numpy as np
    try:
        return np.dtype(value)
    except TypeError:
        raise _bad(key, 'a numpy dtype name such as float32', value) from None


def _profile(key, item):
    if 'min_shape' not in item and 'max_shape' not in item:
        return None
    try:
        low = _static_shape(f'{key}.min_shape', item['min_shape'])
        high = _static_shape(f'{key}.max_shape', item['max_shape'])
    except KeyError as missing:
        raise ConfigError(f'engine config: {key} sets a profile but lacks {missing}; give '
                          'min_shape, opt_shape and max_shape') from None
    best = _static_shape(f'{key}.opt_shape', item.get('opt_shape', high))
    if not (len(low) == len(best) == len(high)) or any(
            not a <= b <= c for a, b, c in zip(low, best, high)):
        raise ConfigError(f'engine config: {key} needs min_shape <= opt_shape <= max_shape per '
                          f'axis, got {low}, {best}, {high}')
    return InputProfile(low, best, high)


def _tensor_specs(data, key):
    value = data.get(key) or []
    if not isinstance(value, (list, tuple)):
        raise _bad(key, 'a list of {name, shape, dtype} mappings', value)
    allowed = {'name', 'shape', 'dtype', 'min_shape', 'opt_shape', 'max_shape'}
    specs = []
    for index, item in enumerate(value):
        where = f'{key}[{index}]'
        if not isinstance(item, dict) or not isinstance(item.get('name'), str):
            raise _bad(where, 'a mapping with a string "name"', item)
        unknown = sorted(set(item) - allowed)
        if unknown:
            raise ConfigError(f'engine config: {where} has unknown key(s) {unknown}; allowed: '
                              f'{sorted(allowed)}')
        shape = _shape(f'{where}.shape', item['shape']) if item.get('shape') is not None else None
        specs.append(TensorSpec(item['name'], shape, _dtype(f'{where}.dtype', item.get('dtype')),
                                _profile(where, item)))
    return tuple(specs)


def _calibration(value):
    if value is None:
        return CalibrationConfig()
    if not isinstance(value, dict):
        raise _bad('calibration', 'a mapping', value)
    known = set(CalibrationConfig.__dataclass_fields__)
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f'engine config: calibration has unknown key(s) {unknown}; known: '
                          f'{sorted(known)}')
    preprocess = value.get('preprocess')
    if preprocess is not None and not isinstance(preprocess, dict):
        raise _bad('calibration.preprocess', 'a mapping (preprocessing spec)', preprocess)
    return CalibrationConfig(
        images=_path({'calibration.images': value.get('images')}, 'calibration.images'),
        cache=_path({'calibration.cache': value.get('cache')}, 'calibration.cache'),
        batch_size=None if value.get('batch_size') is None else _int(
            {'calibration.batch_size': value['batch_size']}, 'calibration.batch_size', None,
            minimum=1),
        max_batches=_int({'calibration.max_batches': value.get('max_batches', 32)},
                         'calibration.max_batches', 32, minimum=1),
        preprocess=preprocess,
    )
