"""Engine configuration: one dict (from YAML or ROS parameters) -> a checked EngineConfig.

``EngineConfig.from_dict`` rejects unknown keys and wrong types with a ConfigError that names the
key, so a typo in a launch file fails at start-up instead of silently using a default.
"""

from dataclasses import dataclass, field
import os

from dali_trt_ros import validation
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
    # INT8 remedy for models whose last layers do not survive quantization (an output
    # probability, a sigmoid): the last N float layers are constrained to FP16
    # (PREFER_PRECISION_CONSTRAINTS). 0: every layer may run in INT8.
    int8_fp16_tail_layers: int = 0
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
    def from_dict(cls, data, where='engine config'):
        """Build a checked config from a plain dict; raise ConfigError naming any bad key.

        ``where`` names the source in messages (a YAML file, a model name), e.g.
        ``engine config: precision: expected one of fp32, fp16, int8, got 'fp64'``.
        """
        validation.known_keys(data, cls.__dataclass_fields__, where)

        def at(key):
            return f'{where}: {key}'
        if data.get('model') is None:
            raise ConfigError(f'{at("model")}: required but missing (the ONNX model path)')

        def get(key, default=None):
            value = data.get(key)
            return default if value is None else value
        values = {
            'model': _path(data['model'], at('model')),
            'backend': _lower_choice(get('backend', 'onnxruntime'), BACKENDS, at('backend')),
            'providers': _providers(get('providers', ['cpu']), at('providers')),
            'device_id': validation.integer(get('device_id', 0), at('device_id'), low=0),
            'precision': _lower_choice(get('precision', 'fp32'), PRECISIONS, at('precision')),
            # -1 is the ROS-parameter way to say "none" (parameters cannot be null).
            'dla_core': None if get('dla_core', -1) == -1 else validation.integer(
                data['dla_core'], at('dla_core'), low=0),
            'gpu_fallback': validation.boolean(get('gpu_fallback', True), at('gpu_fallback')),
            'engine_cache_dir': _optional_path(data.get('engine_cache_dir'),
                                               at('engine_cache_dir')),
            'engine_path': _optional_path(data.get('engine_path'), at('engine_path')),
            'workspace_mib': validation.integer(get('workspace_mib', 1024), at('workspace_mib'),
                                                low=1),
            'timing_cache': _optional_path(data.get('timing_cache'), at('timing_cache')),
            'tactic_sources': _tactic_sources(data.get('tactic_sources'), at('tactic_sources')),
            'builder_optimization_level': validation.optional(
                validation.integer, data.get('builder_optimization_level'),
                at('builder_optimization_level'), low=min(OPTIMIZATION_LEVELS),
                high=max(OPTIMIZATION_LEVELS)),
            'int8_fp16_tail_layers': validation.integer(
                get('int8_fp16_tail_layers', 0), at('int8_fp16_tail_layers'), low=0),
            'plugins': _path_list(get('plugins', []), at('plugins')),
            'dynamic_ranges': _optional_path(data.get('dynamic_ranges'), at('dynamic_ranges')),
            'inputs': _tensor_specs(get('inputs', []), at('inputs')),
            'outputs': _tensor_specs(get('outputs', []), at('outputs')),
            'calibration': _calibration(data.get('calibration'), at('calibration')),
            'cpu_threads': validation.integer(get('cpu_threads', 0), at('cpu_threads'), low=0),
            'cuda_tf32': validation.boolean(get('cuda_tf32', False), at('cuda_tf32')),
        }
        return cls(**values)


def _path(value, where):
    if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
        raise validation.invalid(where, 'a file path', value)
    return os.path.expanduser(os.fspath(value))


def _optional_path(value, where):
    return None if value is None or value == '' else _path(value, where)


def _path_list(value, where):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise validation.invalid(where, 'a list of file paths', value)
    return tuple(_path(item, validation.child(where, i)) for i, item in enumerate(value))


def _lower_choice(value, allowed, where):
    return validation.choice(value.lower() if isinstance(value, str) else value, allowed, where)


def _tactic_sources(value, where):
    if value is None:
        return None
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise validation.invalid(where, f'null or a list from {", ".join(TACTIC_SOURCES)}',
                                 value)
    names = [validation.choice(item.upper() if isinstance(item, str) else item,
                               TACTIC_SOURCES, validation.child(where, i))
             for i, item in enumerate(value)]
    return tuple(sorted(set(names)))


def _providers(value, where):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise validation.invalid(where, f'a non-empty list from {", ".join(PROVIDERS)}', value)
    return tuple(_lower_choice(item, PROVIDERS, validation.child(where, i))
                 for i, item in enumerate(value))


def _shape(value, where):
    if not isinstance(value, (list, tuple)):
        raise validation.invalid(where, 'a list of dimensions', value)
    for index, dim in enumerate(value):
        if isinstance(dim, bool) or not isinstance(dim, (int, str)) and dim is not None:
            raise validation.invalid(validation.child(where, index),
                                     'an int (-1, null or a name for a dynamic dimension)', dim)
    return tuple(value)


def _dtype(value, where):
    if value is None:
        return None
    import numpy as np
    try:
        return np.dtype(value)
    except TypeError:
        raise validation.invalid(where, 'a numpy dtype name such as float32', value) from None


def _profile(item, where):
    if 'min_shape' not in item and 'max_shape' not in item:
        return None
    low, high = (validation.numbers(validation.required(item, key, where),
                                    validation.child(where, key), low=1, whole=True)
                 for key in ('min_shape', 'max_shape'))
    best = validation.numbers(item.get('opt_shape', high), validation.child(where, 'opt_shape'),
                              low=1, whole=True)
    if not (len(low) == len(best) == len(high)) or any(
            not a <= b <= c for a, b, c in zip(low, best, high)):
        raise ConfigError(f'{where}: needs min_shape <= opt_shape <= max_shape per axis, got '
                          f'{low}, {best}, {high}')
    return InputProfile(low, best, high)


def _tensor_specs(value, where):
    if not isinstance(value, (list, tuple)):
        raise validation.invalid(where, 'a list of {name, shape, dtype} mappings', value)
    allowed = ('name', 'shape', 'dtype', 'min_shape', 'opt_shape', 'max_shape')
    specs = []
    for index, item in enumerate(value):
        item_where = validation.child(where, index)
        validation.known_keys(item, allowed, item_where)
        name = validation.text(validation.required(item, 'name', item_where),
                               validation.child(item_where, 'name'))
        shape = validation.optional(_shape, item.get('shape'),
                                    validation.child(item_where, 'shape'))
        specs.append(TensorSpec(name, shape,
                                _dtype(item.get('dtype'), validation.child(item_where, 'dtype')),
                                _profile(item, item_where)))
    return tuple(specs)


def _calibration(value, where):
    if value is None:
        return CalibrationConfig()
    validation.known_keys(value, CalibrationConfig.__dataclass_fields__, where)
    preprocess = validation.optional(validation.mapping, value.get('preprocess'),
                                     validation.child(where, 'preprocess'))
    return CalibrationConfig(
        images=_optional_path(value.get('images'), validation.child(where, 'images')),
        cache=_optional_path(value.get('cache'), validation.child(where, 'cache')),
        batch_size=validation.optional(validation.integer, value.get('batch_size'),
                                       validation.child(where, 'batch_size'), low=1),
        max_batches=validation.integer(value.get('max_batches', 32),
                                       validation.child(where, 'max_batches'), low=1),
        preprocess=preprocess,
    )
